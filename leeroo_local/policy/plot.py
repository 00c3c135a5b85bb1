"""The accuracy-cost picture of an eval report, like the paper's figure: the policy's curve over
the cost weight L, each single expert as a point, the oracle as a star (matplotlib, the `plot`
extra; imported only here, only when a picture is asked for)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'leeroo-local[plot]'") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: dict, path: str | Path, title: str | None = None) -> Path:
    """Write the accuracy-cost figure of `report` (policy.evaluate's dict) to `path` (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    curve = sorted(report["curve"], key=lambda p: p["mean_cost"])
    ax.plot([p["mean_cost"] for p in curve], [100 * p["accuracy"] for p in curve], "-o",
            ms=3, color="tab:blue", label=f"policy {report.get('policy_name', '')}".strip())
    for name, s in report["singles"].items():
        ax.scatter(s["cost"], 100 * s["accuracy"], s=18, color="tab:gray", zorder=3)
        ax.annotate(name, (s["cost"], 100 * s["accuracy"]), fontsize=6, color="dimgray",
                    xytext=(3, 2), textcoords="offset points")
    best = report["best_single"]
    ax.scatter(best["mean_cost"], 100 * best["accuracy"], s=40, color="tab:orange", zorder=4,
               label=f"best single ({best['expert']})")
    oracle = report["oracle"]
    ax.scatter(oracle["mean_cost"], 100 * oracle["accuracy"], marker="*", s=120, color="tab:green",
               zorder=4, label="oracle")
    ax.set_xlabel(f"mean cost ({report.get('cost_unit', 'cost')})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or f"accuracy vs cost on {report['questions']} questions (AIQ "
                          f"{100 * report['aiq']:.1f} vs {100 * report['aiq_single_experts']:.1f} "
                          "for single experts)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
