# Integration tests (tests/integration/test_content.py): ops_node.patched on a real minion.
saltpipe-it-patched:
  ops_node.patched:
    - patchset: {{ pillar['saltpipe_it']['patchset'] }}
