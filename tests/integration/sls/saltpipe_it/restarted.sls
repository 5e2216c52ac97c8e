# Integration tests (tests/integration/test_content.py): ops_node.service_restarted on a real minion.
saltpipe-it-restarted:
  ops_node.service_restarted:
    - name: {{ pillar['saltpipe_it']['service'] }}
