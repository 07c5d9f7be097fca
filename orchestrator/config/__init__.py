"""Reading the inventory: Ansible YAML -> validated Hosts, host patterns."""
