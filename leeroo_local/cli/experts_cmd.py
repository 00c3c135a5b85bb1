"""`leeroo-local experts`: the catalog, with sizes and which files are present locally."""

from __future__ import annotations

import typer

from .common import echo_json, user_catalog


def register(app: typer.Typer) -> None:
    app.command("experts")(experts)


def experts(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the catalog's experts, their quantizations, what is on this machine and what each can
    serve (chat, tools, fim, embeddings: capabilities.py)."""
    from ..capabilities import of_expert
    from ..locate import local_state
    from ..units import format_size

    catalog = user_catalog()
    rows = []
    for e in catalog.experts:
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
        table.add_row(r["id"], r["quant"], format_size(r["size_bytes"], binary=False),
                      r["size_basis"], r["source"],
                      "yes" if r["local"] else f"damaged: {r['damaged']}" if r["damaged"] else "",
                      ", ".join(r["capabilities"]) or "completion")
    Console().print(table)
