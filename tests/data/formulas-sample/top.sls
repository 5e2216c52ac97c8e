base:
  '*':
    - openssh
    - chrony
    - users
  'os_family:Debian':
    - match: grain
    - nginx
