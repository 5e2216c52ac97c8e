{% from "openssh/map.jinja" import openssh with context %}

openssh-client:
  pkg.installed:
    - name: {{ openssh.client }}
