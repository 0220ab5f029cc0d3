"""What every request needs: the store, the drivers, the settings, the workflow runtime."""

from __future__ import annotations

from dataclasses import dataclass

from fuyun.config import Settings
from fuyun.drivers.compute import ComputeDriver
from fuyun.services.networks import Networking
from fuyun.services.runtime import Runtime
from fuyun.services.signin_limit import SignInLimiter
from fuyun.store.engine import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    runtime: Runtime
    # Failed sign-ins of this process, for /auth/login and the portal alike.
    signin_limiter: SignInLimiter

    @property
    def compute_driver(self) -> ComputeDriver:
        return self.runtime.driver

    @property
    def networking(self) -> Networking:
        return Networking(db=self.db, settings=self.settings)
