"""Address, VLAN and MAC allocation: integer interval math, no I/O."""
