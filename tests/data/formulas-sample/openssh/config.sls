{% from "openssh/map.jinja" import openssh with context %}

sshd_config:
  file.managed:
    - name: {{ openssh.sshd_config }}
    - source: {{ openssh.sshd_config_src }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0600'
    - watch_in:
      - service: openssh

{% if salt['pillar.get']('openssh:banner') %}
sshd_banner:
  file.managed:
    - name: {{ openssh.banner }}
    - contents_pillar: openssh:banner
    - user: root
    - group: root
    - mode: '0644'
{% endif %}
