# Integration tests (tests/integration/test_content.py): ops_node.ignited on a real minion.
saltpipe-it-ignited:
  ops_node.ignited:
    - url: {{ pillar['saltpipe_it']['url'] }}
    - retries: {{ pillar['saltpipe_it'].get('retries', 3) }}
    - interval: 0
