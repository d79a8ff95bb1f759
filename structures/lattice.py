"""Anion (halide) sublattice of an nx x ny x nz pseudo-cubic CsPbX3 supercell (docs/model.md section 2).

Representation.  Sites are numbered ``site = ((k * ny + j) * nx + i) * 3 + s`` for cell (i, j, k)
and sublattice s (0: X at (1/2,0,0)a, 1: (0,1/2,0)a, 2: (0,0,1/2)a), so z-planes are contiguous
blocks.  Positions are kept in half lattice units ("half-units", a/2), where every site has
integer coordinates: ``2 (i, j, k) + e_s``.  Neighbours and hop environments are not stored per
site; they follow from three small constant tables (3 sublattices x 8 directions), so the
memory of the geometry is O(1) and a numba kernel computes a neighbour with a few integer
operations (:func:`neighbour_site`, :func:`environment_site`).  Per-site tables
(:meth:`AnionLattice.neighbour_table`) are offered for tests, analysis and small systems.

Geometry facts used (derived in :func:`_build_tables`):
- the 8 neighbours of a site on axis s sit at +-1 half-unit along s and +-1 along one other
  axis t (distance a/sqrt(2)); the neighbour is on sublattice t;
- the Pb shared by sites A and B = A + d is P = A + d_s e_s; the hop's environment is the other
  four X of that octahedron: P + d_s e_s, P - d_t e_t, P +- e_w (w the third axis);
- anion planes along z are a/2 apart; plane index p = 2k + (s == 2); planes with even p hold
  2 nx ny sites (PbX2 layers), odd p hold nx ny (CsX layers).

z is periodic for bulk runs and bounded (no wrap, missing neighbours are -1) for device runs.
Missing environment sites of an octahedron cut by a wire end are reported as -1 too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ._jit_cache import configure as _configure_jit_cache

_configure_jit_cache()

N_SUBLATTICES = 3
N_NEIGHBOURS = 8
N_ENVIRONMENT = 4

_UNIT = np.eye(3, dtype=np.int64)
_CHUNK = 1 << 20  # sites per block when a whole-lattice array is filled


def _build_tables():
    """NEIGHBOUR[s, d] = (di, dj, dk, s') cell offset and sublattice of neighbour d of a site on s;
    HOP[s, d] = hop vector in half-units; ENV[s, d, m] = (di, dj, dk, s'') of environment site m;
    REVERSE[s, d] = direction index at the neighbour that points back to the site."""
    neighbour = np.zeros((3, 8, 4), dtype=np.int64)
    hop = np.zeros((3, 8, 3), dtype=np.int64)
    env = np.zeros((3, 8, 4, 4), dtype=np.int64)

    def to_cell(pos):  # half-unit position -> (cell offset, sublattice) relative to cell (0,0,0)
        odd = [ax for ax in range(3) if pos[ax] % 2 != 0]
        assert len(odd) == 1, pos
        s = odd[0]
        cell = (pos - _UNIT[s]) // 2
        return np.array([cell[0], cell[1], cell[2], s])

    for s in range(3):
        a = _UNIT[s].copy()  # site position in half-units, cell (0,0,0)
        d_index = 0
        for t in range(3):
            if t == s:
                continue
            w = 3 - s - t
            for ds in (-1, 1):
                for dt in (-1, 1):
                    d = ds * _UNIT[s] + dt * _UNIT[t]
                    b = a + d
                    neighbour[s, d_index] = to_cell(b)
                    hop[s, d_index] = d
                    p = a + ds * _UNIT[s]  # the shared Pb (all coordinates even)
                    assert np.all(p % 2 == 0)
                    others = [p + ds * _UNIT[s], p - dt * _UNIT[t], p + _UNIT[w], p - _UNIT[w]]
                    for m, q in enumerate(others):
                        env[s, d_index, m] = to_cell(q)
                    d_index += 1
    reverse = np.zeros((3, 8), dtype=np.int64)
    for s in range(3):
        for d in range(8):
            s2 = neighbour[s, d, 3]
            back = -hop[s, d]
            matches = [d2 for d2 in range(8) if np.array_equal(hop[s2, d2], back)]
            assert len(matches) == 1
            reverse[s, d] = matches[0]
    return neighbour, hop, env, reverse


NEIGHBOUR_OFFSETS, HOP_HALF_UNITS, ENVIRONMENT_OFFSETS, REVERSE_DIRECTION = _build_tables()
for _t in (NEIGHBOUR_OFFSETS, HOP_HALF_UNITS, ENVIRONMENT_OFFSETS, REVERSE_DIRECTION):
    _t.setflags(write=False)


@numba.njit(cache=True, inline="always")
def _offset_site(site, di, dj, dk, s2, nx, ny, nz, periodic_z):
    c = site // 3
    i = c % nx
    j = (c // nx) % ny
    k = c // (nx * ny)
    i2 = (i + di) % nx
    j2 = (j + dj) % ny
    k2 = k + dk
    if periodic_z:
        k2 = k2 % nz
    elif k2 < 0 or k2 >= nz:
        return -1
    return ((k2 * ny + j2) * nx + i2) * 3 + s2


@numba.njit(cache=True, inline="always")
def neighbour_site(site, d, nx, ny, nz, periodic_z, neighbour_offsets):
    """Index of neighbour ``d`` (0..7) of ``site``, or -1 beyond a bounded z end."""
    s = site % 3
    return _offset_site(site, neighbour_offsets[s, d, 0], neighbour_offsets[s, d, 1],
                        neighbour_offsets[s, d, 2], neighbour_offsets[s, d, 3], nx, ny, nz, periodic_z)


@numba.njit(cache=True, inline="always")
def environment_site(site, d, m, nx, ny, nz, periodic_z, environment_offsets):
    """Index of environment site ``m`` (0..3) of the hop from ``site`` along ``d``, or -1."""
    s = site % 3
    return _offset_site(site, environment_offsets[s, d, m, 0], environment_offsets[s, d, m, 1],
                        environment_offsets[s, d, m, 2], environment_offsets[s, d, m, 3], nx, ny, nz, periodic_z)


@dataclass(frozen=True)
class AnionLattice:
    """Geometry of the anion sublattice of an nx x ny x nz supercell (see module docstring)."""

    nx: int
    ny: int
    nz: int
    periodic_z: bool = True
    lattice_constant_A: float = 5.8

    def __post_init__(self):
        for name in ("nx", "ny", "nz"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        if self.nx < 2 or self.ny < 2:
            raise ValueError(f"nx and ny must be at least 2 (periodic directions), got {self.nx} x {self.ny}")
        if self.nz < (2 if self.periodic_z else 1):
            raise ValueError(f"nz must be at least {2 if self.periodic_z else 1}, got {self.nz}")
        if not self.lattice_constant_A > 0:
            raise ValueError(f"lattice_constant_A must be positive, got {self.lattice_constant_A!r}")

    # sizes ----------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.nx * self.ny * self.nz

    @property
    def n_sites(self) -> int:
        return 3 * self.n_cells

    @property
    def n_planes(self) -> int:
        return 2 * self.nz

    @property
    def cell_A(self) -> np.ndarray:
        """Orthorhombic box lengths (Angstrom), float64[3]."""
        return self.lattice_constant_A * np.array([self.nx, self.ny, self.nz], dtype=float)

    @property
    def hop_length_A(self) -> float:
        return self.lattice_constant_A / np.sqrt(2.0)

    @property
    def plane_spacing_A(self) -> float:
        return 0.5 * self.lattice_constant_A

    # per-site arrays ------------------------------------------------------------------------
    # Whole-lattice arrays are filled in chunks of _CHUNK sites, so that building one costs its
    # own size plus O(_CHUNK) (no per-site temporaries of the full length).
    def cells_of(self, sites) -> np.ndarray:
        """int64[..., 4]: (i, j, k, s) of the given site indices (integer arithmetic on those
        sites only)."""
        sites = np.asarray(sites, dtype=np.int64)
        out = np.empty(sites.shape + (4,), dtype=np.int64)
        c = sites // 3
        np.remainder(sites, 3, out=out[..., 3])
        np.remainder(c, self.nx, out=out[..., 0])
        c //= self.nx
        np.remainder(c, self.ny, out=out[..., 1])
        np.floor_divide(c, self.ny, out=out[..., 2])
        return out

    def site_cells(self) -> np.ndarray:
        """int64[n_sites, 4]: (i, j, k, s) of every site."""
        out = np.empty((self.n_sites, 4), dtype=np.int64)
        for lo in range(0, self.n_sites, _CHUNK):
            hi = min(lo + _CHUNK, self.n_sites)
            out[lo:hi] = self.cells_of(np.arange(lo, hi, dtype=np.int64))
        return out

    def half_unit_positions(self) -> np.ndarray:
        """int64[n_sites, 3]: positions in units of a/2."""
        out = np.empty((self.n_sites, 3), dtype=np.int64)
        for lo in range(0, self.n_sites, _CHUNK):
            hi = min(lo + _CHUNK, self.n_sites)
            ijks = self.cells_of(np.arange(lo, hi, dtype=np.int64))
            out[lo:hi] = 2 * ijks[:, :3] + _UNIT[ijks[:, 3]]
        return out

    def positions_A(self) -> np.ndarray:
        """float64[n_sites, 3]: site positions in Angstrom (origin at a Pb)."""
        out = np.empty((self.n_sites, 3), dtype=float)
        half = 0.5 * self.lattice_constant_A
        for lo in range(0, self.n_sites, _CHUNK):
            hi = min(lo + _CHUNK, self.n_sites)
            ijks = self.cells_of(np.arange(lo, hi, dtype=np.int64))
            np.multiply(half, (2 * ijks[:, :3] + _UNIT[ijks[:, 3]]).astype(float), out=out[lo:hi])
        return out

    def planes_of(self, sites) -> np.ndarray:
        """int64[...]: anion plane along z (0 .. 2 nz - 1) of the given site indices."""
        sites = np.asarray(sites, dtype=np.int64)
        return 2 * (sites // (3 * self.nx * self.ny)) + (sites % 3 == 2)

    def plane_index(self) -> np.ndarray:
        """int64[n_sites]: anion plane along z (0 .. 2 nz - 1), planes a/2 apart."""
        out = np.empty(self.n_sites, dtype=np.int64)
        for lo in range(0, self.n_sites, _CHUNK):
            hi = min(lo + _CHUNK, self.n_sites)
            out[lo:hi] = self.planes_of(np.arange(lo, hi, dtype=np.int64))
        return out

    def plane_z_A(self) -> np.ndarray:
        """float64[n_planes]: z of each anion plane (Angstrom)."""
        return self.plane_spacing_A * np.arange(self.n_planes, dtype=float)

    def sites_per_plane(self) -> np.ndarray:
        """int64[n_planes]: 2 nx ny on PbX2 planes (even), nx ny on CsX planes (odd)."""
        out = np.full(self.n_planes, self.nx * self.ny, dtype=np.int64)
        out[0::2] *= 2
        return out

    def hop_vectors_A(self) -> np.ndarray:
        """float64[3, 8, 3]: hop vector (Angstrom) of direction d from a site on sublattice s."""
        return 0.5 * self.lattice_constant_A * HOP_HALF_UNITS.astype(float)

    def _offset(self, sites: np.ndarray, off: np.ndarray) -> np.ndarray:
        ijks = self.cells_of(sites)
        i = (ijks[..., 0] + off[..., 0]) % self.nx
        j = (ijks[..., 1] + off[..., 1]) % self.ny
        k = ijks[..., 2] + off[..., 2]
        if self.periodic_z:
            k = k % self.nz
            bad = np.zeros_like(k, dtype=bool)
        else:
            bad = (k < 0) | (k >= self.nz)
        out = ((k * self.ny + j) * self.nx + i) * 3 + off[..., 3]
        return np.where(bad, -1, out)

    def neighbour_table(self) -> np.ndarray:
        """int64[n_sites, 8]: neighbour of each site along each direction (-1: none)."""
        sites = np.arange(self.n_sites)
        off = NEIGHBOUR_OFFSETS[sites % 3]  # [n, 8, 4]
        return self._offset(np.repeat(sites[:, None], 8, axis=1), off)

    def environment_table(self) -> np.ndarray:
        """int64[n_sites, 8, 4]: the 4 environment sites of every hop (-1: cut by a wire end)."""
        sites = np.arange(self.n_sites)
        off = ENVIRONMENT_OFFSETS[sites % 3]  # [n, 8, 4, 4]
        return self._offset(np.broadcast_to(sites[:, None, None], (self.n_sites, 8, 4)), off)

    def numba_args(self) -> tuple:
        """(nx, ny, nz, periodic_z) for the numba kernels."""
        return (np.int64(self.nx), np.int64(self.ny), np.int64(self.nz), bool(self.periodic_z))
