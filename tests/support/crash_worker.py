"""Run one VM operation against a store and SIGKILL this process just before a named step.

Used by the crash-recovery tests: ``python -m tests.support.crash_worker DB_URL OP STEP ARGS``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import vms
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database


def main() -> None:
    url, op, crash_at, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    db = Database(url)
    rt = Runtime(db, Settings(database_url=url), FakeComputeDriver())

    def crash(_wf: uuid.UUID, step: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    rt.engine.before_step = crash
    if op == "create":
        vms.create_vms(
            rt,
            SYSTEM,
            vms.VmRequest(
                name=args["name"],
                flavor="s1.small",
                count=args["count"],
                tenant_id=uuid.UUID(args["tenant_id"]),
                networks=tuple(args["networks"]),
            ),
        )
    elif op == "migrate":
        from fuyun.services.bootstrap import resync_driver
        from fuyun.services.migration import service
        from fuyun.services.migration.plan import Target

        resync_driver(db, rt.driver)  # this process's hypervisor runs what the store says
        service.migrate(rt, SYSTEM, uuid.UUID(args["vm_id"]), Target(host=args["to"]))
    elif op == "delete":
        vms.delete_vm(rt, SYSTEM, uuid.UUID(args["vm_id"]))
    print("finished without crashing")


if __name__ == "__main__":
    main()
