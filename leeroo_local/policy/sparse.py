"""A tiny CSR matrix in numpy: what the trainer needs from scipy.sparse, without scipy.

TF-IDF rows (sublinear tf x idf, L2-normalised) are computed here exactly as the exported ONNX
graph computes them, so training and routing see the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """ln((1 + n) / (1 + df)) + 1, as scikit-learn's smooth idf: never zero, never negative."""
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)


def tfidf_values(indptr: np.ndarray, indices: np.ndarray, counts: np.ndarray,
                 idf: np.ndarray) -> np.ndarray:
    """(1 + ln count) x idf per cell, each row scaled to unit length (empty rows stay empty)."""
    vals = (1.0 + np.log(counts.astype(np.float64))) * idf[indices]
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    sq = np.bincount(rows, weights=vals * vals, minlength=len(lengths))
    norms = np.sqrt(np.maximum(sq, 1e-12))[rows]
    return (vals / norms).astype(np.float32)


@dataclass
class CSR:
    """Rows x columns sparse matrix; `dot` and `tdot` are the two products the trainer needs."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_cols: int

    def __post_init__(self) -> None:
        lengths = np.diff(self.indptr)
        self._rows = np.repeat(np.arange(len(lengths)), lengths)
        self._nonempty = np.flatnonzero(lengths)
        order = np.argsort(self.indices, kind="stable")
        self._sorted_rows = self._rows[order]
        self._sorted_data = self.data[order]
        cols = self.indices[order]
        self._col_starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]]) if len(cols) else cols
        self._col_ids = cols[self._col_starts] if len(cols) else cols

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def rows(self, index: np.ndarray) -> CSR:
        """The matrix restricted to some rows, in that order."""
        starts, ends = self.indptr[index], self.indptr[index + 1]
        lengths = ends - starts
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(index) else \
            np.zeros(0, np.int64)
        return CSR(np.r_[0, np.cumsum(lengths)].astype(np.int64), self.indices[take],
                   self.data[take], self.n_cols)

    def _buffer(self, k: int, dtype) -> np.ndarray:
        # One reused (nnz, k) workspace: fresh arrays this large cost more in page faults than
        # the arithmetic itself, and the optimiser calls dot/tdot hundreds of times.
        buf = getattr(self, "_buf", None)
        if buf is None or buf.shape[1] != k or buf.dtype != dtype:
            buf = self._buf = np.empty((len(self.data), k), dtype=dtype)
        return buf

    def dot(self, dense: np.ndarray) -> np.ndarray:
        """self @ dense, dense of shape (n_cols, k)."""
        out = np.zeros((self.n_rows, dense.shape[1]), dtype=dense.dtype)
        if len(self.data):
            buf = self._buffer(dense.shape[1], dense.dtype)
            np.take(dense, self.indices, axis=0, out=buf)
            buf *= self.data[:, None]
            out[self._nonempty] = np.add.reduceat(buf, self.indptr[:-1][self._nonempty], axis=0)
        return out

    def tdot(self, dense: np.ndarray) -> np.ndarray:
        """self.T @ dense, dense of shape (n_rows, k)."""
        out = np.zeros((self.n_cols, dense.shape[1]), dtype=dense.dtype)
        if len(self.data):
            buf = self._buffer(dense.shape[1], dense.dtype)
            np.take(dense, self._sorted_rows, axis=0, out=buf)
            buf *= self._sorted_data[:, None]
            out[self._col_ids] = np.add.reduceat(buf, self._col_starts, axis=0)
        return out
