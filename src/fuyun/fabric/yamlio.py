"""Reading and writing fabric files, with errors that name the line at fault.

A fabric file is edited by hand and may hold 100,000 hosts, so an error must say
*where*: every finding names the line, the path (``hosts[12].max_vms``) and the
problem. Loading composes the YAML node tree once (that is what ``yaml.load`` does
anyway), constructs plain data from it, validates that with pydantic and maps each
error's ``loc`` back through the node tree to a line.

Writing emits one flow mapping per list entry (``- {name: …, tor: …}``), so a host
is one line: the file stays greppable, diffs stay small, and emitting 100,000 hosts
takes a fraction of a second instead of PyYAML's generic representer's many.
Scalars are quoted exactly when PyYAML would otherwise read them back as something
other than the same string, so ``load_fabric(dump_fabric(spec)) == spec``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fuyun.domain.errors import InvalidInput
from fuyun.fabric.fastyaml import is_plain_string, parse_dumped
from fuyun.fabric.spec import FabricSpec

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LIST_KEYS = (
    "server_models",
    "flavors",
    "sites",
    "interconnects",
    "modules",
    "module_links",
    "switches",
    "hosts",
)
_MAX_MESSAGE_LINES = 20


@dataclass(frozen=True)
class FileFinding:
    """One problem in a fabric file: 1-based ``line``, dotted ``path``, ``message``."""

    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class FabricFileError(InvalidInput):
    """A fabric file that cannot be read or does not validate.

    ``errors`` holds every finding; the message lists them (the first ones when there
    are many), each as ``line N: path: problem``.
    """

    code = "invalid_fabric_file"

    def __init__(self, errors: list[FileFinding]):
        self.errors = errors
        lines = [str(e) for e in errors[:_MAX_MESSAGE_LINES]]
        if len(errors) > _MAX_MESSAGE_LINES:
            lines.append(f"… and {len(errors) - _MAX_MESSAGE_LINES} more")
        super().__init__("\n".join(lines), field=errors[0].path if errors else None)


# --------------------------------------------------------------------------- loading


def load_fabric(text_or_path: str | Path) -> FabricSpec:
    """Parse and validate a fabric file given as a :class:`~pathlib.Path` or its text.

    A ``str`` is taken as a path when it is one line naming an existing file or ending
    in ``.yaml``/``.yml``; otherwise as YAML text. Raises :class:`FabricFileError` for a
    missing or unreadable file, a YAML syntax error, or entries that do not validate.
    Cross-references are not checked here (see :func:`fuyun.fabric.check.check_fabric`).
    """
    text = _read(text_or_path)
    data = parse_dumped(text)
    if data is not None:
        try:
            return FabricSpec.model_validate(data)
        except ValidationError:
            pass  # the full parse below finds the lines to blame
    with _gc_paused():
        node, data = _compose(text)
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        problem = "the file is empty" if node is None else "a fabric file is a mapping of lists"
        raise FabricFileError([FileFinding(line, "", problem)])
    duplicates = _duplicate_keys(node)
    if duplicates:
        raise FabricFileError(duplicates)
    try:
        return FabricSpec.model_validate(data)
    except ValidationError as exc:
        raise FabricFileError(_locate(exc, node)) from None


def _read(text_or_path: str | Path) -> str:
    if isinstance(text_or_path, str):
        looks_like_path = "\n" not in text_or_path and (
            text_or_path.endswith((".yaml", ".yml")) or Path(text_or_path).is_file()
        )
        if not looks_like_path:
            return text_or_path
    path = Path(text_or_path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FabricFileError([FileFinding(0, "", f"cannot read {path}: {exc}")]) from None


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise FabricFileError([_syntax_finding(exc)]) from None
    except yaml.YAMLError as exc:
        raise FabricFileError([FileFinding(0, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a million acyclic nodes are built; it would rescan them
    over and over and quadruple the parse time of a 100,000-host file."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _syntax_finding(exc: yaml.MarkedYAMLError) -> FileFinding:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if exc.context and exc.problem:
        problem = f"{exc.context}, {exc.problem}"
        # The problem may be found lines after what it spoils (an unclosed bracket).
        start = exc.context_mark
        if start is not None and mark is not None and start.line != mark.line:
            problem += f" (started on line {start.line + 1})"
    return FileFinding(mark.line + 1 if mark else 0, "", f"YAML syntax error: {problem}")


def _duplicate_keys(root: yaml.Node) -> list[FileFinding]:
    """Keys given twice in one mapping, which PyYAML would silently let the last win."""
    findings: list[FileFinding] = []

    def scan(node: yaml.Node, path: str) -> None:
        seen: set[object] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            if key.value in seen:
                where = f"{path}.{key.value}" if path else str(key.value)
                line = key.start_mark.line + 1
                findings.append(FileFinding(line, where, "key given twice in one mapping"))
            seen.add(key.value)
            if path == "" and key.value in _LIST_KEYS and isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    if isinstance(item, yaml.MappingNode):
                        scan(item, f"{key.value}[{i}]")

    if isinstance(root, yaml.MappingNode):
        scan(root, "")
    return findings


def _locate(exc: ValidationError, root: yaml.Node) -> list[FileFinding]:
    findings: list[FileFinding] = []
    for error in exc.errors(include_url=False):
        line, path = _walk(root, error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if findings and (findings[-1].line, findings[-1].path) == (line, path):
            # The members of a union (IPv4 | IPv6 network) each complain; say it once.
            message = f"{findings.pop().message}; {message}"
        findings.append(FileFinding(line, path, message))
    return findings


def _walk(root: yaml.Node, loc: tuple[int | str, ...]) -> tuple[int, str]:
    """Follow ``loc`` down the node tree: the deepest node's line and the path to it.

    A missing key is named in the path (``hosts[3].tor``) at its mapping's line; the
    parts pydantic adds below a scalar (union members, validator tags) are dropped.
    """
    node, path = root, ""
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            path = f"{path}.{part}" if path else part
            if pair is None:
                break
            key, node = pair
            if isinstance(node, yaml.ScalarNode):
                # An empty value (``tor:``) may be marked on the next line; blame the key's.
                return (node if node.value else key).start_mark.line + 1, path
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            path = f"{path}[{part}]"
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1, path


# --------------------------------------------------------------------------- dumping


def dump_fabric(spec: FabricSpec) -> str:
    """The fabric as YAML text; :func:`load_fabric` of it gives an equal spec.

    Every field is written, defaults included, so the file is its own documentation
    and a reader never has to know which default a version had.
    """
    data = spec.model_dump(mode="json")
    out = [
        "# fuyun fabric file; the format is described in docs/fabric-format.md\n",
        f"version: {_scalar(data['version'])}\n",
        f"name: {_scalar(data['name'])}\n",
    ]
    cache: dict[str, str] = {}
    for key in _LIST_KEYS:
        entries = data[key]
        if not entries:
            out.append(f"{key}: []\n")
            continue
        out.append(f"{key}:\n")
        out.extend(f"- {{{_flow(entry, cache)}}}\n" for entry in entries)
    return "".join(out)


def _flow(entry: dict[str, Any], cache: dict[str, str]) -> str:
    parts = []
    for key, value in entry.items():
        if isinstance(value, list):
            text = "[" + ", ".join(_cached(v, cache) for v in value) + "]"
        elif isinstance(value, str):
            text = _cached(value, cache)
        else:
            text = _scalar(value)
        parts.append(f"{key}: {text}")
    return ", ".join(parts)


def _cached(value: str, cache: dict[str, str]) -> str:
    text = cache.get(value)
    if text is None:
        text = cache[value] = _string(value)
    return text


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _string(str(value))


def _string(value: str) -> str:
    """``value`` plain when it reads back as the same string, else quoted by PyYAML.

    Plain scalars in a flow mapping may not hold ``,[]{}:#`` and must not resolve to
    another type (``null``, ``yes``, ``1.5``, ``2010-01-01``), hence the two tests.
    """
    if is_plain_string(value):
        return value
    quoted = yaml.dump(value, Dumper=yaml.SafeDumper, default_style='"', width=1 << 30)
    return quoted.removesuffix("\n").removesuffix("...").rstrip("\n")
