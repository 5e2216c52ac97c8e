"""Adopting an existing Salt repository: ``saltpipe init`` (detect the layout, write a lint-only config and
fixtures) and ``saltpipe fixtures import`` (real grains and pillar of sample minions, secrets redacted).
docs/adopting.md walks through both."""
