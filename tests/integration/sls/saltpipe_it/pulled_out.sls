# Integration tests (tests/integration/test_content.py): ops_node.pulled_out on a real minion.
saltpipe-it-pulled-out:
  ops_node.pulled_out:
    - pool: {{ pillar['saltpipe_it']['pool'] }}
    - reason: saltpipe integration test
