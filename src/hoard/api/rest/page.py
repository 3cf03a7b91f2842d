"""`GET /`: a status page for people — identity, addresses, peers, space, fetches, datasets.

Rendered on the server from the same node operations the API uses (no JavaScript); every
value from the node is HTML-escaped (filenames are user input). While fetches are active the
page reloads itself every few seconds.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hoard.api import shapes
from hoard.node.async_node import AsyncNode

REFRESH_SECONDS = 3


@cache
def _template() -> Template:
    return Template(resources.files("hoard.api.rest").joinpath("page.html").read_text(encoding="utf-8"))


def page_router(node: AsyncNode, api_base: str) -> APIRouter:
    """The `/` route, bound to `node`; download links point under `api_base`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def status_page(request: Request) -> HTMLResponse:
        values = {"debug": shapes.debug_json(await node.debug()), "version": await node.version(),
                  "revision": await node.revision(), "repo": await node.repo(),
                  "space": shapes.space_json(await node.space()), "datasets": shapes.datasets_json(await node.list()),
                  "fetches": [shapes.fetch_json(f) for f in await node.fetches()],
                  "api_url": str(request.base_url).rstrip("/") + api_base}
        return HTMLResponse(render(values, api_base), headers={"Cache-Control": "no-store"})

    return router


def render(values: dict[str, Any], api_base: str) -> str:
    """The page's HTML for the node state in `values`."""
    e = html.escape
    debug = values["debug"]
    space = values["space"]
    quota = max(space["quotaMaxBytes"], 1)
    active = [f for f in values["fetches"] if f["active"]]
    peers = debug.get("table", {}).get("nodes", [])
    spr = debug.get("spr", "")
    return _template().substitute(
        refresh=f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">\n' if active else "",
        peer_id=e(debug["id"]), short_id=e(debug["id"][-8:]), version=e(values["version"]),
        revision=e(values["revision"]), repo=e(values["repo"]), api_base=e(api_base),
        api_url=e(values.get("api_url", api_base)),
        spr=e(spr), spr_short=e(spr if len(spr) <= 72 else spr[:69] + "…"),
        used_pct=f"{min(100.0, 100 * space['quotaUsedBytes'] / quota):.2f}",
        used_pct_text=f"{100 * space['quotaUsedBytes'] / quota:.1f}",
        reserved_pct=f"{min(100.0, 100 * space['quotaReservedBytes'] / quota):.2f}",
        used=size(space["quotaUsedBytes"]), reserved=size(space["quotaReservedBytes"]),
        quota=size(space["quotaMaxBytes"]), blocks=f"{space['totalBlocks']:,}",
        addresses=_list([e(a) for a in debug.get("addrs", [])], "no listen addresses (the network is not running)"),
        peer_count=len(peers), peers=_peers(peers),
        fetch_count=len(active), fetches=_fetches(values["fetches"], api_base),
        dataset_count=len(values["datasets"]), datasets=_datasets(values["datasets"], api_base),
    )


def size(n: int) -> str:
    """Bytes for people: 0 B, 1.5 KiB, 20.0 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _list(items: list[str], empty: str) -> str:
    if not items:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return '<ul class="mono">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _peers(peers: list[dict[str, Any]]) -> str:
    if not peers:
        return '<p class="empty">no peers known</p>'
    rows = []
    for peer in peers:
        addrs = peer.get("addresses") or ([peer["address"]] if peer.get("address") else [])
        rows.append(f'<tr><td class="mono">{html.escape(str(peer.get("peerId", "")))}</td>'
                    f'<td class="mono">{"<br>".join(html.escape(str(a)) for a in addrs)}</td></tr>')
    return "<table><tr><th>peer id</th><th>addresses</th></tr>" + "".join(rows) + "</table>"


def _fetches(fetches: list[dict[str, Any]], api_base: str) -> str:
    if not fetches:
        return '<p class="empty">no fetches</p>'
    rows = []
    for f in fetches:
        done = f["total"] and f["received"] >= f["total"]
        state = "active" if f["active"] else ("failed" if f.get("error") and not done else "done")
        pct = 100.0 if not f["total"] else 100 * f["received"] / f["total"]
        note = f' <span class="mono">{html.escape(f["error"])}</span>' if f.get("error") and state == "failed" else ""
        rows.append(
            f'<tr><td class="num">{f["downloadId"]}</td><td class="mono">{html.escape(f["cid"])}</td>'
            f'<td>{html.escape(f.get("filename") or "")}</td>'
            f'<td class="progress"><div class="bar"><span class="used" style="width: {pct:.1f}%"></span></div></td>'
            f'<td class="num">{f["received"]}/{f["total"]} blocks, {size(f["bytes"])}</td>'
            f'<td><span class="badge {state}">{state}</span>{note}</td></tr>')
    return ("<table><tr><th class=num>id</th><th>cid</th><th>filename</th><th>progress</th><th class=num>received</th>"
            "<th>state</th></tr>" + "".join(rows) + "</table>")


def _datasets(datasets: list[dict[str, Any]], api_base: str) -> str:
    if not datasets:
        return '<p class="empty">no datasets stored</p>'
    rows = []
    for d in datasets:
        m = d["manifest"]
        if m is None:  # a stored manifest that no longer decodes
            rows.append(f'<tr><td class="mono">{html.escape(d["cid"])}</td>'
                        f'<td colspan=4>{html.escape(d.get("error") or "damaged manifest")}</td></tr>')
            continue
        link = f"{api_base}/data/{quote(d['cid'], safe='')}"
        rows.append(
            f'<tr><td class="mono"><a href="{html.escape(link)}" download>{html.escape(d["cid"])}</a></td>'
            f'<td>{html.escape(m.get("filename") or "")}</td><td>{html.escape(m.get("mimetype") or "")}</td>'
            f'<td class="num">{size(m["datasetSize"])}</td><td class="num">{m.get("blockCount", "")}</td></tr>')
    return ("<table><tr><th>cid (download)</th><th>filename</th><th>type</th><th class=num>size</th>"
            "<th class=num>blocks</th></tr>" + "".join(rows) + "</table>")
