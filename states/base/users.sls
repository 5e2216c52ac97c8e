{#-
  Operator groups and accounts with their SSH keys.
  Accounts need the host's /etc/passwd, so they are only managed when base:manage_users
  is True (the default outside a sandbox); the authorized_keys files honour base:root,
  so a sandboxed run still renders and writes them.
-#}
{%- from "base/map.jinja" import base with context %}

{%- if base.manage_users %}
{%-   for group, spec in base.groups | dictsort %}

base-group-{{ group }}:
  group.present:
    - name: {{ group }}
{%-     if spec and spec.gid is defined %}
    - gid: {{ spec.gid }}
{%-     endif %}
{%-   endfor %}
{%- endif %}

{%- for user, spec in base.users | dictsort %}
{%-   set spec = spec or {} %}
{%-   set home = spec.get('home', base.home_base ~ '/' ~ user) %}
{%-   set primary = spec.get('gid', user) %}

{%-   if base.manage_users %}

base-user-{{ user }}:
  user.present:
    - name: {{ user }}
{%-     if spec.uid is defined %}
    - uid: {{ spec.uid }}
{%-     endif %}
{%-     if spec.gid is defined %}
    - gid: {{ spec.gid }}
{%-     else %}
    - usergroup: True
{%-     endif %}
{%-     if spec.groups is defined %}
    - groups: {{ spec.groups | json }}
{%-     endif %}
    - fullname: {{ spec.get('fullname', '') | json }}
    - shell: {{ spec.get('shell', base.default_shell) }}
    - home: {{ home }}
    - createhome: True
{%-     if spec.gid is defined and spec.gid in base.groups %}
    - require:
      - group: base-group-{{ spec.gid }}
{%-     endif %}
{%-   endif %}

{%-   if spec.ssh_keys is defined %}

base-user-{{ user }}-ssh-dir:
  file.directory:
    - name: {{ base.root }}{{ home }}/.ssh
    - mode: "0700"
    - makedirs: True
{%-     if base.manage_owners %}
    - user: {{ user }}
    - group: {{ primary }}
{%-     endif %}
{%-     if base.manage_users %}
    - require:
      - user: base-user-{{ user }}
{%-     endif %}

base-user-{{ user }}-authorized-keys:
  file.managed:
    - name: {{ base.root }}{{ home }}/.ssh/authorized_keys
    - contents: {{ spec.ssh_keys | json }}
    - mode: "0600"
{%-     if base.manage_owners %}
    - user: {{ user }}
    - group: {{ primary }}
{%-     endif %}
    - require:
      - file: base-user-{{ user }}-ssh-dir
{%-   endif %}
{%- endfor %}

{%- if base.manage_users %}
{%-   for user in base.users_absent %}

base-user-absent-{{ user }}:
  user.absent:
    - name: {{ user }}
    - purge: False
{%-   endfor %}
{%- endif %}

{%- if not base.manage_users %}

base-users-unmanaged:
  test.succeed_without_changes:
    - name: "base accounts unmanaged"
    - comment: "base:manage_users is False: accounts and groups are left alone (SSH keys are still written under base:root)"
{%- endif %}
