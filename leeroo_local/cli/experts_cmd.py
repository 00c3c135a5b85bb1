"""`leeroo-local experts`: the catalog, with sizes and which files are present locally."""

from __future__ import annotations

import time

import typer

from .common import echo_json, user_catalog


def register(app: typer.Typer) -> None:
    app.command("experts")(experts)


def experts(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the catalog's experts, their quantizations, what is on this machine and what each can
    serve (chat, tools, fim, embeddings: capabilities.py); the experts of other hosts, with
    whether each host answers now."""
    from ..capabilities import of_expert
    from ..locate import local_state
    from ..provision.hosts import host_states
    from ..units import format_size

    catalog = user_catalog()
    states = host_states()
    host_of = {e: s for s in states for e in s.host.experts}
    rows = []
    for e in catalog.experts:
        if e.remote and not e.quants:
            s = host_of.get(e.id)
            rows.append({
                "id": e.id, "quant": "REMOTE", "size_bytes": None, "size_basis": "remote",
                "source": e.source.kind, "local": False, "damaged": None, "path": None,
                "data_column": e.data_column, "capabilities": sorted(of_expert(e, None)),
                "host": s.host.name if s else None, "host_url": e.source.base_url,
                "host_state": ("up" if s.up else "down") if s else None,
                "host_checked_at": s.checked_at if s else None})
            continue
        for q in e.quants:
            path, damaged = local_state(e, q, checksum=True)
            rows.append({
                "id": e.id, "quant": q.type, "size_bytes": q.size_bytes, "size_basis": q.size_basis,
                "source": e.source.kind, "local": path is not None and damaged is None,
                "damaged": damaged, "path": str(path) if path else None,
                "data_column": e.data_column, "data_aliases": list(e.data_aliases),
                "kind": e.kind, "chat_template": e.chat_template,
                "capabilities": sorted(of_expert(e, path if damaged is None else None)),
            })
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("expert", "quant", "size", "basis", "source", "local", "serves")
    for r in rows:
        if r["size_basis"] == "remote":
            where = f"{r['host'] or 'remote'}: {r['host_state'] or r['host_url']}"
            table.add_row(r["id"], "-", "-", "remote", r["source"], where,
                          ", ".join(r["capabilities"]) or "completion")
            continue
        table.add_row(r["id"], r["quant"], format_size(r["size_bytes"], binary=False),
                      r["size_basis"], r["source"],
                      "yes" if r["local"] else f"damaged: {r['damaged']}" if r["damaged"] else "",
                      ", ".join(r["capabilities"]) or "completion")
    console = Console()
    console.print(table)
    for s in states:
        console.print(f"host {s.host.name} {'up' if s.up else 'DOWN'} at {s.host.url} "
                      f"(checked {time.strftime('%H:%M:%S', time.localtime(s.checked_at))}: "
                      f"{s.detail}): {', '.join(s.host.experts) or 'no expert'}")
