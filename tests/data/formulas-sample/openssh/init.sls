{% from "openssh/map.jinja" import openssh with context %}

include:
  - openssh.config

openssh:
  pkg.installed:
    - name: {{ openssh.server }}
  service.running:
    - enable: True
    - name: {{ openssh.service }}
    - require:
      - pkg: openssh
