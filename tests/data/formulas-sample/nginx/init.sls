include:
  - nginx.pkg
  - nginx.config
  - nginx.service
