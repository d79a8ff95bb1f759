"""Bulk kMC campaign that measures the Onsager table l_ab(x_Cl) (``ionwire parameterize``).

Config (TOML; ``runs/onsager.toml``)::

    run = "ionwire.coupling.parameterize:OnsagerTableRun"   # campaign run type (ionwire campaign)
    [material]            # structures.parameters.Material: a, nu0, T, barriers of the end members
    [bulk]                # BulkSettings: cells, vacancy_fraction, events_per_replica, seed, f0
    [sweep]               # campaign sweep grammar (coupling.runtypes.sweep_points)
    preset = ["random_alloy", "host"]
    x_cl = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    replicas = 8          # independent replicas per (preset, x_cl), >= 2

One run = one replica at one (preset, x_Cl): a periodic bulk cell with random Br/Cl occupancy
(exactly round(x_Cl * n_halides) Cl) and ``vacancy_fraction`` vacancies, run for
``events_per_replica`` hops by the bulk engine (kmc/), which returns l_ab of that replica.  The
barriers of preset p are ``Barriers.preset(p, E_Br, E_Cl)`` with E_Br, E_Cl the pure-end-member
barriers of [material] (Br in Br-rich, Cl in Cl-rich), so both presets share their end members.
Seeds are derived from (seed, preset, x_Cl, replica) by numpy's SeedSequence, so every run is
reproducible on its own and independent of the others.  ``reduce`` forms the table of each
preset (mean and standard error over replicas), writes ``onsager_table.h5`` (coupling.io layout,
with provenance: every seed, events, wall time, code/library versions, the config) and
``onsager_table.png`` (kMC against the Moleko-Allnatt-Allnatt theory), and returns the summary.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ionwire.structures.parameters import (read_toml, PRESETS, Barriers, Material, ParameterError, from_mapping, require,
                                  to_mapping)

from . import runtypes
from ionwire.structures.onsager_table import OnsagerTable, plot_tables


@dataclass(frozen=True)
class BulkSettings:
    """How each bulk replica is run.

    cells: supercell nx, ny, nz (periodic); vacancy_fraction: vacancies per anion site (the
    number is max(1, round(fraction * 3 nx ny nz))); events_per_replica: hops per replica;
    warmup_events: hops discarded before measuring (relaxes the random initial configuration);
    blocks: consecutive blocks per replica whose collective-displacement increments estimate l_ab
    (kmc.observables.run_replica): the relative error of l_ab scales as sqrt(2/(3 blocks R)), so
    many blocks per replica are what makes the table precise; each block must stay long against
    the correlation of a vacancy's hops (checked: >= 100 hops per vacancy per block);
    seed: root seed of the campaign; f0: tracer correlation factor for the theory comparison
    (None: structures.onsager.F0_ANION_PEROVSKITE, measured by the kMC engine).
    """

    cells: tuple[int, int, int] = (10, 10, 10)
    vacancy_fraction: float = 0.002
    events_per_replica: int = 2_000_000
    warmup_events: int = 0
    blocks: int = 200
    seed: int = 2026
    f0: float | None = None

    def __post_init__(self):
        require(all(c >= 2 for c in self.cells), f"cells must all be >= 2, got {self.cells!r}")
        require(math.isfinite(self.vacancy_fraction) and 0 < self.vacancy_fraction < 0.5,
                f"vacancy_fraction must be in (0, 0.5), got {self.vacancy_fraction!r}")
        require(self.events_per_replica >= 1000, f"events_per_replica must be >= 1000, got {self.events_per_replica!r}")
        require(self.warmup_events >= 0, f"warmup_events must be >= 0, got {self.warmup_events!r}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed!r}")
        require(self.blocks >= 1, f"blocks must be >= 1, got {self.blocks!r}")
        hops = self.events_per_replica / (self.blocks * self.vacancies)
        require(hops >= 100, f"blocks: {self.blocks} blocks leave {hops:.0f} hops per vacancy per block "
                             "(need >= 100 so that blocks are uncorrelated)")
        if self.f0 is not None:
            require(0 < self.f0 < 1, f"f0 must be in (0, 1), got {self.f0!r}")

    @property
    def n_sites(self) -> int:
        nx, ny, nz = self.cells
        return 3 * nx * ny * nz

    @property
    def vacancies(self) -> int:
        return max(1, int(round(self.vacancy_fraction * self.n_sites)))


@dataclass(frozen=True)
class OnsagerCampaignConfig:
    """[material], [bulk] and the validated sweep ([sweep] preset, x_cl, replicas)."""

    material: Material = field(default_factory=Material)
    bulk: BulkSettings = field(default_factory=BulkSettings)
    sweep: tuple = ()  # ((key, value-or-list), ...): hashable copy of the [sweep] table

    def sweep_mapping(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.sweep}


SWEEP_AXES = {
    "preset": runtypes.Axis(str, choices=PRESETS),
    "x_cl": runtypes.Axis(float, 0.0, 1.0),
}
MIN_COMPOSITIONS = 2


def load_config(mapping: Mapping[str, Any]) -> OnsagerCampaignConfig:
    """Validate a parsed TOML mapping (``run`` key allowed and ignored)."""
    data = dict(mapping)
    data.pop("run", None)
    sweep = data.pop("sweep", None)
    cfg = from_mapping(OnsagerCampaignConfig, data)
    if sweep is None:
        raise ParameterError("[sweep]: missing (give preset = [...], x_cl = [...], replicas = R)")
    points = runtypes.sweep_points(sweep, SWEEP_AXES, required=("preset", "x_cl"))
    replicas = sweep.get("replicas", 1)
    require(replicas >= 2, f"sweep.replicas: need >= 2 independent replicas for error bars, got {replicas!r}")
    require(sweep.get("combine", "product") == "product", "sweep.combine: must be 'product' for a table")
    n_x = len({p["x_cl"] for p in points})
    require(n_x >= MIN_COMPOSITIONS, f"sweep.x_cl: need >= {MIN_COMPOSITIONS} compositions, got {n_x}")
    frozen = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sweep.items())
    return dataclasses.replace(cfg, sweep=frozen)


def load_file(path) -> tuple[OnsagerCampaignConfig, str]:
    """(config, TOML text) of a config file; TOML and parameter errors name the file."""
    mapping, text = read_toml(path)
    return load_config(mapping), text


def preset_material(material: Material, preset: str) -> Material:
    """``material`` with the barriers of ``preset`` built from its end-member barriers."""
    b = material.barriers
    return dataclasses.replace(material, preset=preset,
                               barriers=Barriers.preset(preset, b.Br_in_Br_eV, b.Cl_in_Cl_eV))


def point_seed(root: int, preset: str, x_cl: float, replica: int) -> int:
    """Independent 63-bit seed of one run, from the campaign seed and the run's point."""
    ss = np.random.SeedSequence([root, PRESETS.index(preset), int(round(x_cl * 1_000_000)), replica])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def resolve_f0(settings: BulkSettings) -> float:
    if settings.f0 is not None:
        return settings.f0
    from ionwire.structures.onsager import F0_ANION_PEROVSKITE

    if F0_ANION_PEROVSKITE is None:
        raise ParameterError("bulk.f0: not given and structures.onsager.F0_ANION_PEROVSKITE is not measured yet")
    return float(F0_ANION_PEROVSKITE)


# --------------------------------------------------------------------------------------------
# one replica (the bulk engine)
# --------------------------------------------------------------------------------------------
def measure_replica(material: Material, settings: BulkSettings, x_cl: float, seed: int) -> dict:
    """One bulk replica: {"l_per_s": [BrBr, BrCl, ClCl] (1/s), "l_err_blocks": None, "x_cl":
    actual halide composition, "x_v", "events", "wall_s", "seed", "f": {Br, Cl}} from
    kmc.observables.run_replica (zero field; l_ab from the collective displacements of 20 blocks)."""
    from ionwire.kmc.observables import run_replica
    from ionwire.structures.lattice import AnionLattice

    nx, ny, nz = settings.cells
    lattice = AnionLattice(nx, ny, nz, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    n_vac = settings.vacancies
    t0 = time.perf_counter()
    rep = run_replica(lattice, float(x_cl), n_vac, material, 0.0, int(settings.events_per_replica),
                      np.random.SeedSequence(seed), int(settings.warmup_events), int(settings.blocks))
    wall = time.perf_counter() - t0
    n_atoms = lattice.n_sites - n_vac
    n_cl = int(round(x_cl * n_atoms))  # kmc.state.BulkState.random places exactly this many Cl
    return {"l_per_s": [float(rep.l_per_s[k]) for k in ("BrBr", "BrCl", "ClCl")],
            "x_cl": n_cl / n_atoms, "x_v": n_vac / lattice.n_sites, "events": int(rep.n_events),
            "wall_s": wall, "seed": int(seed), "f": {k: float(v) for k, v in rep.f.items()},
            "time_s": float(rep.time_s)}


# --------------------------------------------------------------------------------------------
# campaign run type
# --------------------------------------------------------------------------------------------
class OnsagerTableRun:
    """Run type ``coupling.parameterize:OnsagerTableRun`` (see coupling.runtypes)."""

    name = "onsager_table"

    @staticmethod
    def load(mapping):
        return load_config(mapping)

    @staticmethod
    def expand(config: OnsagerCampaignConfig) -> list[dict]:
        return runtypes.sweep_points(config.sweep_mapping(), SWEEP_AXES, required=("preset", "x_cl"))

    @staticmethod
    def fingerprint(config: OnsagerCampaignConfig) -> dict:
        m = to_mapping(config)
        m.pop("sweep", None)
        return m

    @staticmethod
    def run(config: OnsagerCampaignConfig, point: Mapping[str, Any], outdir) -> dict:
        preset = point["preset"]
        x_cl = float(point["x_cl"])
        replica = int(point.get("replica", 0))
        seed = point_seed(config.bulk.seed, preset, x_cl, replica)
        mat = preset_material(config.material, preset)
        res = measure_replica(mat, config.bulk, x_cl, seed)
        res.update({"preset": preset, "x_cl_nominal": x_cl, "replica": replica})
        return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in res.items()}

    @staticmethod
    def reduce(config: OnsagerCampaignConfig, points, results, outdir) -> dict:
        tables = build_tables(config, points, results)
        outdir = Path(outdir)
        from ionwire.structures.onsager_table import write_onsager_tables
        from ionwire.structures.provenance import provenance

        write_onsager_tables(outdir / "onsager_table.h5", tables, provenance(config_toml=_config_text(config)))
        plot_tables(tables, outdir / "onsager_table.png")
        return {p: t.summary() for p, t in tables.items()}


def _config_text(config: OnsagerCampaignConfig) -> str:
    import json

    return json.dumps({**to_mapping(config), "sweep": config.sweep_mapping()}, sort_keys=True)


def build_tables(config: OnsagerCampaignConfig, points, results) -> dict[str, OnsagerTable]:
    """Group per-replica results by (preset, x_Cl) into one OnsagerTable per preset.

    Compositions with fewer than 2 finished replicas are left out (a partial campaign gives a
    partial table)."""
    f0 = resolve_f0(config.bulk)
    groups: dict[str, dict[float, list[dict]]] = {}
    for p, r in zip(points, results):
        if r is None:
            continue
        groups.setdefault(p["preset"], {}).setdefault(float(p["x_cl"]), []).append(r)
    tables = {}
    for preset, by_x in groups.items():
        xs = sorted(x for x, rs in by_x.items() if len(rs) >= 2)
        if len(xs) < 2:
            continue
        R = min(len(by_x[x]) for x in xs)
        reps = np.array([[by_x[x][i]["l_per_s"] for i in range(R)] for x in xs], dtype=float)
        seeds = np.array([[by_x[x][i]["seed"] for i in range(R)] for x in xs], dtype=np.int64)
        wall = np.array([sum(r["wall_s"] for r in by_x[x][:R]) for x in xs])
        events = np.array([by_x[x][0]["events"] for x in xs], dtype=np.int64)
        # the measured composition of a finite cell differs from the nominal one by < 1/n_halides
        x_actual = np.array([np.mean([r.get("x_cl", x) for r in by_x[x][:R]]) for x in xs])
        x_v = float(np.mean([r.get("x_v", config.bulk.vacancies / config.bulk.n_sites) for x in xs for r in by_x[x][:R]]))
        mat = preset_material(config.material, preset)
        w = mat.jump_frequencies_per_s()
        tables[preset] = OnsagerTable.from_replicas(
            preset, x_actual, reps, x_v=x_v, w_per_s=(w["Br"], w["Cl"]), f0=f0,
            material=to_mapping(mat), seeds=seeds, events_per_replica=events, wall_s=wall)
    if not tables:
        raise ParameterError("no composition has >= 2 finished replicas: no table can be formed")
    return tables


def run_serial(config: OnsagerCampaignConfig, out_path, config_toml: str = "", progress: bool = True) -> dict:
    """Run the whole campaign in this process and write the table file ``out_path`` (+ .png).

    After every finished composition the table so far is written (complete = false), so a killed
    campaign keeps what it measured.  Returns {preset: summary}.
    """
    from ionwire.structures.onsager_table import write_onsager_tables
    from ionwire.structures.provenance import provenance

    out_path = Path(out_path)
    points = OnsagerTableRun.expand(config)
    results: list[dict | None] = [None] * len(points)
    prov = provenance(config_toml=config_toml)
    try:
        from tqdm import tqdm

        it = tqdm(range(len(points)), desc="parameterize", disable=not progress, leave=False)
    except ImportError:  # pragma: no cover
        it = range(len(points))
    done_keys: set = set()
    for i in it:
        results[i] = OnsagerTableRun.run(config, points[i], None)
        key = (points[i]["preset"], points[i]["x_cl"])
        last = i + 1 == len(points) or (points[i + 1]["preset"], points[i + 1]["x_cl"]) != key
        if last and i + 1 < len(points):
            done_keys.add(key)
            try:
                partial = build_tables(config, points[: i + 1], results[: i + 1])
                write_onsager_tables(out_path, partial, prov, complete=False)
            except ParameterError:
                pass  # not enough compositions yet for a table
    tables = build_tables(config, points, results)
    write_onsager_tables(out_path, tables, prov, complete=True)
    plot_tables(tables, out_path.with_suffix(".png"))
    return {p: t.summary() for p, t in tables.items()}
