"""A DHCP scope as a ``dnsmasq`` configuration: static reservations only, DNS for the zone.

dnsmasq is told never to look further than its own zone (``no-resolv``, ``no-hosts``,
``local=/zone/``): a name it does not know gets NXDOMAIN instead of a query to the
machine's resolver, so a tenant never learns anything from outside its network. Each
subnet is a ``static`` range, so only the listed ``dhcp-host`` reservations are
offered; an IPv6 subnet adds router advertisements (``enable-ra``: default route
and the managed flag) and stateful DHCPv6 from the same reservations. A changed
scope is applied by rewriting the hosts file and sending dnsmasq SIGHUP, which
re-reads it without dropping leases.
"""

from __future__ import annotations

import ipaddress

from fuyun.netsvc.scope import DhcpScope


def config(scope: DhcpScope, *, interface: str, hosts_file: str, lease_file: str) -> str:
    """The main configuration (static between changes of the network's subnets)."""
    vlans = ", ".join(map(str, scope.vlans))
    lines = [
        f"# fuyun DHCP/DNS for network {scope.network} of {scope.tenant} (VLANs {vlans})",
        f"interface={interface}",
        "bind-interfaces",
        "except-interface=lo",
        "no-resolv",
        "no-hosts",
        "no-poll",
        f"domain={scope.zone}",
        f"local=/{scope.zone}/",
        f"dhcp-leasefile={lease_file}",
        f"dhcp-hostsfile={hosts_file}",
        f"addn-hosts={hosts_file}.dns",
        "dhcp-authoritative",
        f"dhcp-option=option:mtu,{scope.mtu}",
        f"dhcp-option=option:domain-name,{scope.zone}",
    ]
    for i, subnet in enumerate(scope.subnets):
        net = ipaddress.ip_network(subnet.cidr)
        tag = f"s{i}"
        if net.version == 4:
            lines.append(f"dhcp-range=set:{tag},{net.network_address},static,{net.netmask},12h")
            if subnet.gateway:
                lines.append(f"dhcp-option=tag:{tag},option:router,{subnet.gateway}")
        else:
            # Stateful DHCPv6 from the static reservations (by MAC: dnsmasq reads it from
            # the client's DUID-LL or neighbour entry); router adverts carry the gateway
            # and the managed flag, so a client knows to ask instead of inventing one.
            lines.append(f"dhcp-range=set:{tag},{net.network_address},static,{net.prefixlen},12h")
            if "enable-ra" not in lines:
                lines.append("enable-ra")
    if scope.dns_server:
        lines.append(f"dhcp-option=option:dns-server,{scope.dns_server}")
    return "\n".join(lines) + "\n"


def hosts(scope: DhcpScope) -> str:
    """``dhcp-hostsfile`` lines: one reservation per MAC (a dual-stack NIC lists both)."""
    by_mac: dict[str, list[tuple[str, str]]] = {}
    for r in scope.reservations:
        by_mac.setdefault(r.mac, []).append((r.address, r.hostname))
    out = []
    for mac, entries in sorted(by_mac.items()):
        addresses = ",".join(a if ":" not in a else f"[{a}]" for a, _ in entries)
        out.append(f"{mac},{addresses},{entries[0][1]}")
    return "\n".join(out) + ("\n" if out else "")


def dns_hosts(scope: DhcpScope) -> str:
    """``addn-hosts`` lines: forward and reverse records for every reservation."""
    lines = [f"{r.address} {r.hostname}.{scope.zone} {r.hostname}" for r in scope.reservations]
    return "\n".join(lines) + ("\n" if lines else "")
