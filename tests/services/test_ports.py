"""Port creation details that the API tests do not reach: MAC collisions and the OUI."""

from __future__ import annotations

import itertools

import pytest

from fuyun.config import Settings
from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.services import networks, ports, tenants
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from tests.services.test_addressing import _fabric


@pytest.fixture
def net(db: Database) -> networks.Network:
    _fabric(db)
    tenant = tenants.create_tenant(db, SYSTEM, name="acme")
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url))
    return networks.create_network(
        ctx, SYSTEM, networks.NetworkRequest(name="n", cidr="10.0.0.0/24", tenant_id=tenant.id)
    )


def test_a_mac_collision_is_retried(
    db: Database, net: networks.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url))
    first = ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))
    sequence = itertools.chain([first.mac, first.mac], itertools.repeat("fa:16:3e:00:00:99"))
    monkeypatch.setattr(ports, "random_mac", lambda oui: next(sequence))
    second = ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))
    assert second.mac == "fa:16:3e:00:00:99"
    assert second.ips == ["10.0.0.3"], "the retried insert kept its address"


def test_mac_retries_are_bounded(
    db: Database, net: networks.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url))
    first = ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))
    monkeypatch.setattr(ports, "random_mac", lambda oui: first.mac)
    with pytest.raises(Conflict, match="free MAC"):
        ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))


def test_explicit_mac_in_use_is_409(db: Database, net: networks.Network) -> None:
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url))
    first = ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))
    with pytest.raises(Conflict) as err:
        ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id, mac=first.mac))
    assert err.value.code == "mac_in_use"


def test_the_oui_is_configurable_and_checked(db: Database, net: networks.Network) -> None:
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url, mac_oui="02:aa:bb"))
    assert ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id)).mac.startswith(
        "02:aa:bb:"
    )
    bad = networks.Networking(db=db, settings=Settings(database_url=db.url, mac_oui="01:00:5e"))
    with pytest.raises(InvalidInput, match="unicast"):
        ports.create_port(bad, SYSTEM, ports.PortRequest(network_id=net.id))
