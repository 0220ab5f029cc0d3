"""nftables tables the driver owns: atomic replace, read back, fingerprint, marker.

A table is replaced by one ``nft -f`` transaction that creates, deletes and
re-declares only that table, so every other table of the host (the operator's
firewall, another agent's NAT) is never touched and a script the kernel refuses
changes nothing. The marker is a rule-less, hook-less ``fuyun_state`` chain in
the same table, written in a second transaction once the table is in: until
then the table reports no generation, which makes the reconciler apply again.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuyun.domain.errors import DriverError
from fuyun.drivers.network.linux.marker import Marker, fingerprint
from fuyun.drivers.network.linux.place import Place

STATE_CHAIN = "fuyun_state"


def load(place: Place, script: str) -> None:
    """Apply ``script`` in one transaction (all or nothing)."""
    place.run("nft", "-f", "-", stdin=script)


def check(place: Place, script: str) -> None:
    """Ask the kernel whether ``script`` would load, changing nothing."""
    place.run("nft", "-c", "-f", "-", stdin=script)


def _absent(exc: DriverError) -> bool:
    return "No such file or directory" in exc.message


def listing(place: Place, table: str) -> str | None:
    """``nft list table`` of ``table`` ("family name"), or None when it does not exist."""
    try:
        return place.run("nft", "list", "table", *table.split())
    except DriverError as exc:
        if _absent(exc):
            return None
        raise


def marker_only(place: Place, table: str) -> Marker | None:
    """The table's marker alone: one small listing, for deciding that an apply is due."""
    try:
        text = place.run("nft", "list", "chain", *table.split(), STATE_CHAIN)
    except DriverError as exc:
        if _absent(exc):
            return None
        raise
    return Marker.parse(split_marker(text)[1])


def split_marker(text: str) -> tuple[str, str | None]:
    """The listing without the marker chain, and the marker's comment."""
    kept: list[str] = []
    comment = None
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == f"chain {STATE_CHAIN} {{":
            inside = True
            if kept and not kept[-1].strip():
                kept.pop()  # nft separates chains by a blank line
            continue
        if inside:
            if stripped.startswith("comment "):
                comment = stripped[len("comment ") :].strip('"')
            elif stripped == "}":
                inside = False
            continue
        kept.append(line)
    return "\n".join(kept) + "\n", comment


def read(place: Place, table: str) -> tuple[str, Marker | None] | None:
    """(listing without the marker, marker) of ``table``; None when the table is absent."""
    text = listing(place, table)
    if text is None:
        return None
    body, comment = split_marker(text)
    return body, Marker.parse(comment)


def write_marker(
    place: Place, table: str, host: str, generation: int, digest: str, live: str
) -> None:
    """Replace the table's marker: one transaction, nothing else touched."""
    marker = Marker(host, generation, digest, live)
    load(
        place,
        f"add chain {table} {STATE_CHAIN}\n"
        f"delete chain {table} {STATE_CHAIN}\n"
        f'add chain {table} {STATE_CHAIN} {{ comment "{marker.text()}"; }}\n',
    )


def applied(place: Place, table: str, extra: str = "") -> tuple[Marker, str] | None:
    """The table's marker and its live fingerprint (over the listing and ``extra``)."""
    got = read(place, table)
    if got is None or got[1] is None:
        return None
    body, marker = got
    return marker, fingerprint(body, extra)


@dataclass(frozen=True)
class _Seen:
    genid: int
    marker: Marker
    extra: str


class Tables:
    """The driver's tables in one place, re-read in full only when nftables moved.

    Listing a table costs as much as loading it (nft builds its whole cache), and an
    agent observes every pass. The kernel's ruleset generation moves on every commit to
    any table, so while it stands still a table verified in force is still in force:
    one netlink request instead of a listing. What is remembered here is only a
    shortcut — a new driver (or a moved generation) verifies from the device again.
    """

    def __init__(self, place: Place) -> None:
        self.place = place
        self._seen: dict[str, _Seen] = {}

    def _still(self, table: str, extra: str) -> Marker | None:
        seen = self._seen.get(table)
        if seen is not None and seen.extra == extra and seen.genid == self.place.nft_generation():
            return seen.marker
        return None

    def marker(self, table: str, extra: str = "") -> Marker | None:
        """The table's marker: remembered, or one small listing."""
        return self._still(table, extra) or marker_only(self.place, table)

    def applied(self, table: str, extra: str = "") -> tuple[Marker, str] | None:
        """As :func:`applied`, answered from memory while nothing was committed since."""
        still = self._still(table, extra)
        if still is not None:
            return still, still.live
        # The generation is read before the listing: a commit during it moves it again,
        # so what is remembered can only be older than the truth, never newer.
        genid = self.place.nft_generation()
        got = applied(self.place, table, extra)
        if got is not None and got[0].live == got[1]:
            self._seen[table] = _Seen(genid, got[0], extra)
        else:
            self._seen.pop(table, None)
        return got

    def replace(
        self, table: str, script: str, host: str, generation: int, digest: str, extra: str = ""
    ) -> None:
        """Load ``script`` (which must replace ``table`` whole), then mark what was loaded."""
        if not script.strip() or script.lstrip().startswith("# fuyun could not render"):
            raise DriverError(f"linux: no ruleset to load for {table}: {script.strip()[:200]}")
        self._seen.pop(table, None)
        load(self.place, script)
        before = self.place.nft_generation()
        got = read(self.place, table)
        if got is None:
            raise DriverError(f"linux: the script did not create table {table}")
        marker = Marker(host, generation, digest, fingerprint(got[0], extra))
        write_marker(self.place, table, host, generation, digest, marker.live)
        # Remembered only when the marker's commit is the one commit since the listing:
        # then the table is exactly what was fingerprinted, plus its marker.
        if self.place.nft_generation() == before + 1:
            self._seen[table] = _Seen(before + 1, marker, extra)
