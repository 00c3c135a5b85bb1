"""Where leeroo-local keeps its files. Nothing is created at import; LEEROO_HOME overrides all.

Model files themselves live in the standard Hugging Face cache (huggingface_hub decides where);
only files we make (starter assembly, quantizations) live under our own models folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_HOME = "LEEROO_HOME"


def home() -> Path:
    """The root of our user files: $LEEROO_HOME, else $XDG_DATA_HOME/leeroo-local, else ~/.local/share."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "leeroo-local"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Model files we build locally (assembled starters, quantizations)."""
    return _ensure(home() / "models")


def config_dir() -> Path:
    """User configuration: config.toml, the saved universe."""
    return _ensure(home() / "config")


def db_path() -> Path:
    """The SQLite database that holds request logs and the evaluation store."""
    return _ensure(home()) / "leeroo.db"


def universe_path() -> Path:
    """The universe saved by `fit --save`, read by run, serve and chat."""
    return config_dir() / "universe.json"


def policies_dir() -> Path:
    """Routing policies the user's machine trained (self-play writes `selfplay` here)."""
    return home() / "policies"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read a megabyte at a time (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
