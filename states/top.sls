{#-
  The highstate, targeted by grains (docs/formulas.md):
    saltpipe_env  test | production   (which environment a minion belongs to)
    roles         list: web, app      (what it serves)
  Both environments get the same formulas; what differs between them is pillar.
  The order matters within a minion's highstate: base first (accounts, tunables),
  then the role's service, then patching, which is a no-op unless the active patch
  set (ops:patch:active_set) is missing on the node.

  Keyed by {{ saltenv }}, not base: Salt applies only the top entries keyed by the saltenv it is
  given. A scheduled highstate renders this as base; a canary's `state.apply saltenv=<release id>`
  renders it as the release's saltenv, so the batch gets the same formulas from the release.
-#}
{{ saltenv }}:
{%- for env in ['test', 'production'] %}
  'G@saltpipe_env:{{ env }}':
    - match: compound
    - base

  'G@saltpipe_env:{{ env }} and G@roles:web':
    - match: compound
    - nginx
    - patching

  'G@saltpipe_env:{{ env }} and G@roles:app':
    - match: compound
    - app
    - patching
{%- endfor %}
