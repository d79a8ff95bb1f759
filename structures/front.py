"""The composition front: where x_Br crosses 0.55 (the paper's mid-point, Fig. 1e caption), the
paper's central observable, for continuum profiles and kMC profiles alike.

A profile x_Br(z) is piecewise linear between its points; a crossing lies on every interval whose
ends are on opposite sides of the level or on it (a point exactly at the level is a crossing
there).  A profile may cross several times (noise of a kMC profile, a dip in a continuum one);
the front is then the crossing nearest a reference position, and the two selection rules in use
differ only in that reference:

- :func:`front_near` (continuum profiles on their mesh): nearest a given position, the initial
  junction; nan if the profile does not cross;
- :func:`binned_front` (bin averages of kMC replicas, and the continuum averaged over the same
  bins): nearest :func:`integral_front`, the position of a sharp step holding the same amount of
  Br, computed from each profile itself; a profile that does not cross gives the wire end on the
  side it lies on (the Br end when it is everywhere below the level).
"""
from __future__ import annotations

import numpy as np

FRONT_LEVEL = 0.55


def _crossing_points(z, d):
    """Every crossing of zero by the piecewise-linear rows of d (float[m, n] at z float[n]):
    (row, z of the crossing), by row and then in increasing z; a point at zero is a crossing of
    both intervals it ends, nan never crosses."""
    lo, hi = d <= 0, d >= 0  # both False for nan
    r, k = np.nonzero((lo[:, :-1] & hi[:, 1:]) | (hi[:, :-1] & lo[:, 1:]))
    d0, d1 = d[r, k], d[r, k + 1]
    keep = ~((d0 == 0) & (d1 == 0))
    r, k, d0, d1 = r[keep], k[keep], d0[keep], d1[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        return r, np.where(d0 != d1, z[k] + (z[k + 1] - z[k]) * d0 / (d0 - d1), z[k])


def crossings(z, x_br, level: float = FRONT_LEVEL) -> np.ndarray:
    """float64[k]: every z where the piecewise-linear profile x_br (float[n] at z float[n]) crosses
    ``level``, in increasing z (a point at the level may appear twice, once per interval)."""
    d = np.asarray(x_br, dtype=float).reshape(1, -1) - level
    return _crossing_points(np.asarray(z, dtype=float), d)[1]


def front_near(z, x_br, near, level: float = FRONT_LEVEL, no_crossing: float = float("nan")) -> np.ndarray:
    """The crossing nearest ``near`` of each profile x_br (float[..., n]); ``near`` a float or
    float[...] (one per profile); ``no_crossing`` where a profile does not cross.  Returns
    float[...] (a 0-d array for one profile).  The crossings are those of :func:`crossings`
    (found for all profiles at once); of two equally near, the one at smaller z."""
    xb = np.asarray(x_br, dtype=float)
    d = xb.reshape(-1, xb.shape[-1]) - level
    ref = np.broadcast_to(np.asarray(near, dtype=float), xb.shape[:-1]).reshape(-1)
    r, zc = _crossing_points(np.asarray(z, dtype=float), d)
    order = np.lexsort((np.arange(r.size), np.abs(zc - ref[r]), r))  # per row: nearest, then smaller z
    first = order[np.r_[True, r[order][1:] != r[order][:-1]]] if r.size else order
    out = np.full(d.shape[0], no_crossing, dtype=float)
    out[r[first]] = zc[first]
    return out.reshape(xb.shape[:-1])


def integral_front(z_edges, x_br, br_side: str) -> np.ndarray:
    """Position of the sharp step holding the same Br as the binned profile.

    z_edges float[nb + 1]; x_br float[..., nb]; br_side "left" (Br at small z) or "right".
    """
    z_edges = np.asarray(z_edges, dtype=float)
    width = np.diff(z_edges)
    amount = (np.asarray(x_br, dtype=float) * width).sum(axis=-1)
    return z_edges[0] + amount if br_side == "left" else z_edges[-1] - amount


def binned_front(z_centres, z_edges, x_br, br_side: str, level: float = FRONT_LEVEL) -> np.ndarray:
    """The front of binned profiles x_br (float[..., nb] at z_centres float[nb], bins z_edges
    float[nb + 1]): the crossing nearest :func:`integral_front`; a profile that does not cross
    gives the wire end on its side.  Returns float[...]."""
    if br_side not in ("left", "right"):
        raise ValueError(f"br_side must be 'left' or 'right', got {br_side!r}")
    z_edges = np.asarray(z_edges, dtype=float)
    xb = np.asarray(x_br, dtype=float)
    flat = xb.reshape(-1, xb.shape[-1])
    ref = integral_front(z_edges, flat, br_side)
    out = front_near(z_centres, flat, ref, level)
    missing = np.isnan(out)
    if missing.any():
        above = np.all(flat[missing] > level, axis=-1)
        at_right = above == (br_side == "left")
        out[missing] = np.where(at_right, z_edges[-1], z_edges[0])
    return out.reshape(xb.shape[:-1])
