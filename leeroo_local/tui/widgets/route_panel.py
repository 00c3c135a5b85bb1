"""The route of the last message: the expert chosen, why, and the policy's score and the cost
of every expert of the universe."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ...runtime.service import Route
from .. import format as fmt

BAR_WIDTH = 10


class RoutePanel(Static):
    """Score bars for every universe expert, the chosen one marked. `costs` are the experts'
    active parameters (billions) from the catalog; a route that carries its own `costs` wins."""

    def __init__(self, experts: list[str], costs: dict[str, float | None], **kwargs) -> None:
        super().__init__(**kwargs)
        self.experts = experts
        self.costs = costs
        self.route: Route | None = None
        self.border_title = "Route"

    def on_mount(self) -> None:
        self.update(self.render_route())

    def show(self, route: Route | None) -> None:
        self.route = route
        self.update(self.render_route())

    def render_route(self) -> Group:
        route = self.route
        costs = {**self.costs, **(getattr(route, "costs", None) or {})}
        scores = route.scores if route else {}
        fractions = fmt.bar_fractions(scores)
        table = Table(box=None, show_header=True, pad_edge=False, expand=True,
                      header_style="bold")
        table.add_column("expert", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("score", no_wrap=True, width=BAR_WIDTH)
        table.add_column("", justify="right", no_wrap=True, width=5)
        table.add_column("cost", justify="right", no_wrap=True, width=6)
        extra = [e for e in scores if e not in self.experts]
        if route and route.expert not in self.experts and route.expert not in extra:
            extra.append(route.expert)
        for expert in [*self.experts, *extra]:
            chosen = route is not None and expert == route.expert
            style = "bold" if chosen else ""
            score = scores.get(expert)
            table.add_row(
                Text(("▶ " if chosen else "  ") + expert, style=style),
                Text(fmt.bar(fractions.get(expert, 0.0), BAR_WIDTH), style="green" if chosen else "blue"),
                Text(f"{score:.2f}" if score is not None else fmt.DASH, style=style),
                Text(fmt.params(costs.get(expert)), style="dim"),
            )
        if route is None:
            head = Text("no message yet", style="dim")
        else:
            head = Text.assemble((f"{route.expert} · {route.quant}", "bold"), "\n",
                                 (route.reason or "no reason given", "italic"))
            for failed in getattr(route, "failed", []):
                head.append(f"\nfell back from {failed.expert}: {failed.error.split(':')[0]}",
                            style="yellow")
            privacy = getattr(route, "privacy", None)
            if privacy is not None and privacy.local_only:
                head.append(f"\nkept on this machine ({privacy.rule})", style="cyan")
            if not scores:
                head.append("\nno policy scores for this route", style="dim")
        return Group(head, Text(""), table)
