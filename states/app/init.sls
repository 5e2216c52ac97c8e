{#-
  app: deploy one release of a JVM service the way the operators do it:
    download (artefact + config into releases/<version>) -> pull out -> switch
    "current" -> restart -> ignite -> pull in
  The node leaves its load-balancer pool (ops:lb:pool) only when the restart-relevant
  files would change (prereq), and goes back in only after the application answers its
  health URL. Pillar: `app`, plus ops:lb:pool and ops:app:health_url (docs/formulas.md).
  Sandbox: app:root, app:manage_packages, app:manage_services, app:manage_users,
  app:manage_owners.
-#}
{%- from "app/map.jinja" import app with context %}
{%- set r = app.root %}
{%- set restart_on = ['app-artifact', 'app-config', 'app-current', 'app-unit'] %}

{%- if app.manage_packages and app.packages %}
app-packages:
  pkg.installed:
    - pkgs: {{ app.packages | json }}
{%- endif %}

{%- if app.manage_users %}

app-group:
  group.present:
    - name: {{ app.group }}
    - system: True

app-user:
  user.present:
    - name: {{ app.user }}
    - gid: {{ app.group }}
    - system: True
    - home: {{ app.base_dir }}
    - createhome: False
    - shell: /usr/sbin/nologin
    - require:
      - group: app-group
{%- endif %}

app-release-dir:
  file.directory:
    - name: {{ r }}{{ app.release_dir }}
    - makedirs: True
    - mode: "0755"
{%- if app.manage_owners %}
    - user: root
    - group: {{ app.group }}
{%- endif %}
{%- if app.manage_users %}
    - require:
      - user: app-user
{%- endif %}

app-artifact:
  file.managed:
    - name: {{ r }}{{ app.release_dir }}/{{ app.artifact.filename }}
{%- if app.artifact.get('contents') is not none %}
    - contents: {{ app.artifact.contents | json }}
{%- else %}
    - source: {{ app.artifact.source }}
    - source_hash: {{ app.artifact.source_hash }}
{%- endif %}
    - mode: "0644"
{%- if app.manage_owners %}
    - user: root
    - group: {{ app.group }}
{%- endif %}
    - require:
      - file: app-release-dir

app-config:
  file.managed:
    - name: {{ r }}{{ app.release_dir }}/{{ app.config_file }}
    - source: salt://app/files/application.yaml.jinja
    - template: jinja
    {#- secrets from pillar: readable by the service account only #}
    - mode: "0640"
{%- if app.manage_owners %}
    - user: root
    - group: {{ app.group }}
{%- endif %}
    - require:
      - file: app-release-dir

app-current:
  file.symlink:
    - name: {{ r }}{{ app.current }}
    {#- relative, so the switch works on the host and inside a sandbox root #}
    - target: releases/{{ app.version }}
    - force: True
    - require:
      - file: app-artifact
      - file: app-config

app-log-dir:
  file.directory:
    - name: {{ r }}{{ app.log_dir }}
    - makedirs: True
    - mode: "0750"
{%- if app.manage_owners %}
    - user: {{ app.user }}
    - group: {{ app.group }}
{%- endif %}
{%- if app.manage_users %}
    - require:
      - user: app-user
{%- endif %}

app-unit:
  file.managed:
    - name: {{ r }}{{ app.unit_dir }}/{{ app.name }}.service
    - source: salt://app/files/app.service.jinja
    - template: jinja
    - makedirs: True
    - mode: "0644"
{%- if app.manage_owners %}
    - user: root
    - group: root
{%- endif %}

{%- if app.lb_pool %}

{#- Out of the pool just before the first file that needs a restart changes;
    a run with nothing to deploy never touches the pool. #}
app-pull-out:
  ops_node.pulled_out:
    - pool: {{ app.lb_pool }}
    - reason: "saltpipe deploy {{ app.name }} {{ app.version }}"
    - prereq:
{%-   for id in restart_on %}
      - file: {{ id }}
{%-   endfor %}
{%- endif %}

{%- if app.manage_services %}

app-restart:
  ops_node.service_restarted:
    - name: {{ app.name }}
    - onchanges:
{%-   for id in restart_on %}
      - file: {{ id }}
{%-   endfor %}
    - require:
      - file: app-log-dir
{%-   if app.manage_packages and app.packages %}
      - pkg: app-packages
{%-   endif %}

app-service:
  service.running:
    - name: {{ app.name }}
    - enable: True
    - require:
      - ops_node: app-restart

app-ignite:
  ops_node.ignited:
    - url: {{ app.health_url }}
    - expect_status: {{ app.ignite.get('expect_status', 200) }}
    - retries: {{ app.ignite.get('retries', 30) }}
    - interval: {{ app.ignite.get('interval', 2) }}
    - require:
      - service: app-service
    {#- warm up only what this run (re)started #}
    - onchanges:
      - ops_node: app-restart
      - service: app-service
{%- endif %}

{%- if app.lb_pool %}

app-pull-in:
  ops_node.pulled_in:
    - pool: {{ app.lb_pool }}
    - require:
{%-   if app.manage_services %}
      - ops_node: app-ignite
{%-   else %}
      - file: app-current
      - file: app-unit
{%-   endif %}
    {#- only what this run took out: a node drained by hand stays out #}
    - onchanges:
      - ops_node: app-pull-out

app-node-left-out-of-pool:
  test.fail_without_changes:
    - name: "{{ grains['id'] }} in pool {{ app.lb_pool }}"
    - comment: >-
        This deploy pulled {{ grains['id'] }} out of pool {{ app.lb_pool }} and it is still
        out ({{ app.name }} {{ app.version }} did not come up healthy; see the states above).
        Fix or roll back, then put it back with: salt {{ grains['id'] }} ops_lb.pull_in {{ app.lb_pool }}
    - onchanges:
      - ops_node: app-pull-out
    - unless:
      - fun: ops_lb.status
        pool: {{ app.lb_pool }}
        get_return: in_pool
{%- endif %}
