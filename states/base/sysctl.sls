{#-
  Kernel tunables from pillar base:sysctl, written as one sysctl.d drop-in; systemd-sysctl
  re-applies the drop-ins when the file changes (base:manage_services), so the live values
  and the file never disagree and nothing shell-based is needed.
-#}
{%- from "base/map.jinja" import base with context %}

base-sysctl-file:
{%- if base.sysctl %}
  file.managed:
    - name: {{ base.root }}{{ base.sysctl_file }}
    - source: salt://base/files/sysctl.conf.jinja
    - template: jinja
    - makedirs: True
    - mode: "0644"
{%-   if base.manage_owners %}
    - user: root
    - group: root
{%-   endif %}
    - context:
        sysctl: {{ base.sysctl | json }}
{%- else %}
  file.absent:
    - name: {{ base.root }}{{ base.sysctl_file }}
{%- endif %}

{%- if base.manage_services %}

base-sysctl-apply:
  service.running:
    - name: {{ base.sysctl_service }}
    - enable: True
    - watch:
      - file: base-sysctl-file
{%- endif %}
