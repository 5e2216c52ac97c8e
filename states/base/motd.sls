{#- The login banner: who this host is (environment, roles, datacenter) and the pillar's notice. -#}
{%- from "base/map.jinja" import base with context %}

base-motd:
  file.managed:
    - name: {{ base.root }}{{ base.motd_file }}
    - source: salt://base/files/motd.jinja
    - template: jinja
    - makedirs: True
    - mode: "0644"
{%- if base.manage_owners %}
    - user: root
    - group: root
{%- endif %}
    - context:
        notice: {{ base.motd | json }}
