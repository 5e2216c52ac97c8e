{#-
  patching: the patch run of one node, as the operators run it by hand:
    check -> pull out -> install patch -> restart -> ignite -> pull in -> check

  Driven by pillar `ops` (ops:patch:active_set names the set in ops:patch:sets). It is
  safe in a highstate: a node whose set is already installed is not touched (the
  pull-out runs `unless` ops_patch.check says compliant, and everything after it hangs
  on its changes), so a second run changes nothing.

  Failure handling, never silent:
  - install fails: the service was not restarted, so the old process still serves;
    if it still answers its health URL the node goes back into its pool (capacity),
    and the run still fails on the install state;
  - restart or ignite fails: the node stays OUT of its pool (an unhealthy node must
    not take traffic) and `patching-node-left-out-of-pool` fails with what to do.
  A node that was already out of the pool before the run (drained by hand) is patched
  but not put back: the workflow only returns what it took out.
-#}
{%- from "patching/map.jinja" import patching with context %}
{%- set p = patching %}
{%- set compliant_check = [{
    'fun': 'ops_patch.check',
    'patchset': p.patchset,
    'get_return': 'compliant',
}] %}

{%- if not p.patchset %}
patching-no-active-set:
  test.succeed_without_changes:
    - name: "no active patch set"
    - comment: "ops:patch:active_set is not set: no patch set to install"

{%- elif not p.manage_packages %}
{#- Audit mode: report compliance, change nothing. #}
patching-audit-{{ p.patchset }}:
  test.fail_without_changes:
    - name: "patch set {{ p.patchset }} installed"
    - comment: >-
        Patch set {{ p.patchset }} is NOT installed on {{ grains['id'] }} (audit only, as
        patching:manage_packages is False); see: salt {{ grains['id'] }} ops_patch.check {{ p.patchset }}
    - unless: {{ compliant_check | json }}

{%- else %}
{%-   set ignite = p.ignite or {} %}

patching-pull-out:
  ops_node.pulled_out:
    - pool: {{ p.pool }}
    - reason: "saltpipe patch {{ p.patchset }}"
    {#- check: nothing to do (and no one to pull out) when the set is installed #}
    - unless: {{ compliant_check | json }}

patching-install:
  ops_node.patched:
    - name: "patch set {{ p.patchset }}"
    - patchset: {{ p.patchset | json }}
    - require:
      - ops_node: patching-pull-out

{%-   if p.manage_services %}

patching-restart:
  ops_node.service_restarted:
    - name: {{ p.service }}
    - onchanges:
      - ops_node: patching-install
{%-   endif %}

patching-ignite:
  ops_node.ignited:
    - url: {{ p.health_url }}
    - expect_status: {{ ignite.get('expect_status', 200) }}
    - retries: {{ ignite.get('retries', 30) }}
    - interval: {{ ignite.get('interval', 2) }}
    - require:
      - ops_node: patching-install
{%-   if p.manage_services %}
      - ops_node: patching-restart
{%-   endif %}
    {#- only after this run changed something: the node was pulled out or patched #}
    - onchanges:
      - ops_node: patching-pull-out
      - ops_node: patching-install

patching-pull-in:
  ops_node.pulled_in:
    - pool: {{ p.pool }}
    - require:
      - ops_node: patching-ignite
    {#- only what this run took out: a node drained by hand stays out #}
    - onchanges:
      - ops_node: patching-pull-out

{#- Install failed: nothing was restarted, the old process still serves. Put the
    node back if (and only if) it still answers healthy; the run still fails. #}
patching-recover-ignite:
  ops_node.ignited:
    - url: {{ p.health_url }}
    - expect_status: {{ ignite.get('expect_status', 200) }}
    - retries: {{ ignite.get('retries', 30) }}
    - interval: {{ ignite.get('interval', 2) }}
    - onfail:
      - ops_node: patching-install

patching-recover-pull-in:
  ops_node.pulled_in:
    - pool: {{ p.pool }}
    - onfail:
      - ops_node: patching-install
    - require:
      - ops_node: patching-recover-ignite
    - onchanges:
      - ops_node: patching-pull-out

{#- Check: a node this run pulled out must be back in its pool. Evaluated last,
    against the drain flag itself, so it holds whichever path above was taken. #}
patching-node-left-out-of-pool:
  test.fail_without_changes:
    - name: "{{ grains['id'] }} in pool {{ p.pool }}"
    - comment: >-
        This run pulled {{ grains['id'] }} out of pool {{ p.pool }} and it is still out
        (the patch, restart or ignite failed; see the states above). Fix the node, then
        put it back with: salt {{ grains['id'] }} ops_lb.pull_in {{ p.pool }}
    - onchanges:
      - ops_node: patching-pull-out
    - unless:
      - fun: ops_lb.status
        pool: {{ p.pool }}
        get_return: in_pool
{%- endif %}
