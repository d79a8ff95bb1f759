"""Bulk transport observables from independent kMC replicas (docs/model.md sections 4 and 6).

Every quantity is estimated in each of ``n_replicas`` independent replicas (own configuration and
random stream, spawned from one SeedSequence); the result is the replica mean and its standard
error (sample standard deviation / sqrt(n_replicas)).

Definitions (s = a/sqrt(2) hop length, z = 8, N_sites sites, N_V vacancies, x_V = N_V/N_sites,
t the simulated time after the warm-up, R_a the summed displacement of all atoms of species a,
r_i the displacement of atom i):

- tracer correlation factor  f_a = sum_{i in a} |r_i|^2 / (n_hops_a s^2)
- tracer diffusion coefficient  D_a = sum_{i in a} |r_i|^2 / (6 N_a t)            (cm^2/s)
  (zero-field quantities: under a field |r_i|^2 also contains the drift)
- Onsager coefficients  l_ab = <dR_a . dR_b> / (t N_sites z s^2 x_V)                (1/s)
  (docs/model.md normalisation, L_ab kT = c_s (z s^2/6) x_V l_ab; l = w for one species of
  uncorrelated hops).  Estimated from the increments dR over ``n_blocks`` consecutive blocks of
  a replica: l_ab = sum_blocks dR_a.dR_b / (sum_blocks dt  z s^2 N_V).  Under a field the mean
  drift of each block is subtracted (with the n/(n-1) correction), so l_ab stays the zero-field
  fluctuation coefficient to first order.
- vacancy diffusion coefficient  D_V = sum_blocks sum_v |dr_v|^2 / (6 N_V sum_blocks dt)  (cm^2/s)
  (block increments, drift removed under a field as for l_ab)
- drift velocity  v_a = R_a,z / (N_a t) (cm/s, along +z = the field), mobility
  mu_a = v_a / (q_a E) (cm^2/(V s)) with q = -1 for the halides and +1 for the vacancy, so a
  mobility is positive when the species moves the way its charge is pushed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ionwire.structures.parameters import DEFAULT_HALIDES, Material, _renamed, one_halide_entry, require
from ionwire.structures.statistics import mean_and_error
from ionwire.structures.units import ANGSTROM_M, CM_M, Z_ANION
from ionwire.structures.lattice import AnionLattice

from .bulk import BulkKMC
from .state import BR, CL, BulkState



def species_names(halides=DEFAULT_HALIDES) -> tuple[str, str]:
    """The keys of the per-species results (f, D_tracer, hops, fractions, ...): the pair's symbols."""
    return (halides[0], halides[1])


def pair_names(halides=DEFAULT_HALIDES) -> tuple[tuple[str, int, int], ...]:
    """(name, a, b) of the three Onsager coefficients l_ab (codes 0: first, 1: second halide):
    BrBr, BrCl, ClCl for Br, Cl."""
    a, b = halides
    return ((a + a, 0, 0), (a + b, 0, 1), (b + b, 1, 1))


def fraction_key(halides=DEFAULT_HALIDES) -> str:
    """The name of the second halide's fraction of the halide sites in results: x_cl for Br, Cl."""
    return f"x_{halides[1].lower()}"


@dataclass
class ReplicaResult:
    """Raw per-replica estimates (see module docstring for definitions; SI-cm units)."""

    f: dict
    D_tracer_cm2_per_s: dict
    l_per_s: dict
    D_vacancy_cm2_per_s: float
    drift_velocity_cm_per_s: dict
    time_s: float
    hops: dict
    n_events: int


@dataclass
class BulkResult:
    """Replica means and standard errors of the bulk observables."""

    cells: tuple
    x_cl: float
    n_vacancies: int
    field_V_per_um: float
    material: Material
    n_events_per_replica: int
    n_replicas: int
    w_per_s: dict
    f: dict
    f_err: dict
    D_tracer_cm2_per_s: dict
    D_tracer_err: dict
    l_per_s: dict
    l_err: dict
    D_vacancy_cm2_per_s: float
    D_vacancy_err: float
    drift_velocity_cm_per_s: dict
    drift_velocity_err: dict
    mobility_cm2_per_Vs: dict | None
    mobility_err: dict | None
    fractions: dict
    wall_s: float
    replicas: list = field(repr=False, default_factory=list)

    @property
    def events(self) -> int:
        return self.n_events_per_replica * self.n_replicas


MAX_FIELD_V_PER_UM = 5000.0
#: hops per vacancy per block below which consecutive blocks of l_ab are correlated
MIN_HOPS_PER_VACANCY_PER_BLOCK = 100


@dataclass(frozen=True)
class BulkSettings:
    """[bulk]: how each bulk replica is run (the ``bulk`` and ``onsager`` run types).

    cells: periodic supercell nx, ny, nz (unit cells); x_cl: the second halide's fraction of the
    halide sites (TOML ``composition = {Cl = 0.5}``, keyed by the second halide of material.halides);
    vacancy_fraction: vacancies per anion site (the count is max(1, round(fraction * 3 nx ny nz)));
    field_V_per_um: uniform field along z; events_per_replica: hops per replica after
    ``warmup_events`` hops that are discarded (they relax the random initial configuration);
    blocks: consecutive blocks per replica whose collective-displacement increments estimate l_ab
    (:func:`run_replica`): the relative error of l_ab scales as sqrt(2/(3 blocks R)), so many
    blocks per replica make a table precise; each block must stay long against the correlation
    of a vacancy's hops (checked: >= 100 hops per vacancy per block); seed: root seed (each run's
    seed is derived from it, :mod:`ionwire.structures.seeds`).
    """

    cells: tuple[int, int, int] = (10, 10, 10)
    x_cl: float = 0.5
    vacancy_fraction: float = 0.002
    field_V_per_um: float = 0.0
    events_per_replica: int = 2_000_000
    warmup_events: int = 0
    blocks: int = 200
    seed: int = 2026

    def __post_init__(self):
        require(all(2 <= c <= 4096 for c in self.cells), f"cells: each must be in [2, 4096], got {list(self.cells)}")
        require(math.isfinite(self.x_cl) and 0.0 <= self.x_cl <= 1.0,
                f"composition: the second halide's fraction must be in [0, 1], got {self.x_cl!r}")
        require(math.isfinite(self.vacancy_fraction) and 0 < self.vacancy_fraction < 0.5,
                f"vacancy_fraction: must be in (0, 0.5), got {self.vacancy_fraction!r}")
        require(math.isfinite(self.field_V_per_um) and abs(self.field_V_per_um) <= MAX_FIELD_V_PER_UM,
                f"field_V_per_um: must be in [-{MAX_FIELD_V_PER_UM:g}, {MAX_FIELD_V_PER_UM:g}] V/um, "
                f"got {self.field_V_per_um!r}")
        require(1 <= self.events_per_replica <= 10**13,
                f"events_per_replica: must be in [1, 1e13], got {self.events_per_replica!r}")
        require(0 <= self.warmup_events <= 10**12, f"warmup_events: must be in [0, 1e12], got {self.warmup_events!r}")
        require(1 <= self.blocks <= 10_000, f"blocks: must be in [1, 10000], got {self.blocks!r}")
        require(0 <= self.seed < 2**63, f"seed: must be in [0, 2^63), got {self.seed!r}")
        hops = self.events_per_replica / (self.blocks * self.vacancies)
        require(hops >= MIN_HOPS_PER_VACANCY_PER_BLOCK,
                f"blocks: {self.blocks} blocks of events_per_replica = {self.events_per_replica} leave {hops:.3g} "
                f"hops per vacancy per block (need >= {MIN_HOPS_PER_VACANCY_PER_BLOCK} so that blocks are "
                "uncorrelated)")

    @classmethod
    def from_toml_keys(cls, data, where: str, halides=None):
        """TOML ``composition = {<second halide> = x}``; the older key x_cl names it in its error."""
        halides = halides or DEFAULT_HALIDES
        _renamed(data, where, [(r"x_cl", lambda m: f"composition = {{{halides[1]} = ...}}")])
        out = dict(data)
        one_halide_entry(out, "composition", "x_cl", halides, 1, where,
                         "the fraction of the second halide of material.halides")
        return out, halides

    def to_toml_keys(self, out: dict, halides=None) -> dict:
        halides = halides or DEFAULT_HALIDES
        return {("composition" if k == "x_cl" else k): ({halides[1]: v} if k == "x_cl" else v)
                for k, v in out.items()}

    @property
    def n_sites(self) -> int:
        nx, ny, nz = self.cells
        return 3 * nx * ny * nz

    @property
    def vacancies(self) -> int:
        return max(1, int(round(self.vacancy_fraction * self.n_sites)))


def measure_replica(material: Material, settings: BulkSettings, seed) -> dict:
    """One bulk replica with ``settings`` (:func:`run_replica`) as a JSON-able dict: the settings
    used (x_cl nominal, field_V_per_um, temperature_K, vacancies, events, warmup_events, seed),
    x_cl_actual (the second halide's fraction of the atoms placed: exactly round(x_cl n_atoms)
    atoms of it) and x_v, the per-replica estimates l_per_s, f, D_tracer_cm2_per_s, D_vacancy_cm2_per_s,
    drift_velocity_cm_per_s, time_s, hops, and wall_s, events_per_second."""
    nx, ny, nz = settings.cells
    lattice = AnionLattice(nx, ny, nz, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    n_vac = settings.vacancies
    events, warm = int(settings.events_per_replica), int(settings.warmup_events)
    t0 = time.perf_counter()
    rep = run_replica(lattice, float(settings.x_cl), n_vac, material, float(settings.field_V_per_um), events,
                      seed, warm, int(settings.blocks))
    wall = time.perf_counter() - t0
    n_atoms = lattice.n_sites - n_vac
    xk = fraction_key(material.halides)
    return {xk: float(settings.x_cl), "field_V_per_um": float(settings.field_V_per_um),
            "temperature_K": material.temperature_K, "vacancies": n_vac, "events": events, "warmup_events": warm,
            "seed": int(seed), f"{xk}_actual": int(round(settings.x_cl * n_atoms)) / n_atoms,
            "x_v": n_vac / lattice.n_sites,
            "l_per_s": {k: float(v) for k, v in rep.l_per_s.items()}, "f": {k: float(v) for k, v in rep.f.items()},
            "D_tracer_cm2_per_s": rep.D_tracer_cm2_per_s, "D_vacancy_cm2_per_s": rep.D_vacancy_cm2_per_s,
            "drift_velocity_cm_per_s": rep.drift_velocity_cm_per_s, "time_s": float(rep.time_s), "hops": rep.hops,
            "wall_s": wall, "events_per_second": (events + warm) / wall if wall > 0 else None}


def run_replica(lattice: AnionLattice, x_cl: float, n_vacancies: int, material: Material,
                field_V_per_um: float, n_events: int, seed, warmup_events: int = 0,
                n_blocks: int = 20) -> ReplicaResult:
    """One replica: random configuration, warm-up, then ``n_events`` hops in ``n_blocks`` blocks
    (x_cl: the second halide's fraction; results keyed by the names of ``material.halides``)."""
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
    if n_events < n_blocks:
        raise ValueError(f"n_events ({n_events}) must be at least n_blocks ({n_blocks})")
    state = BulkState.random(lattice, x_cl, n_vacancies, seed)
    engine = BulkKMC(state, material, field_V_per_um)
    if warmup_events:
        engine.run(warmup_events)
    state.reset_observables()
    edges = np.linspace(0, n_events, n_blocks + 1).astype(np.int64)
    dR = np.zeros((n_blocks, 2, 3))
    dt = np.zeros(n_blocks)
    # vacancy sums (no per-block per-vacancy storage): sum |dr_v|^2, sum_b (sum_v dr_v) dt_b
    v_sq, v_cross = 0.0, np.zeros(3)
    for b in range(n_blocks):
        R0, Rv0, t0 = state.collective_displacement.copy(), state.vacancy_displacement.copy(), state.time_s
        engine.run(int(edges[b + 1] - edges[b]))
        dR[b] = state.collective_displacement - R0
        dt[b] = state.time_s - t0
        drv = (state.vacancy_displacement - Rv0).astype(float)
        v_sq += float((drv**2).sum())
        v_cross += drv.sum(axis=0) * dt[b]
    half_cm = 0.5 * lattice.lattice_constant_A * ANGSTROM_M / CM_M  # a/2 in cm
    s2_half = 2.0  # s^2 = a^2/2 = 2 (a/2)^2
    t = state.time_s
    occ = state.occupancy
    disp = state.displacement.astype(np.int64)
    r2 = np.einsum("ij,ij->i", disp, disp)
    f, D, v = {}, {}, {}
    first, second = species_names(material.halides)
    for x, name in ((BR, first), (CL, second)):
        mask = occ == x
        n_x = int(mask.sum())
        sum_r2 = float(r2[mask].sum())
        hops = int(state.hops[x])
        f[name] = sum_r2 / (hops * s2_half) if hops else float("nan")
        D[name] = sum_r2 * half_cm**2 / (6.0 * n_x * t) if n_x else float("nan")
        v[name] = float(state.collective_displacement[x, 2]) * half_cm / (n_x * t) if n_x else float("nan")
    nv = state.n_vacancies
    vd = state.vacancy_displacement.astype(float)
    v["V"] = float(vd[:, 2].sum()) * half_cm / (nv * t)
    if field_V_per_um != 0.0 and n_blocks > 1:
        # drift removed block by block; n/(n-1) undoes the bias of the estimated mean
        drift = dR.sum(axis=0) / dt.sum()  # half-units per s
        fluct = dR - drift[None] * dt[:, None, None]
        corr = n_blocks / (n_blocks - 1.0)
        u = vd.sum(axis=0) / (nv * dt.sum())  # common vacancy drift, half-units per s
        m = n_blocks * nv
        v_fluct = (v_sq - 2.0 * float(u @ v_cross) + float(u @ u) * nv * float((dt**2).sum())) * m / (m - 1.0)
    else:
        fluct, corr, v_fluct = dR, 1.0, v_sq
    # vacancy hops are nearly uncorrelated: block increments of every vacancy are independent
    # samples of its mean-square displacement (much less noisy than one displacement per run)
    D_v = v_fluct * half_cm**2 / (6.0 * nv * dt.sum())
    l = {}
    for name, a, b in pair_names(material.halides):
        l[name] = corr * float(np.einsum("ij,ij->", fluct[:, a], fluct[:, b])) / (dt.sum() * Z_ANION * s2_half * nv)
    return ReplicaResult(f=f, D_tracer_cm2_per_s=D, l_per_s=l, D_vacancy_cm2_per_s=D_v,
                         drift_velocity_cm_per_s=v, time_s=t,
                         hops={first: int(state.hops[BR]), second: int(state.hops[CL])}, n_events=n_events)


def measure_bulk(cells=(16, 16, 16), x_cl: float = 0.5, n_vacancies: int | None = None,
                 material: Material | None = None, field_V_per_um: float = 0.0, n_events: int = 1_000_000,
                 n_replicas: int = 4, seed=0, warmup_events: int | None = None, n_blocks: int = 20) -> BulkResult:
    """Bulk observables of a random alloy of the pair ``material.halides`` (see module docstring);
    every result is keyed by the pair's names (Br, Cl, BrCl, ... for the default pair).

    cells: (nx, ny, nz) periodic supercell; x_cl: the second halide's fraction of the halide sites; n_vacancies: count
    (default 1 % of the sites, at least 1); n_events: hops per replica after a warm-up of
    ``warmup_events`` (default n_events // 10; the random alloy is already the zero-field
    equilibrium, the warm-up relaxes vacancy-vacancy and field-driven correlations).
    """
    material = Material() if material is None else material
    nx, ny, nz = (int(c) for c in cells)
    lattice = AnionLattice(nx, ny, nz, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    if n_vacancies is None:
        n_vacancies = max(1, int(round(0.01 * lattice.n_sites)))
    if n_vacancies < 1:
        raise ValueError("n_vacancies must be at least 1: without vacancies nothing hops")
    if n_replicas < 1:
        raise ValueError(f"n_replicas must be >= 1, got {n_replicas}")
    if warmup_events is None:
        warmup_events = n_events // 10
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    t0 = time.perf_counter()
    reps = [run_replica(lattice, x_cl, int(n_vacancies), material, field_V_per_um, int(n_events), child,
                        int(warmup_events), n_blocks) for child in ss.spawn(n_replicas)]
    wall = time.perf_counter() - t0

    def agg(getter, keys):
        m, e = {}, {}
        for k in keys:
            m[k], e[k] = mean_and_error([getter(r)[k] for r in reps])
        return m, e

    species = species_names(material.halides)
    f, f_err = agg(lambda r: r.f, species)
    D, D_err = agg(lambda r: r.D_tracer_cm2_per_s, species)
    l, l_err = agg(lambda r: r.l_per_s, [p[0] for p in pair_names(material.halides)])
    v, v_err = agg(lambda r: r.drift_velocity_cm_per_s, (*species, "V"))
    D_v, D_v_err = mean_and_error([r.D_vacancy_cm2_per_s for r in reps])
    if field_V_per_um != 0.0:
        E_V_per_cm = field_V_per_um * 1e4
        charge = {species[0]: -1.0, species[1]: -1.0, "V": 1.0}
        mob = {k: v[k] / (charge[k] * E_V_per_cm) for k in v}
        mob_err = {k: (None if v_err[k] is None else v_err[k] / abs(E_V_per_cm)) for k in v}
    else:
        mob = mob_err = None
    n_sites = lattice.n_sites
    n_atoms = n_sites - n_vacancies
    n_cl = int(round(x_cl * n_atoms))
    fractions = {species[0]: (n_atoms - n_cl) / n_sites, species[1]: n_cl / n_sites, "V": n_vacancies / n_sites}
    return BulkResult(cells=(nx, ny, nz), x_cl=x_cl, n_vacancies=int(n_vacancies), field_V_per_um=field_V_per_um,
                      material=material, n_events_per_replica=int(n_events), n_replicas=n_replicas,
                      w_per_s=dict(zip(species, material.jump_frequency_pair_per_s())), f=f, f_err=f_err, D_tracer_cm2_per_s=D,
                      D_tracer_err=D_err, l_per_s=l, l_err=l_err, D_vacancy_cm2_per_s=D_v, D_vacancy_err=D_v_err,
                      drift_velocity_cm_per_s=v, drift_velocity_err=v_err, mobility_cm2_per_Vs=mob,
                      mobility_err=mob_err, fractions=fractions, wall_s=wall, replicas=reps)


def theory_l(result: BulkResult, f0: float | None = None) -> dict | None:
    """Moleko-Allnatt-Allnatt l_ab (1/s) for the fractions and w of ``result`` (random_alloy
    model only; None when f0 is unknown)."""
    from ionwire.structures import onsager

    f0 = onsager.F0_ANION_PEROVSKITE if f0 is None else f0
    if f0 is None:
        return None
    c = result.fractions
    w = result.w_per_s
    a, b = species_names(result.material.halides)
    ll = onsager.onsager_coefficients(c[a], c[b], c["V"], w[a], w[b], f0)
    return {name: float(val) for (name, _, _), val in zip(pair_names(result.material.halides), ll)}


def measure_f0(cells=(48, 48, 48), n_events: int = 4_000_000, n_replicas: int = 32, seed=1,
               material: Material | None = None) -> tuple[float, float]:
    """Tracer correlation factor of one vacancy in the pure first-halide (all-Br) periodic lattice:
    the replica mean and standard error of its f.  Returns (f0, f0_err).  The defaults reproduce
    structures.onsager.F0_ANION_PEROVSKITE (1.28e8 hops, about a minute on one core)."""
    res = measure_bulk(cells, 0.0, 1, material, 0.0, n_events, n_replicas, seed, warmup_events=0, n_blocks=1)
    first = res.material.halides[0]
    return res.f[first], res.f_err[first]


def result_to_dict(result: BulkResult, theory: dict | None = None) -> dict:
    """JSON-able summary (the ``ionwire bulk --json`` object); keys named from the material's pair."""
    m = result.material
    b = m.barriers
    out = {
        "w": result.w_per_s,
        "l": result.l_per_s,
        "l_err": result.l_err,
        "f": result.f,
        "f_err": result.f_err,
        "D_tracer": result.D_tracer_cm2_per_s,
        "D_tracer_err": result.D_tracer_err,
        "D_vacancy": result.D_vacancy_cm2_per_s,
        "D_vacancy_err": result.D_vacancy_err,
        "drift_velocity": result.drift_velocity_cm_per_s,
        "drift_velocity_err": result.drift_velocity_err,
        "mobility": result.mobility_cm2_per_Vs,
        "mobility_err": result.mobility_err,
        "fractions": result.fractions,
        "events": result.events,
        "wall_s": result.wall_s,
        "events_per_second": result.events / result.wall_s if result.wall_s > 0 else None,
        "units": {"w": "1/s", "l": "1/s", "D_tracer": "cm^2/s", "D_vacancy": "cm^2/s",
                  "drift_velocity": "cm/s", "mobility": "cm^2/(V s)"},
        "parameters": {
            "cells": list(result.cells), fraction_key(m.halides): result.x_cl, "vacancies": result.n_vacancies,
            "preset": m.preset,
            "barriers_eV": [b.first_in_first_eV, b.first_in_second_eV, b.second_in_first_eV, b.second_in_second_eV],
            "nu0_per_s": m.attempt_frequency_per_s, "temperature_K": m.temperature_K,
            "field_V_per_um": result.field_V_per_um, "events_per_replica": result.n_events_per_replica,
            "replicas": result.n_replicas,
        },
    }
    if theory is not None:
        out["l_theory_MAA"] = theory
    return _finite(out)


def _finite(obj):
    """NaN/inf -> None (undefined values, e.g. f of an absent species), so the output is JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
