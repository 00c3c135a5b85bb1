"""Find a model in the user's Ollama store: its manifest names the GGUF blob, used in place.

Ollama keeps `manifests/<registry>/<namespace>/<model>/<tag>` (JSON, OCI-like) and
`blobs/sha256-<hex>` under $OLLAMA_MODELS (default ~/.ollama/models). The layer whose media type
is `application/vnd.ollama.image.model` is the GGUF file itself. Nothing here copies or writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

MODEL_LAYER = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY = "registry.ollama.ai"


@dataclass(frozen=True)
class OllamaModel:
    """One model of the store: the name as the user wrote it, its manifest and its GGUF blob."""

    name: str
    manifest: Path
    blob: Path
    digest: str  # sha256 hex of the GGUF blob (the file's content hash)
    size: int


def store_root() -> Path:
    """$OLLAMA_MODELS, else ~/.ollama/models (Ollama's own default)."""
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def manifest_path(name: str, root: Path) -> Path:
    """llama3.2 -> registry.ollama.ai/library/llama3.2/latest; user/m:t and hf.co/o/r:t too."""
    base, _, tag = name.partition(":")
    parts = base.split("/")
    if len(parts) > 1 and "." in parts[0]:
        pass  # a registry host first, e.g. hf.co/owner/repo
    elif len(parts) > 1:
        parts = [DEFAULT_REGISTRY, *parts]
    else:
        parts = [DEFAULT_REGISTRY, "library", base]
    return root / "manifests" / Path(*parts) / (tag or "latest")


def find(name: str, root: Path | None = None) -> OllamaModel:
    """The model called `name` in the store; ConfigError saying what the store has otherwise."""
    root = root or store_root()
    path = manifest_path(name, root)
    if not path.is_file():
        known = ", ".join(list_models(root)) or "none"
        raise ConfigError(f"no Ollama model {name!r} in {root} (looked for {path}); "
                          f"the store has: {known}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        layers = manifest["layers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not an Ollama manifest ({exc})") from None
    model = next((layer for layer in layers if layer.get("mediaType") == MODEL_LAYER), None)
    if model is None:
        raise ConfigError(f"{path}: the manifest has no model layer ({MODEL_LAYER})")
    digest = str(model.get("digest", ""))
    algo, _, hexdigest = digest.partition(":")
    blob = root / "blobs" / f"{algo}-{hexdigest}"
    if algo != "sha256" or not hexdigest or not blob.is_file():
        raise ConfigError(f"{path}: its model blob {digest or '(none)'} is not in {root / 'blobs'}; "
                          f"run `ollama pull {name}` again")
    return OllamaModel(name, path, blob, hexdigest, blob.stat().st_size)


def list_models(root: Path) -> list[str]:
    """Names of the store's models, as `ollama list` shows them."""
    folder = root / "manifests"
    names = []
    for tag in sorted(p for p in folder.rglob("*") if p.is_file()):
        parts = tag.relative_to(folder).parts
        if parts[:2] == (DEFAULT_REGISTRY, "library"):
            parts = parts[2:]
        elif parts[0] == DEFAULT_REGISTRY:
            parts = parts[1:]
        names.append("/".join(parts[:-1]) + ":" + parts[-1])
    return names
