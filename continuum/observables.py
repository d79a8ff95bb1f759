"""Observables of the wire (docs/model.md section 8): front position, migration length, Cl uptake.

- front position: where x_Br crosses 0.55 (the paper's mid-point, Fig. 1e caption), linearly
  interpolated between nodes; if x_Br crosses 0.55 several times, the crossing closest to the
  initial junction is taken (:mod:`ionwire.structures.front`);
- migration length L(t) = z_front(0) - z_front(t): the displacement towards the Br side (the Br
  segment is at small z), negative if the front moves towards the Cl side;
- Cl uptake: the mean Cl site fraction over the ORIGINAL Br segment, i.e. the cell-volume-weighted
  mean of x_Cl over 0 <= z <= z_junction (overhang, contact and gap part of the Br segment).  The
  paper's "up to ~12 %" is a PL estimate over an unstated length, so this is a reported
  observable, not a target.  It scales with 1 / (Br segment length), an arbitrary choice of the
  geometry;
- front width: the distance between the crossings of x_Br = 0.9 and x_Br = 0.1 nearest to the
  front (the 10-90 % width of the composition step);
- windowed Cl uptake (the PL-comparable quantity): the volume-weighted mean x_Cl over a stated
  window behind the initial junction, [z_junction - window_um, z_junction] (default 1 um, a few
  confocal resolutions of ~0.3 um), independent of the segment length as long as the window lies
  inside the Br segment.
"""
from __future__ import annotations

import numpy as np

from ionwire.structures.front import FRONT_LEVEL, front_near


def front_position_um(z_um: np.ndarray, x_br: np.ndarray, near_um: float, level: float = FRONT_LEVEL) -> float:
    """z (um) where x_br (float64[nz]) crosses ``level``, the crossing closest to near_um; nan if none
    (:func:`ionwire.structures.front.front_near`)."""
    return float(front_near(z_um, x_br, near_um, level))


def front_positions_um(z_um, x_br_t, near_um: float, level: float = FRONT_LEVEL) -> np.ndarray:
    """float64[nt]: front_position_um for each row of x_br_t (float64[nt, nz])."""
    return front_near(z_um, x_br_t, near_um, level)


def front_width_um(z_um, x_br, near_um, upper: float = 0.9, lower: float = 0.1):
    """|z(x_Br = lower) - z(x_Br = upper)| (um), each crossing the one nearest to near_um; nan
    if either level is not crossed.  x_br float64[nz] (a float) or float64[nt, nz] with near_um
    float64[nt] (float64[nt], one width per profile)."""
    w = np.abs(front_near(z_um, x_br, near_um, lower) - front_near(z_um, x_br, near_um, upper))
    return float(w) if w.ndim == 0 else w


def migration_lengths_um(z_um, x_br_t, near_um: float) -> np.ndarray:
    """float64[nt]: L(t) = z_front(t=0) - z_front(t), um (positive towards the Br side)."""
    zf = front_positions_um(z_um, x_br_t, near_um)
    return zf[0] - zf


def cl_uptake(z_um, volume_um, x_cl, junction_um: float) -> float:
    """Volume-weighted mean of x_Cl (float64[nz]) over the original Br segment z <= junction_um.

    The junction node's cell is counted with the half on the Br side.
    """
    lo = np.concatenate(([z_um[0]], 0.5 * (z_um[:-1] + z_um[1:])))
    hi = np.concatenate((0.5 * (z_um[:-1] + z_um[1:]), [z_um[-1]]))
    w = np.clip(np.minimum(hi, junction_um) - lo, 0.0, None)
    return float(np.sum(w * x_cl) / np.sum(w))


def _cell_bounds(z_um):
    lo = np.concatenate(([z_um[0]], 0.5 * (z_um[:-1] + z_um[1:])))
    hi = np.concatenate((0.5 * (z_um[:-1] + z_um[1:]), [z_um[-1]]))
    return lo, hi


def windowed_mean(z_um, x, z0_um: float, z1_um: float) -> float:
    """Mean of the nodal field x (float64[nz], piecewise constant on the finite-volume cells)
    over [z0_um, z1_um], weighted by each cell's overlap with the window."""
    if not z1_um > z0_um:
        raise ValueError(f"empty window [{z0_um}, {z1_um}]")
    lo, hi = _cell_bounds(np.asarray(z_um, dtype=float))
    w = np.clip(np.minimum(hi, z1_um) - np.maximum(lo, z0_um), 0.0, None)
    return float(np.sum(w * x) / np.sum(w))


#: window of the PL-comparable Cl uptake behind the initial junction (um)
UPTAKE_WINDOW_UM = 1.0


def cl_uptake_window(z_um, x_cl, junction_um: float, window_um: float = UPTAKE_WINDOW_UM) -> float:
    """Mean x_Cl over [junction_um - window_um, junction_um] (the Br side of the initial junction)."""
    return windowed_mean(z_um, x_cl, junction_um - window_um, junction_um)


def linear_fit(x, y) -> dict:
    """Least-squares line y = slope x + intercept with its coefficient of determination R^2."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {"slope": float(slope), "intercept": float(intercept),
            "r_squared": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}
