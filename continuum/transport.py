"""Onsager coefficients for the continuum model as a table on the halide composition.

The kernels need, at each node, the reduced (finite at the end members) coefficients

    a = l_BrBr / c_Br,   b = l_BrCl / (c_Br c_Cl),   d = l_ClCl / c_Cl          (1/s)

as functions of y = x_Cl / (x_Br + x_Cl) (the coupling layer's table uses the same
coordinates).  They are tabulated on a uniform grid of y and interpolated linearly in the numba
kernels (continuum/_kernels.py).  Sources:

- ``maa_table``: the Moleko-Allnatt-Allnatt theory (continuum/onsager.py) in the dilute-vacancy
  limit c_V -> 0 (x_V ~ 1e-8 here, so the c_V terms change l_ab by ~1e-8 relative);
- ``table_from_callable`` / ``table_from_arrays``: a measured table l_ab(x_Cl) (e.g. from
  structures.onsager_table.OnsagerTable.interpolator()).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ionwire.structures.onsager import correlation_parameter

N_TABLE = 1001


@dataclass(frozen=True)
class ReducedOnsagerTable:
    """y float64[n] uniform on [0, 1]; abd_per_s float64[n, 3] columns (a, b, d), 1/s;
    source: a short description (theory and f0, or the table's provenance)."""

    y: np.ndarray
    abd_per_s: np.ndarray
    source: str

    def l_per_s(self, x_cl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(l_BrBr, l_BrCl, l_ClCl) in 1/s at Cl fraction x_cl (dilute vacancies)."""
        x = np.clip(np.asarray(x_cl, dtype=float), 0.0, 1.0)
        a, b, d = (np.interp(x, self.y, self.abd_per_s[:, k]) for k in range(3))
        return (1 - x) * a, x * (1 - x) * b, x * d


def maa_table(w_br_per_s: float, w_cl_per_s: float, f0: float, n: int = N_TABLE) -> ReducedOnsagerTable:
    """Reduced MAA coefficients (c_V -> 0) for jump frequencies w_Br, w_Cl (1/s) and f0."""
    y = np.linspace(0.0, 1.0, n)
    cbr, ccl = 1.0 - y, y
    m0 = correlation_parameter(f0)
    wv = cbr * w_br_per_s + ccl * w_cl_per_s
    wt = cbr * w_cl_per_s + ccl * w_br_per_s
    bq = m0 * wv + 2.0 * wt
    cq = 2.0 * m0 * cbr * ccl * (w_br_per_s - w_cl_per_s) ** 2
    lam = 0.5 * (bq + np.sqrt(np.maximum(bq * bq - 4.0 * cq, 0.0)))
    a = w_br_per_s * (1.0 - 2.0 * ccl * w_br_per_s / lam)
    b = 2.0 * w_br_per_s * w_cl_per_s / lam
    d = w_cl_per_s * (1.0 - 2.0 * cbr * w_cl_per_s / lam)
    return ReducedOnsagerTable(y, np.stack([a, b, d], axis=1),
                               f"Moleko-Allnatt-Allnatt, w_Br={w_br_per_s:.6g}/s, w_Cl={w_cl_per_s:.6g}/s, f0={f0:.6g}")


def table_from_arrays(x_cl, l_brbr, l_brcl, l_clcl, n: int = N_TABLE, source: str = "table") -> ReducedOnsagerTable:
    """Reduced table from measured l_ab at compositions x_cl (1/s; any order, >= 2 interior points).

    Interior points are normalised; the end members (where the normalisation is 0/0) take the
    value of the nearest interior point (constant extrapolation, as structures.onsager_table does).
    """
    x = np.asarray(x_cl, dtype=float)
    order = np.argsort(x)
    x = x[order]
    l = np.stack([np.asarray(v, dtype=float)[order] for v in (l_brbr, l_brcl, l_clcl)], axis=1)
    if x.ndim != 1 or np.any(~np.isfinite(l)) or np.any((x < 0) | (x > 1)):
        raise ValueError("Onsager table: x_cl must be in [0, 1] and l_ab finite")
    a = np.where(x < 1, l[:, 0] / np.where(x < 1, 1 - x, 1), np.nan)
    b = np.where((x > 0) & (x < 1), l[:, 1] / np.where((x > 0) & (x < 1), x * (1 - x), 1), np.nan)
    d = np.where(x > 0, l[:, 2] / np.where(x > 0, x, 1), np.nan)
    y = np.linspace(0.0, 1.0, n)
    cols = []
    for c in (a, b, d):
        ok = np.isfinite(c)
        if ok.sum() < 1:
            raise ValueError("Onsager table: not enough compositions to normalise l_ab")
        cols.append(np.interp(y, x[ok], c[ok]))
    return ReducedOnsagerTable(y, np.stack(cols, axis=1), source)


def table_from_callable(fn: Callable, n: int = N_TABLE, source: str = "callable") -> ReducedOnsagerTable:
    """Reduced table from a callable x_Cl float64[m] -> (l_BrBr, l_BrCl, l_ClCl) arrays in 1/s."""
    x = np.linspace(0.0, 1.0, n)
    lbb, lbc, lcc = (np.asarray(v, dtype=float) for v in fn(x))
    return table_from_arrays(x, lbb, lbc, lcc, n=n, source=source)


def as_table(onsager, w_br_per_s: float, w_cl_per_s: float, f0: float | None) -> ReducedOnsagerTable:
    """Normalise the accepted forms: None (MAA theory), a ReducedOnsagerTable, a callable
    x_Cl -> (l_BrBr, l_BrCl, l_ClCl), or a tuple of arrays (x_cl, l_BrBr, l_BrCl, l_ClCl)."""
    if onsager is None:
        if f0 is None:
            raise ValueError("f0 is needed for the MAA theory")
        return maa_table(w_br_per_s, w_cl_per_s, f0)
    if isinstance(onsager, ReducedOnsagerTable):
        return onsager
    if callable(onsager):
        return table_from_callable(onsager)
    if isinstance(onsager, (tuple, list)) and len(onsager) == 4:
        return table_from_arrays(*onsager)
    raise TypeError("onsager must be None, a ReducedOnsagerTable, a callable or (x_cl, l_BrBr, l_BrCl, l_ClCl)")
