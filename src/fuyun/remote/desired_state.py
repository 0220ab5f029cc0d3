"""A host's desired state, read over HTTP from the API: the host agent's source.

Life cycle: :meth:`HttpDesiredStateSource.resync` reads the host's whole desired state
(on start, and whenever the API refuses a token); :meth:`~HttpDesiredStateSource.watch`
long-polls for what changed since the last answer, with the resume token the API
gave; :meth:`~HttpDesiredStateSource.report` says which generation of which device is
applied, and any drift seen. The source keeps the merged view in :attr:`devices`.

Failure behaviour: a controller that is restarting, unreachable or answering 5xx is
retried with capped backoff inside ``watch`` until its timeout, which then answers
"nothing changed" — so an agent loop simply calls ``watch`` again and keeps its
token, and loses nothing however long the controllers are away (the token is
resolved against the store by whichever controller answers). A refused credential
(401/403) raises :class:`AgentRefused`: retrying cannot help.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1"


class AgentRefused(Exception):
    """The API refused this agent's credential or host (401, 403, 404)."""


@dataclass(frozen=True)
class DesiredDevice:
    id: uuid.UUID
    device_type: str
    device_name: str
    enforcement_point: str
    flavor: str
    generation: int
    digest: str
    rendered: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DesiredDevice:
        return cls(
            uuid.UUID(d["id"]),
            d["device_type"],
            d["device_name"],
            d["enforcement_point"],
            d["flavor"],
            int(d["desired_generation"]),
            d["digest"],
            d["rendered"],
        )


@dataclass(frozen=True)
class Changes:
    """One answer: the devices that changed (all of them when ``full``) and those gone."""

    full: bool
    devices: list[DesiredDevice]
    removed: list[uuid.UUID]
    token: str

    @property
    def changed(self) -> bool:
        return self.full or bool(self.devices) or bool(self.removed)


@dataclass(frozen=True)
class Applied:
    """What an agent reports for one device."""

    device_id: uuid.UUID
    generation: int
    digest: str
    drift: dict[str, Any] | None = None


@dataclass
class HttpDesiredStateSource:
    """Desired state of ``host`` from the API at ``url``, authenticated with ``token``.

    ``urls`` may list several controllers (behind no load balancer): a failing one is
    skipped for the next. Not thread-safe: one agent loop owns one source.
    """

    urls: list[str]
    host: str
    token: str
    watch_timeout_s: float = 25.0
    backoff_max_s: float = 2.0
    devices: dict[uuid.UUID, DesiredDevice] = field(default_factory=dict)
    resume_token: str | None = None
    _client: httpx.Client | None = None
    _current: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.urls, str):
            self.urls = [self.urls]
        self._client = self._client or httpx.Client(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(10.0, read=self.watch_timeout_s + 15.0),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- reading ---------------------------------------------------------------------

    def resync(self, deadline_s: float | None = None) -> Changes:
        """The host's whole desired state; replaces :attr:`devices`."""
        body = self._call("GET", f"/agent/hosts/{self.host}/desired-state", deadline_s=deadline_s)
        if body is None:
            raise ConnectionError(f"no controller answered for host {self.host}")
        return self._absorb(body)

    def watch(self, timeout_s: float | None = None) -> Changes:
        """Block until something of the host changed since the last answer, or ``timeout_s``.

        Starts with a full resync when there is no token yet (or the API refused it).
        """
        timeout_s = self.watch_timeout_s if timeout_s is None else timeout_s
        if self.resume_token is None:
            return self.resync(deadline_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        body = self._call(
            "GET",
            f"/agent/hosts/{self.host}/watch",
            params={"since": self.resume_token, "timeout_s": timeout_s},
            deadline_s=timeout_s,
            on_invalid_resync=True,
        )
        if body is None:  # no controller in time: nothing is known to have changed
            return Changes(False, [], [], self.resume_token)
        if body == "resync":
            return self.resync(deadline_s=max(deadline - time.monotonic(), 1.0))
        return self._absorb(body)

    def _absorb(self, body: dict[str, Any]) -> Changes:
        devices = [DesiredDevice.from_json(d) for d in body["devices"]]
        removed = [uuid.UUID(hex=r) for r in body.get("removed", [])]
        if body["full"]:
            self.devices = {d.id: d for d in devices}
        else:
            for d in devices:
                self.devices[d.id] = d
            for r in removed:
                self.devices.pop(r, None)
        self.resume_token = body["token"]
        return Changes(bool(body["full"]), devices, removed, body["token"])

    # -- reporting -------------------------------------------------------------------

    def report(self, applied: Iterable[Applied], deadline_s: float = 30.0) -> list[uuid.UUID]:
        """Report applied generations (and drift); answers the ids of devices still lagging.

        Raises ConnectionError when no controller took the report in ``deadline_s``;
        reports are idempotent, so the caller sends them again later.
        """
        payload = {
            "devices": [
                {
                    "id": str(a.device_id),
                    "generation": a.generation,
                    "digest": a.digest,
                    "drift": a.drift,
                }
                for a in applied
            ]
        }
        body = self._call(
            "POST", f"/agent/hosts/{self.host}/applied", json=payload, deadline_s=deadline_s
        )
        if body is None:
            raise ConnectionError(f"no controller took the report of host {self.host}")
        return [uuid.UUID(d["id"]) for d in body["lagging"]]

    # -- transport -------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        deadline_s: float | None,
        on_invalid_resync: bool = False,
    ) -> Any:
        """One request, retried across controllers with backoff until ``deadline_s``.

        None when the deadline passed without an answer; ``"resync"`` when the API
        refused the resume token and ``on_invalid_resync`` is set.
        """
        assert self._client is not None
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        pause = 0.05
        while True:
            url = self.urls[self._current % len(self.urls)]
            try:
                r = self._client.request(method, f"{url}{API}{path}", params=params, json=json)
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code < 500:
                if r.status_code == 422 and on_invalid_resync:
                    return "resync"
                if r.status_code in (401, 403, 404):
                    raise AgentRefused(f"{r.status_code}: {r.text[:300]}")
                r.raise_for_status()
                return r.json()
            self._current += 1  # this controller is away: the next one, after a pause
            if deadline is not None and time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, self.backoff_max_s)
