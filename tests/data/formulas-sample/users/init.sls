{% from "users/map.jinja" import users as users_map with context %}

{%- for name, user in salt['pillar.get']('users', {}).items() if user.absent is not defined or not user.absent %}
{%- set home = user.get('home', '/home/' ~ name) %}

users_{{ name }}_user:
  group.present:
    - name: {{ user.get('prime_group', {}).get('name', name) }}
  user.present:
    - name: {{ name }}
    - home: {{ home }}
    - shell: {{ user.get('shell', users_map.shell) }}
    - createhome: True
    - gid: {{ user.get('prime_group', {}).get('name', name) }}
    {%- if user.get('sudouser', False) %}
    - groups:
      - {{ users_map.sudo_group }}
    {%- endif %}
    - require:
      - group: users_{{ name }}_user

{%- for key in user.get('ssh_auth', []) %}

users_ssh_auth_{{ name }}_{{ loop.index0 }}:
  ssh_auth.present:
    - user: {{ name }}
    - name: {{ key }}
    - require:
      - user: users_{{ name }}_user
{%- endfor %}

{%- if grains['os_family'] == 'RedHat' and user.get('sudouser', False) %}

users_{{ name }}_sudoers:
  file.managed:
    - name: /etc/sudoers.d/{{ name }}
    - contents: '{{ name }} ALL=(ALL) ALL'
    - mode: '0440'
{%- endif %}
{%- endfor %}

{%- for name, user in salt['pillar.get']('users', {}).items() if user.absent is defined and user.absent %}

users_absent_{{ name }}:
  user.absent:
    - name: {{ name }}
    - purge: {{ user.get('purge', False) }}
{%- endfor %}
