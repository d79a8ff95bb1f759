"""Bulk kMC engine: rejection-free (BKL / n-fold way) vacancy hops in a periodic supercell.

Rate model (docs/model.md section 4): a halide X on site j jumps into the vacant neighbour i with
``Gamma = nu0 exp(-[E_a(X, n) + (e/2)(phi_j - phi_i)] / kT)``, E_a(X, n) = E_X,Br + (E_X,Cl -
E_X,Br) n/4 with n the Cl among the hop's 4 octahedron-environment sites.  A uniform field E
(V/um, along +z) gives phi_j - phi_i = -E (z_j - z_i), i.e. the factor exp(+e E (z_j - z_i)/2kT)
for the vacancy moving i -> j: vacancies drift along E, halides against it.

Events: 8 hops per vacancy in a sum tree (:mod:`ionwire.kmc._kernels`), O(log n_vac) selection, and after
a hop only the rates of the moved vacancy and of vacancies within the local10 of the two changed
sites are recomputed.  The clock advances by an exponential waiting time with the total rate.

Python API
----------
``BulkKMC(state, material=Material(), field_V_per_um=0.0)``; ``.run(n_events, chunk=...)`` runs
exactly ``n_events`` hops (ValueError if the state has no vacancy or no possible hop);
``.total_rate_per_s``; ``.nbytes`` (state + event tree).
``benchmark(cells=(64, 64, 64), ...) -> dict``: the standard speed benchmark (``ionwire bench kmc``).
"""
from __future__ import annotations

import time

import numpy as np

from ionwire.structures.parameters import Material
from ionwire.structures.units import V_PER_UM, ANGSTROM_M
from ionwire.structures.lattice import AnionLattice

from . import _kernels as K
from .state import BulkState

DEFAULT_CHUNK = 1_000_000


def field_half_eV(field_V_per_um: float, lattice_constant_A: float) -> float:
    """e E (a/2) / 2 in eV: half the potential-energy change of a vacancy (+e) moving one anion
    plane (a/2) along a field E (V/um) along +z."""
    return float(field_V_per_um) * V_PER_UM * 0.5 * lattice_constant_A * ANGSTROM_M / 2.0


def hop_rate_table(material: Material, field_V_per_um: float = 0.0) -> np.ndarray:
    """float64[3, 5, 3] rate table (see :func:`ionwire.kmc._kernels.rate_table`) for ``material``."""
    return K.rate_table(material.barriers.as_array(), material.attempt_frequency_per_s, material.kT_eV,
                        field_half_eV(field_V_per_um, material.lattice_constant_A))


class BulkKMC:
    """Drives a :class:`BulkState` with the rates of ``material`` in a uniform field along z."""

    def __init__(self, state: BulkState, material: Material | None = None, field_V_per_um: float = 0.0):
        material = Material() if material is None else material
        if not state.lattice.periodic_z:
            raise ValueError("the bulk engine needs a lattice periodic along z")
        if abs(state.lattice.lattice_constant_A - material.lattice_constant_A) > 1e-12:
            raise ValueError(f"lattice constant of the state ({state.lattice.lattice_constant_A} A) differs "
                             f"from the material's ({material.lattice_constant_A} A)")
        if not np.isfinite(field_V_per_um):
            raise ValueError(f"field_V_per_um must be finite, got {field_V_per_um!r}")
        self.state = state
        self.material = material
        self.field_V_per_um = float(field_V_per_um)
        self.table = hop_rate_table(material, self.field_V_per_um)
        self.tree = K.tree_new(max(8 * state.n_vacancies, 8))
        self._check_state()
        nx, ny, nz, _ = state.lattice.numba_args()
        K.init_bulk_rates(state.occupancy, state.vacancy_cell, self.tree, self.table, nx, ny, nz, True)

    def _check_state(self) -> None:
        s = self.state
        n, nv = s.lattice.n_sites, s.n_vacancies
        expect = {"occupancy": ((n,), np.uint8), "displacement": ((n, 3), np.int32),
                  "vacancy_cell": ((nv, 4), np.int64), "vacancy_site": ((nv,), np.int64),
                  "vacancy_displacement": ((nv, 3), np.int64), "collective_displacement": ((2, 3), np.int64),
                  "hops": ((2,), np.int64), "clock": ((1,), np.float64), "rng_state": ((4,), np.uint64)}
        for name, (shape, dtype) in expect.items():
            a = getattr(s, name)
            if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
                raise ValueError(f"state.{name} must be a C-contiguous {np.dtype(dtype).name}{list(shape)} array, "
                                 f"got {a.dtype.name}{list(a.shape)}")

    @property
    def total_rate_per_s(self) -> float:
        return float(K.tree_total(self.tree))

    @property
    def nbytes(self) -> int:
        """State memory including the event tree (bytes)."""
        return self.state.nbytes + int(self.tree.nbytes)

    def run(self, n_events: int, chunk: int = DEFAULT_CHUNK) -> int:
        """Perform exactly ``n_events`` hops (in kernel calls of at most ``chunk`` events; the
        trajectory depends on the chunking only through the tree rebuild at each call, which
        changes round-off, never the rates).  Returns n_events."""
        n_events = int(n_events)
        if n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {n_events}")
        s = self.state
        if s.n_vacancies == 0:
            raise ValueError("the configuration has no vacancy: no hop is possible")
        nx, ny, nz, _ = s.lattice.numba_args()
        done = 0
        while done < n_events:
            if not self.total_rate_per_s > 0.0:
                raise ValueError(f"no hop is possible (total rate is zero) after {s.n_events} events: "
                                 "every vacancy is surrounded by vacancies")
            m = min(int(chunk), n_events - done)
            got = K.run_bulk_events(s.occupancy, s.displacement, s.vacancy_site, s.vacancy_cell,
                                    s.vacancy_displacement, self.tree, self.table, nx, ny, nz, m,
                                    s.rng_state, s.collective_displacement, s.hops, s.clock)
            done += got
            s.n_events += got
            if got < m:
                raise ValueError(f"no hop is possible (total rate is zero) after {s.n_events} events")
        return done


def benchmark(cells=(64, 64, 64), vacancy_fraction: float = 0.01, x_cl: float = 0.5,
              n_events: int = 10_000_000, warmup_events: int = 1_000_000, seed: int = 0,
              material: Material | None = None) -> dict:
    """The standard bulk benchmark: a random alloy with ``vacancy_fraction`` of the sites vacant,
    ``random_alloy`` barriers (0.25 / 0.29 eV), 300 K, zero field; ``warmup_events`` first (this
    also triggers/loads the numba compilation), then ``n_events`` timed (wall clock and process
    CPU time).  Returns a JSON-able dict."""
    material = Material() if material is None else material
    lattice = AnionLattice(*(int(c) for c in cells), periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    n_vac = int(round(vacancy_fraction * lattice.n_sites))
    state = BulkState.random(lattice, x_cl, n_vac, seed)
    engine = BulkKMC(state, material)
    engine.run(warmup_events)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    engine.run(n_events)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "events": int(n_events),
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_second": n_events / wall,
        "events_per_cpu_second": n_events / cpu if cpu > 0 else None,
        "sites": int(lattice.n_sites),
        "vacancies": n_vac,
        "bytes_per_site": engine.nbytes / lattice.n_sites,
        "state_bytes": engine.nbytes,
        "cells": [lattice.nx, lattice.ny, lattice.nz],
        "x_cl": x_cl,
        "preset": material.preset,
        "temperature_K": material.temperature_K,
    }
