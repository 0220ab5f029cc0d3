"""Anti-spoofing for VM ports: ``table bridge fuyun_ports``, rendered from the port map.

Why the bridge family
    Only here is the bridge port a packet came in on (the VM's tap or veth) still
    visible as ``iifname``; the vswitch policy (``table inet fuyun``) sees the
    bridge instead and keys ports by MAC, so it relies on this table to bind each
    MAC to its port. A frame from a VM port passes only with the port's own MAC,
    ARP only for the port's own IPv4 addresses (or the 0.0.0.0 of a probe), IPv4
    and IPv6 only from the port's own addresses (plus the unspecified and
    link-local sources DHCP and neighbour discovery need), and no other
    ethertype. Frames of interfaces that are no fuyun port are not looked at.

It is stateless (one set lookup per check, however many ports the host has) and
replaced atomically like every table the driver owns.
"""

from __future__ import annotations

import ipaddress

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts

TABLE = "bridge fuyun_ports"


def render(ports: HostPorts, devices: dict[str, str]) -> str:
    """The whole table as one ``nft -f`` script; ``devices`` maps port id to interface."""
    names, macs, v4, v6 = [], [], [], []
    for p in sorted(ports.ports, key=lambda p: devices[p.port_id]):
        dev = devices[p.port_id]
        names.append(f'"{dev}"')
        macs.append(f'"{dev}" . {p.mac.lower()}')
        for ip in sorted(p.ips):
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError as exc:
                raise DriverError(f"linux: port {p.port_id} has a bad address {ip!r}") from exc
            (v4 if addr.version == 4 else v6).append(f'"{dev}" . {addr}')
    out = [
        f"table {TABLE} {{}}",
        f"delete table {TABLE}",
        f"table {TABLE} {{",
        *_set("ports", "ifname", names),
        *_set("port_mac", "ifname . ether_addr", macs),
        *_set("port_ipv4", "ifname . ipv4_addr", v4),
        *_set("port_ipv6", "ifname . ipv6_addr", v6),
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority -200; policy accept;",
        "\t\tiifname != @ports accept",
        "\t\tiifname . ether saddr != @port_mac drop",
        "\t\tether type arp iifname . arp saddr ether != @port_mac drop",
        "\t\tether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_ipv4 drop",
        "\t\tether type ip ip saddr != 0.0.0.0 iifname . ip saddr != @port_ipv4 drop",
        "\t\tether type ip6 ip6 saddr != { ::, fe80::/10 } iifname . ip6 saddr != @port_ipv6 drop",
        "\t\tether type != { ip, ip6, arp } drop",
        "\t}",
        "}",
    ]
    return "\n".join(out) + "\n"


def _set(name: str, kind: str, elements: list[str]) -> list[str]:
    body = [f"\tset {name} {{", f"\t\ttype {kind}"]
    if elements:
        body.append(f"\t\telements = {{ {', '.join(elements)} }}")
    body.append("\t}")
    return body
