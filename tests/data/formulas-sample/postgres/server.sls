{% from "postgres/map.jinja" import postgres with context %}

postgresql:
  pkg.installed

postgresql-running:
  service.running:
    - name: {{ postgres.service }}
    - enable: True
    - require:
      - pkg: postgresql

{#- conf.d exists from PostgreSQL 12 on; the installed version decides #}
{%- set installed = salt['pkg.version'](postgres.pkg) %}
{%- if installed and salt['pkg.version_cmp'](installed, '12') >= 0 %}

postgresql-conf-d:
  file.directory:
    - name: {{ postgres.conf_dir }}/conf.d
    - user: postgres
    - require:
      - pkg: postgresql
{%- endif %}
