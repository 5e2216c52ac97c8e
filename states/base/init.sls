{#-
  base: what every saltpipe-managed host gets, whatever its role:
  packages, operator accounts and their SSH keys, kernel tunables, the login banner.
  Pillar: `base` (docs/formulas.md). Sandbox: base:root, base:manage_packages,
  base:manage_services, base:manage_users, base:manage_owners.
-#}
include:
  - base.packages
  - base.users
  - base.sysctl
  - base.motd
