"""A fast reader for the strict YAML subset that :func:`~fuyun.fabric.yamlio.dump_fabric` writes.

PyYAML builds a Python node per scalar: a 100,000-host file is a million nodes and
several seconds. The files fuyun writes are far simpler — top-level ``key: value``
lines and one ``- {key: value, …}`` flow mapping per list entry, with plain scalars
only — so they can be read line by line with two regular expressions.

The contract is *same answer or no answer*: :func:`parse_dumped` returns exactly what
``yaml.safe_load`` would, or ``None`` as soon as a line strays from the subset
(a comment after a value, a quoted string, block style, a duplicate key, …), and the
caller falls back to PyYAML. A plain scalar is accepted only when PyYAML's own
resolver says it is a string, or it is a decimal integer or ``null``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

#: Characters a plain scalar may hold in a flow collection without changing meaning:
#: no ``,[]{}`` (flow indicators), ``:`` or ``#`` (mapping/comment), no leading
#: indicator, no leading or trailing space.
_PLAIN = re.compile(r"[A-Za-z0-9_./]([A-Za-z0-9_./ ()'-]*[A-Za-z0-9_./)-])?")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_STR_TAG = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()
_TOP = re.compile(r"([a-z][a-z0-9_]*):(?: (.*))?")
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_NO_VALUE = object()
_UNSEEN = object()


def is_plain_string(value: str) -> bool:
    """Whether ``value`` may be written unquoted and read back as the same string."""
    if not _PLAIN.fullmatch(value) or "  " in value:
        return False
    return _resolver.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG


def parse_dumped(text: str) -> dict[str, Any] | None:
    """The document as ``yaml.safe_load`` would give it, or ``None`` outside the subset."""
    return _Reader().document(text)


class _Reader:
    """One read; remembers each scalar it has judged (names of ToRs, models and enum
    values repeat on every host line)."""

    def __init__(self) -> None:
        self.scalars: dict[str, object] = {"null": None}
        self.keys: set[str] = set()

    def document(self, text: str) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        open_key: str | None = None  # a ``key:`` line whose entries may follow
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            if line.startswith("- {") and line.endswith("}"):
                entry = self.entry(line[3:-1])
                if entry is None or open_key is None:
                    return None
                if data[open_key] is None:
                    data[open_key] = []
                data[open_key].append(entry)
                continue
            top = _TOP.fullmatch(line)
            if top is None or top[1] in data:
                return None
            key, raw = top[1], top[2]
            if raw is None:  # ``key:`` alone is null until entries follow
                data[key], open_key = None, key
                continue
            value = [] if raw == "[]" else self.scalar(raw)
            if value is _NO_VALUE:
                return None
            data[key], open_key = value, None
        return data or None

    def entry(self, inner: str) -> dict[str, Any] | None:
        """``key: value, …`` of one flow mapping. Splitting on ``", "`` is exact because
        no accepted plain scalar holds a comma, a colon or a bracket."""
        entry: dict[str, Any] = {}
        parts = iter(inner.split(", ") if inner else ())
        for part in parts:
            key, colon, raw = part.partition(": ")
            if not colon or key in entry or not self.key(key):
                return None
            value: object
            if raw.startswith("["):
                items = [raw[1:]]
                while not items[-1].endswith("]"):
                    following = next(parts, None)
                    if following is None:
                        return None
                    items.append(following)
                items[-1] = items[-1][:-1]
                values = [] if items == [""] else [self.scalar(item) for item in items]
                if any(v is _NO_VALUE for v in values):
                    return None
                value = values
            else:
                value = self.scalar(raw)
                if value is _NO_VALUE:
                    return None
            entry[key] = value
        return entry

    def key(self, key: str) -> bool:
        if key not in self.keys:
            if not _KEY.fullmatch(key):
                return False
            self.keys.add(key)
        return True

    def scalar(self, raw: str) -> object:
        value = self.scalars.get(raw, _UNSEEN)
        if value is _UNSEEN:
            value = self.scalars[raw] = _judge(raw)
        return value


def _judge(raw: str) -> object:
    """A plain scalar's value: a decimal int, a string that resolves as one, or nothing."""
    if _INT.fullmatch(raw):
        return int(raw)
    return raw if is_plain_string(raw) else _NO_VALUE
