# Integration tests (tests/integration/test_content.py): ops_node.pulled_in on a real minion.
saltpipe-it-pulled-in:
  ops_node.pulled_in:
    - pool: {{ pillar['saltpipe_it']['pool'] }}
