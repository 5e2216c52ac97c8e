{#-
  The highstate of saltenv base, targeted by grains (docs/formulas.md):
    saltpipe_env  test | production   (which environment a minion belongs to)
    roles         list: web, app      (what it serves)
  Both environments get the same formulas; what differs between them is pillar.
  The order matters within a minion's highstate: base first (accounts, tunables),
  then the role's service, then patching, which is a no-op unless the active patch
  set (ops:patch:active_set) is missing on the node.
-#}
base:
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
