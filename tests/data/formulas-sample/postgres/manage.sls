{% from "postgres/map.jinja" import postgres with context %}

include:
  - postgres.server

{%- for name, db in postgres.databases.items() %}

postgres-database-{{ name }}:
  postgres_database.present:
    - name: {{ name }}
    - owner: {{ db.get('owner', 'postgres') }}
    - encoding: {{ db.get('encoding', 'UTF8') }}
    - template: {{ db.get('template', 'template0') }}
    - require:
      - service: postgresql-running
{%- endfor %}

{#- Tell the minion's own config where the cluster lives (salt-formula's minion.d idiom) #}
postgres-minion-config:
  file.managed:
    - name: {{ salt['config.get']('config_dir') }}/minion.d/postgres.conf
    - contents: |
        postgres.bins_dir: /usr/lib/postgresql/{{ postgres.version }}/bin
