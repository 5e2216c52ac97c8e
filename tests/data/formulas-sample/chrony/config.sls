# -*- coding: utf-8 -*-
# vim: ft=sls

{#- Get the `tplroot` from `tpldir` #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- set sls_package_install = tplroot ~ ".package" %}
{%- from tplroot ~ "/map.jinja" import mapdata as chrony with context %}

include:
  - {{ sls_package_install }}

chrony-config-file-file-managed:
  file.managed:
    - name: {{ chrony.config }}
    - source: salt://{{ tplroot }}/files/default/chrony.conf.jinja
    - mode: '0644'
    - user: root
    - group: root
    - makedirs: True
    - template: jinja
    - require:
      - sls: {{ sls_package_install }}
    - context:
        chrony: {{ chrony | json }}
