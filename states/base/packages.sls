{#- Base packages present and unwanted ones removed; skipped when base:manage_packages is False. -#}
{%- from "base/map.jinja" import base with context %}

{%- if base.manage_packages %}
{%-   if base.packages %}
base-packages:
  pkg.installed:
    - pkgs: {{ base.packages | json }}
{%-   endif %}

{%-   if base.packages_absent %}
base-packages-absent:
  pkg.removed:
    - pkgs: {{ base.packages_absent | json }}
{%-   endif %}

{%-   if base.manage_services %}
{%-     for service in base.services %}

base-service-{{ service }}:
  service.running:
    - name: {{ service }}
    - enable: True
{%-       if base.packages %}
    - require:
      - pkg: base-packages
{%-       endif %}
{%-     endfor %}
{%-   endif %}
{%- else %}
base-packages-unmanaged:
  test.succeed_without_changes:
    - name: "base packages unmanaged"
    - comment: "base:manage_packages is False: packages and their services are left alone"
{%- endif %}
