"""Concurrent API clients, importable by spawned processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def _one_client(
    url: str, token: str, path: str, bodies: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for body in bodies:
            r = client.post(path, json=body)
            out.append((r.status_code, r.json() if r.content else {}))
    return out


def hammer(
    urls: list[str], token: str, path: str, bodies: list[list[dict[str, Any]]]
) -> list[tuple[int, dict[str, Any]]]:
    """One thread per entry of ``bodies``, each posting its list in order.

    Threads are spread over ``urls`` so several API processes serve at once.
    """
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        futures = [
            pool.submit(_one_client, urls[i % len(urls)], token, path, b)
            for i, b in enumerate(bodies)
        ]
        return [item for f in futures for item in f.result()]
