"""The policies shipped in leeroo_local/policies/<name>/ and which one serves a universe.

Rebuild them (both commands are documented in each folder's README.md):

    python -m leeroo_local.cli policy train --data leeroo_local/data/mmlu_pro_dev \\
        --names catalog --out leeroo_local/policies/catalog
    python -m leeroo_local.cli outcomes import leeroo_local/data/starter_mmlu_pro \\
        --source starter-mmlu-pro
    python -m leeroo_local.cli policy train --store starter-mmlu-pro \\
        --names catalog --out leeroo_local/policies/starter
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from .labels import LABELS_FILE, PolicyLabels, read_labels


def policies_dir() -> Path:
    return Path(str(resources.files("leeroo_local").joinpath("policies")))


def shipped_policies() -> dict[str, Path]:
    """Name -> folder of every shipped policy."""
    root = policies_dir()
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / LABELS_FILE).is_file()}


def user_policies() -> dict[str, Path]:
    """Name -> folder of every policy trained on this machine (self-play writes `selfplay`)."""
    from .. import paths

    root = paths.policies_dir()
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir())
            if not d.name.startswith(".") and (d / LABELS_FILE).is_file()}


def shipped_policy(experts: Iterable[str], folders: Iterable[Path] | None = None) -> Path | None:
    """The shipped policy (or of `folders`) that scores the most of `experts` (ties: the one
    with fewer outputs, i.e. the more specific; then the first); None when none knows any."""
    wanted = set(experts)
    best, best_key = None, None
    for folder in (shipped_policies().values() if folders is None else folders):
        labels: PolicyLabels = read_labels(folder)
        covered = len(wanted & set(labels.experts))
        key = (covered, -len(labels.experts))
        if covered and (best_key is None or key > best_key):
            best, best_key = folder, key
    return best


def resolve_policy(setting: str, experts: Iterable[str]) -> Path | None:
    """Settings.policy -> a folder: a path, a shipped name, or empty for the default: the
    user's or shipped policy that knows the most of `experts` (the user's on a tie, so a policy
    self-play retrained for this universe is the one routing uses)."""
    if not setting:
        experts = list(experts)
        return shipped_policy(experts, [*user_policies().values(), *shipped_policies().values()])
    shipped = shipped_policies()
    if setting in shipped:
        return shipped[setting]
    path = Path(setting).expanduser()
    if not (path / LABELS_FILE).is_file():
        names = ", ".join(shipped) or "none"
        raise ConfigError(f"policy {setting!r}: not a policy folder nor a shipped policy ({names})")
    return path
