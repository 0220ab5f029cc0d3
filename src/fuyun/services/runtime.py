"""Everything a long operation needs besides its arguments: store, drivers, placement, engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from fuyun.config import Settings
from fuyun.drivers.compute import ComputeDriver
from fuyun.drivers.network import NetworkDriver
from fuyun.services.placement import Placement
from fuyun.store.engine import Database
from fuyun.workflows.engine import Engine


@dataclass
class Runtime:
    db: Database
    settings: Settings
    driver: ComputeDriver
    # The network driver the reconcile loop and a move (its destination devices)
    # apply desired state through; the configured one when not given.
    network: NetworkDriver | None = None
    placement: Placement = field(init=False)
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        from fuyun.services.migration.workflow import register as register_migration
        from fuyun.services.provision import register_all

        if self.network is None:
            from fuyun.drivers.network import create_network_driver

            self.network = create_network_driver(self.settings.network_driver)
        self.placement = Placement(self.db, self.settings)
        self.engine = Engine(
            self.db,
            self,
            lease_s=self.settings.workflow_lease_s,
            queue=self.settings.workflow_runner == "queue",
            wait_s=self.settings.workflow_wait_s,
        )
        register_all(self.engine)
        register_migration(self.engine)
