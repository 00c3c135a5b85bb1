"""`leeroo-local hosts`: other machines that serve experts (another `serve`, or an
OpenAI-compatible engine), added to the catalog as remote experts."""

from __future__ import annotations

import typer

from .common import echo_json, user_catalog

hosts_app = typer.Typer(help="Machines that serve experts: add, list, remove.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hosts_app, name="hosts")


@hosts_app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name: lower case, digits, dashes."),
    url: str = typer.Argument(..., help="Its API root, e.g. http://desk.local:8642/v1."),
    api_key_env: str = typer.Option(None, "--api-key-env",
                                    help="Variable holding its API key (never the key itself)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ask the host what it serves and add each model as a remote expert HOST.MODEL."""
    from ..provision.hosts import add_host

    host = add_host(name, url, user_catalog(), api_key_env)
    if as_json:
        echo_json(host.model_dump())
        return
    typer.echo(f"{host.name} ({host.kind}) at {host.url}: {', '.join(host.experts) or 'no new expert'}")


@hosts_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each host, whether it answers now, and its experts."""
    from ..provision.hosts import host_states

    states = host_states()
    if as_json:
        echo_json([s.model_dump() for s in states])
        return
    for s in states:
        mark = "up" if s.up else "DOWN"
        typer.echo(f"{s.host.name:12} {mark:4} {s.host.url}  {s.detail}  "
                   f"[{', '.join(s.host.experts)}]")
    if not states:
        typer.echo("no host: `leeroo-local hosts add NAME URL`")


@hosts_app.command("remove")
def remove(name: str = typer.Argument(..., help="The host's name.")) -> None:
    """Forget a host and the remote experts it brought."""
    from ..provision.hosts import remove_host

    host = remove_host(name)
    typer.echo(f"removed {host.name} and {len(host.experts)} experts")
