"""Replica statistics: the mean over R independent replicas and its standard error
s / sqrt(R), s the sample standard deviation (ddof = 1)."""
from __future__ import annotations


import numpy as np


def replica_mean_sem(values, axis: int = 0, min_replicas: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard error) over the replicas along ``axis`` of float ``values``.

    Raises ValueError with fewer than ``min_replicas`` replicas; with one replica (allowed by
    ``min_replicas=1``) the standard error is nan.
    """
    v = np.asarray(values, dtype=float)
    n = v.shape[axis]
    if n < min_replicas:
        raise ValueError(f"need at least {min_replicas} replicas, got {n}")
    mean = v.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, v.std(axis=axis, ddof=1) / np.sqrt(n)


def mean_and_error(values) -> tuple[float, float | None]:
    """(mean, standard error) of a list of replica values as floats (None entries count as nan);
    the error is None for a single replica."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    mean, sem = replica_mean_sem(v, min_replicas=1)
    return float(mean), (None if v.size < 2 else float(sem))


