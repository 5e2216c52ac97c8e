# Served next to the bundled content by the integration tests: a state with no side effect, so the policy
# tests prove that state.apply is published and runs without depending on the example formulas.
saltpipe probe state ran:
  test.succeed_without_changes
