"""Checks on the ids and vectors handed to the dense index, with errors that say what to pass."""

from __future__ import annotations

import numpy as np


def check_ids(ids: np.ndarray) -> np.ndarray:
    """`ids` as a contiguous 1-D int64 array, or a ValueError naming what was given."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"ids must be a 1-D integer array, got {arr.dtype} of shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_vectors(dim: int, vectors: np.ndarray) -> np.ndarray:
    """`vectors` as a contiguous finite float32 (n, dim) array, or a ValueError saying why not."""
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"vectors must have shape (n, {dim}), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or arr.size == 0):
        raise ValueError(f"vectors must be a float array (float32), got {arr.dtype}")
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity; check the embedder's output")
    return x
