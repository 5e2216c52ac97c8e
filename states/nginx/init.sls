{#-
  nginx: the web tier. Package, a templated nginx.conf, one server block per vhost of
  pillar nginx:vhosts (each proxying to its upstream and answering the load balancer's
  health check from the ops_lb drain flag), and the service, reloaded when any of
  them changes. Vhosts dropped from pillar are disabled (sites-enabled is cleaned).
  Pillar: `nginx` (docs/formulas.md). Sandbox: nginx:root, nginx:manage_packages,
  nginx:manage_services, nginx:manage_owners.
-#}
{%- from "nginx/map.jinja" import nginx with context %}
{%- set r = nginx.root %}

{%- if nginx.manage_packages %}
nginx-package:
  pkg.installed:
    - name: {{ nginx.package }}
{%- endif %}

nginx-conf:
  file.managed:
    - name: {{ r }}{{ nginx.conf_dir }}/nginx.conf
    - source: salt://nginx/files/nginx.conf.jinja
    - template: jinja
    - makedirs: True
    - mode: "0644"
{%- if nginx.manage_owners %}
    - user: root
    - group: root
{%- endif %}
{%- if nginx.manage_packages %}
    - require:
      - pkg: nginx-package
{%- endif %}

{%- for name, vhost in nginx.vhosts | dictsort %}
{%-   set vhost = vhost or {} %}

nginx-vhost-{{ name }}:
  file.managed:
    - name: {{ r }}{{ nginx.sites_available }}/{{ name }}.conf
    - source: salt://nginx/files/vhost.conf.jinja
    - template: jinja
    - makedirs: True
    - mode: "0644"
{%-   if nginx.manage_owners %}
    - user: root
    - group: root
{%-   endif %}
    - context:
        name: {{ name | json }}
    - require:
      - file: nginx-conf

nginx-vhost-{{ name }}-enabled:
  file.symlink:
    - name: {{ r }}{{ nginx.sites_enabled }}/{{ name }}.conf
    {#- Relative, so the link resolves both on the host and inside a sandbox root. #}
    - target: ../{{ nginx.sites_available.split('/') | last }}/{{ name }}.conf
    - makedirs: True
    - require:
      - file: nginx-vhost-{{ name }}

{%- endfor %}

{#- Static document roots named by vhost locations (several vhosts may share one). #}
{%- set webroots = [] %}
{%- for name, vhost in nginx.vhosts | dictsort %}
{%-   for path, location in ((vhost or {}).get('locations') or {}) | dictsort %}
{%-     if location and location.get('root') and location.root not in webroots %}
{%-       do webroots.append(location.root) %}
{%-     endif %}
{%-   endfor %}
{%- endfor %}
{%- for webroot in webroots %}

nginx-webroot-{{ webroot }}:
  file.directory:
    - name: {{ r }}{{ webroot }}
    - makedirs: True
    - mode: "0755"
{%-   if nginx.manage_owners %}
    - user: root
    - group: {{ nginx.user }}
{%-   endif %}
{%- endfor %}

{#- Only the vhosts of pillar stay enabled: the package's "default" site and
    vhosts removed from pillar are unlinked (their sites-available file stays). #}
nginx-sites-enabled:
  file.directory:
    - name: {{ r }}{{ nginx.sites_enabled }}
    - makedirs: True
    - clean: True
{%- if nginx.vhosts %}
    - require:
{%-   for name in nginx.vhosts | sort %}
      - file: nginx-vhost-{{ name }}-enabled
{%-   endfor %}
{%- endif %}

{%- if nginx.manage_services %}

nginx-service:
  service.running:
    - name: {{ nginx.service }}
    - enable: True
    {#- reload, not restart: open connections survive a config change #}
    - reload: True
    - watch:
      - file: nginx-conf
      - file: nginx-sites-enabled
{%-   for name in nginx.vhosts | sort %}
      - file: nginx-vhost-{{ name }}
      - file: nginx-vhost-{{ name }}-enabled
{%-   endfor %}
{%-   if nginx.manage_packages %}
    - require:
      - pkg: nginx-package
{%-   endif %}
{%- endif %}
