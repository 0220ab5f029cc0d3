"""The CLI's API client: where to connect, with which token, and how errors look.

``fuyun serve`` writes the URL and a fresh operator token to
``~/.config/fuyun/credentials`` (mode 0600); ``FUYUN_URL`` and ``FUYUN_TOKEN``
override it. API errors print their message and field and exit with 2 for
anything the caller can fix (4xx), 1 otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)
out = Console()


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "fuyun" / "credentials"


def save_credentials(url: str, token: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps({"url": url, "token": token}))
    return path


def _saved() -> dict[str, str]:
    try:
        return dict(json.loads(credentials_path().read_text()))
    except (OSError, ValueError):
        return {}


def base_url() -> str:
    return os.environ.get("FUYUN_URL") or _saved().get("url") or "http://127.0.0.1:8080"


def token() -> str | None:
    return os.environ.get("FUYUN_TOKEN") or _saved().get("token")


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def call(
    method: str,
    path: str,
    *,
    json_body: Any = None,
    params: dict[str, Any] | None = None,
    auth: bool = True,
    timeout: float = 60,
) -> Any:
    headers = {}
    if auth:
        secret = token()
        if not secret:
            raise fail("no token: run `fuyun serve` here, `fuyun login`, or set FUYUN_TOKEN")
        headers["Authorization"] = f"Bearer {secret}"
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        response = httpx.request(
            method,
            f"{base_url()}/api/v1{path}",
            json=json_body,
            params=clean,
            headers=headers,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {base_url()}: {exc}", code=1) from exc
    if response.status_code >= 400:
        try:
            body = response.json()["error"]
            where = f" [field: {body['field']}]" if body.get("field") else ""
            message = f"{body['message']}{where} ({response.status_code} {body['code']})"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}: {response.text[:200]}"
        raise fail(message, code=2 if response.status_code < 500 else 1)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def list_all(
    path: str, params: dict[str, Any] | None = None, limit: int | None = None
) -> list[Any]:
    """Follow cursors until ``limit`` items (or all) are read."""
    items: list[Any] = []
    query = dict(params or {})
    while True:
        page_size = 1000 if limit is None else min(1000, limit - len(items))
        page = call("GET", path, params={**query, "limit": page_size})
        items.extend(page["items"])
        if not page.get("next_cursor") or (limit is not None and len(items) >= limit):
            return items
        query["cursor"] = page["next_cursor"]
