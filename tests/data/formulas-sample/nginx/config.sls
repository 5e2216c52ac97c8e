{%- from "nginx/map.jinja" import nginx with context %}

include:
  - nginx.pkg

nginx-config:
  file.managed:
    - name: {{ nginx.config_file }}
    - source: salt://nginx/files/nginx.conf.jinja
    - template: jinja
    - context:
        nginx: {{ nginx | json }}
    - require:
      - pkg: nginx-pkg

{%- for server, settings in nginx.servers.items() %}

nginx-server-{{ server }}:
  file.managed:
    - name: {{ nginx.vhost_dir }}/{{ server }}.conf
    - source: salt://nginx/files/server.conf.jinja
    - template: jinja
    - context:
        server: {{ server }}
        settings: {{ settings | json }}
    - require:
      - pkg: nginx-pkg
{%- endfor %}
