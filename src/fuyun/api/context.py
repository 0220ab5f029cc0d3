"""What every request needs: the store, the drivers, the settings."""

from __future__ import annotations

from dataclasses import dataclass

from fuyun.config import Settings
from fuyun.drivers.compute import ComputeDriver
from fuyun.services.networks import Networking
from fuyun.services.vms import Compute
from fuyun.store.engine import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    compute_driver: ComputeDriver

    @property
    def compute(self) -> Compute:
        return Compute(db=self.db, driver=self.compute_driver, settings=self.settings)

    @property
    def networking(self) -> Networking:
        return Networking(db=self.db, settings=self.settings)
