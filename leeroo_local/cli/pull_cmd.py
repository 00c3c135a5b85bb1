"""`leeroo-local pull EXPERT`: make an expert's GGUF file present (download, assemble or quantize)."""

from __future__ import annotations

import typer

from .common import echo_json, user_catalog


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)


def pull(
    expert_id: str = typer.Argument(..., metavar="EXPERT", help="Expert id (see `experts`)."),
    quant: str = typer.Option(None, "--quant", help="Quantization, e.g. Q4_K_M (default: the expert's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Download EXPERT's GGUF into the Hugging Face cache (resumable), or prepare a local one.
    A file already present is verified (size, SHA-256); a damaged one is made again."""
    from ..locate import shard_names
    from ..provision.ensure import ensure_local
    from ..units import format_size

    catalog = user_catalog()
    expert = catalog.get(expert_id)
    q = expert.quant(quant)
    def damaged(found, why: str) -> None:
        typer.echo(f"{found} is damaged ({why}): fetching it again", err=True)

    path = ensure_local(catalog, expert, q, progress=True, verify=True, on_damage=damaged)
    files = [path.with_name(n) for n in shard_names(path.name)]
    size = sum(f.stat().st_size for f in files)
    if as_json:
        echo_json({"id": expert.id, "quant": q.type, "path": str(path),
                   "files": [str(f) for f in files], "size_bytes": size})
        return
    typer.echo(f"{path}  ({format_size(size, binary=False)})")
