"""Basic network services for tenant networks: DHCP reservations and DNS names from IPAM."""
