"""1D finite-volume mesh of the wire (um), refined where the Debye layers form.

Nodes sit on every key point (wire ends, contact lines, junction), so the contact regions are
unions of whole half-cells and the imposed potentials sit on nodes.  Between key points the nodes
equidistribute the density

    rho(z) = 1 + refinement * sum_k exp(-|z - z_k| / layer_width_um)

(z_k the key points), i.e. a smooth grading from ~ (1 + refinement)^-1 of the bulk spacing at the
contact lines and the junction -- where depletion / accumulation layers of the Debye-length scale
form under bias -- to the bulk spacing far from them.  Smooth grading keeps the finite-volume
scheme second order (tests/test_continuum_numerics.py measures it).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mesh:
    """Nodes z_um float64[n]; cell volumes (lengths) volume_um float64[n] (half cells at the ends);
    face spacings h_um float64[n-1] = diff(z_um)."""

    z_um: np.ndarray
    volume_um: np.ndarray
    h_um: np.ndarray

    @property
    def n(self) -> int:
        return int(self.z_um.size)

    @classmethod
    def from_nodes(cls, z_um) -> "Mesh":
        z = np.asarray(z_um, dtype=float)
        if z.ndim != 1 or z.size < 3 or np.any(np.diff(z) <= 0):
            raise ValueError("mesh nodes must be a strictly increasing 1D array of >= 3 points")
        h = np.diff(z)
        vol = np.zeros_like(z)
        vol[:-1] += 0.5 * h
        vol[1:] += 0.5 * h
        return cls(z, vol, h)

    def index_of(self, z_um: float) -> int:
        """Index of the node at z_um (a key point); raises if no node is there."""
        i = int(np.argmin(np.abs(self.z_um - z_um)))
        if abs(self.z_um[i] - z_um) > 1e-9 * max(1.0, abs(z_um)):
            raise ValueError(f"no mesh node at z = {z_um} um")
        return i

    def overlap_um(self, start_um: float, end_um: float) -> np.ndarray:
        """float64[n]: length of each control volume inside [start_um, end_um]."""
        lo = np.concatenate(([self.z_um[0]], 0.5 * (self.z_um[:-1] + self.z_um[1:])))
        hi = np.concatenate((0.5 * (self.z_um[:-1] + self.z_um[1:]), [self.z_um[-1]]))
        return np.clip(np.minimum(hi, end_um) - np.maximum(lo, start_um), 0.0, None)


def graded_mesh(key_points_um, n_nodes: int, refinement: float = 20.0, layer_width_um: float = 0.15) -> Mesh:
    """About ``n_nodes`` nodes on [min(key), max(key)] with a node on every key point.

    key_points_um: the points to resolve (sorted, duplicates removed); n_nodes >= 3 * segments.
    Spacing near a key point ~ bulk spacing / (1 + refinement); decays over layer_width_um.
    The nodes of the last few distinct inputs are kept (the equidistribution costs ~50 ms; a
    sweep builds the same mesh for every field); every call returns a Mesh of its own arrays.
    """
    keys = np.unique(np.asarray(key_points_um, dtype=float))
    if keys.size < 2:
        raise ValueError("need at least two key points")
    z = _graded_nodes(tuple(float(k) for k in keys), int(n_nodes), float(refinement), float(layer_width_um))
    return Mesh.from_nodes(z.copy())


@functools.lru_cache(maxsize=8)
def _graded_nodes(keys_t: tuple, n_nodes: int, refinement: float, layer_width_um: float) -> np.ndarray:
    keys = np.asarray(keys_t)
    fine = np.linspace(keys[0], keys[-1], 200001)
    rho = 1.0 + refinement * np.exp(-np.abs(fine[:, None] - keys[None, :]) / layer_width_um).sum(axis=1)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(fine))))
    total = cum[-1]
    nodes = [keys[:1]]
    for a, b in zip(keys[:-1], keys[1:]):
        ca, cb = np.interp([a, b], fine, cum)
        m = max(3, int(round((n_nodes - 1) * (cb - ca) / total)))
        targets = np.linspace(ca, cb, m + 1)[1:]
        seg = np.interp(targets, cum, fine)
        seg[-1] = b
        nodes.append(seg)
    z = np.concatenate(nodes)
    z.setflags(write=False)
    return z
