"""Bulk kMC campaign that measures the Onsager table l_ab(x) of the halide pair (x: the second
halide's fraction; l_BrBr, l_BrCl, l_ClCl for Br, Cl) (``ionwire parameterize``).

Config (TOML; ``runs/onsager.toml``): the bulk campaign config of the ``bulk`` run type
(:class:`ionwire.kmc.runtypes.BulkConfig`)::

    run = "onsager"       # campaign run type (ionwire campaign)
    [material]            # structures.parameters.Material: a, nu0, T, barriers of the end members
    [bulk]                # kmc.observables.BulkSettings: cells, vacancy_fraction, events_per_replica,
                          # warmup_events, blocks, seed (the composition comes from the sweep,
                          # the field is 0)
    f0 = 0.69             # optional: f0 of the theory the table is compared with
    [sweep]               # campaign sweep grammar (structures.runtype.sweep_points)
    preset = ["random_alloy", "host"]
    composition = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]   # the second halide's fraction
    replicas = 8          # independent replicas per (preset, composition), >= 2

One run = one replica at one (preset, x): a periodic bulk cell with random occupancy of the pair
(exactly round(x * n_halides) atoms of the second halide) and ``vacancy_fraction`` vacancies, run for
``events_per_replica`` hops by the bulk engine (kmc.observables.measure_replica), which returns
l_ab of that replica.  The barriers of preset p are ``Barriers.preset(p, E_Br, E_Cl)`` with E_Br,
E_Cl the pure-end-member barriers of [material] (Br in Br-rich, Cl in Cl-rich), so both presets
share their end members.  Seeds are derived from (seed, preset, x, replica)
(:func:`ionwire.structures.seeds.derive_seed`), so every run is reproducible on its own and
independent of the others.  ``reduce`` forms the table of each preset (mean and standard error
over replicas), writes ``onsager_table.h5`` (coupling.io layout, with provenance: every seed,
events, wall time, code/library versions, the config) and ``onsager_table.png`` (kMC against the
Moleko-Allnatt-Allnatt theory), and returns the summary.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from ionwire.kmc.observables import fraction_key, measure_replica, pair_names
from ionwire.kmc.runtypes import BulkConfig, load_bulk_config
from ionwire.structures.onsager_table import OnsagerTable, plot_tables
from ionwire.structures.parameters import PRESETS, Barriers, Material, ParameterError, read_toml, require, to_mapping
from ionwire.structures.runtype import Axis, sweep_points
from ionwire.structures.seeds import derive_seed

SWEEP_AXES = {
    "preset": Axis(str, choices=PRESETS),
    "composition": Axis(float, 0.0, 1.0),  # the second halide's fraction of the halide sites
}
MIN_COMPOSITIONS = 2
_REQUIRED_AXES = ("preset", "composition")


def _points(config: BulkConfig) -> list[dict]:
    return sweep_points(config.sweep, SWEEP_AXES, required=_REQUIRED_AXES, renamed={"x_cl": "composition"})


def load_config(mapping: Mapping[str, Any]) -> BulkConfig:
    """Validate a parsed TOML mapping (``run`` key allowed and ignored)."""
    cfg = load_bulk_config(mapping)
    bulk = mapping.get("bulk") if isinstance(mapping.get("bulk"), Mapping) else {}
    require("composition" not in bulk,
            "bulk.composition: not used by an onsager config (the compositions are sweep.composition)")
    require(cfg.bulk.field_V_per_um == 0.0, "bulk.field_V_per_um: must be 0 (l_ab is a zero-field coefficient)")
    sweep = cfg.sweep
    if sweep is None:
        raise ParameterError("[sweep]: missing (give preset = [...], composition = [...], replicas = R)")
    points = _points(cfg)
    replicas = sweep.get("replicas", 1)
    require(replicas >= 2, f"sweep.replicas: need >= 2 independent replicas for error bars, got {replicas!r}")
    require(sweep.get("combine", "product") == "product", "sweep.combine: must be 'product' for a table")
    n_x = len({p["composition"] for p in points})
    require(n_x >= MIN_COMPOSITIONS, f"sweep.composition: need >= {MIN_COMPOSITIONS} compositions, got {n_x}")
    return cfg


def load_file(path) -> tuple[BulkConfig, str]:
    """(config, TOML text) of a config file; TOML and parameter errors name the file."""
    mapping, text = read_toml(path)
    return load_config(mapping), text


def preset_material(material: Material, preset: str) -> Material:
    """``material`` with the barriers of ``preset`` built from its end-member barriers."""
    b = material.barriers
    return dataclasses.replace(material, preset=preset,
                               barriers=Barriers.preset(preset, b.first_in_first_eV, b.second_in_second_eV))


def run_seed(root: int, preset: str, x_cl: float, replica: int) -> int:
    """Independent 63-bit seed of one run, from the campaign seed and the run's point."""
    return derive_seed(root, PRESETS.index(preset), int(round(x_cl * 1_000_000)), replica)


# --------------------------------------------------------------------------------------------
# campaign run type
# --------------------------------------------------------------------------------------------
class OnsagerTableRun:
    """Run type ``onsager`` (see structures.runtype)."""

    name = "onsager_table"

    @staticmethod
    def load(mapping):
        return load_config(mapping)

    @staticmethod
    def expand(config: BulkConfig) -> list[dict]:
        return _points(config)

    @staticmethod
    def fingerprint(config: BulkConfig) -> dict:
        m = to_mapping(config)
        m.pop("sweep", None)
        return m

    @staticmethod
    def run(config: BulkConfig, point: Mapping[str, Any], outdir) -> dict:
        preset = point["preset"]
        x_cl = float(point["composition"])
        replica = int(point.get("replica", 0))
        seed = run_seed(config.bulk.seed, preset, x_cl, replica)
        mat = preset_material(config.material, preset)
        res = measure_replica(mat, dataclasses.replace(config.bulk, x_cl=x_cl), seed)
        res.update({"preset": preset, "replica": replica})
        return res

    @staticmethod
    def reduce(config: BulkConfig, points, results, outdir) -> dict:
        tables = build_tables(config, points, results)
        outdir = Path(outdir)
        from ionwire.structures.onsager_table import write_onsager_tables
        from ionwire.structures.provenance import provenance

        write_onsager_tables(outdir / "onsager_table.h5", tables, provenance(config_toml=_config_text(config)))
        plot_tables(tables, outdir / "onsager_table.png")
        return {p: t.summary() for p, t in tables.items()}


def _config_text(config: BulkConfig) -> str:
    return json.dumps(to_mapping(config), sort_keys=True)


def build_tables(config: BulkConfig, points, results) -> dict[str, OnsagerTable]:
    """Group per-replica results by (preset, composition) into one OnsagerTable per preset.

    Compositions with fewer than 2 finished replicas are left out (a partial campaign gives a
    partial table)."""
    f0 = config.resolved_f0()
    groups: dict[str, dict[float, list[dict]]] = {}
    for p, r in zip(points, results):
        if r is None:
            continue
        groups.setdefault(p["preset"], {}).setdefault(float(p["composition"]), []).append(r)
    pairs = pair_names(config.material.halides)
    actual = fraction_key(config.material.halides) + "_actual"
    tables = {}
    for preset, by_x in groups.items():
        xs = sorted(x for x, rs in by_x.items() if len(rs) >= 2)
        if len(xs) < 2:
            continue
        R = min(len(by_x[x]) for x in xs)
        reps = np.array([[[by_x[x][i]["l_per_s"][k] for k, _, _ in pairs] for i in range(R)] for x in xs],
                        dtype=float)
        seeds = np.array([[by_x[x][i]["seed"] for i in range(R)] for x in xs], dtype=np.int64)
        wall = np.array([sum(r["wall_s"] for r in by_x[x][:R]) for x in xs])
        events = np.array([by_x[x][0]["events"] for x in xs], dtype=np.int64)
        # the measured composition of a finite cell differs from the nominal one by < 1/n_halides
        x_actual = np.array([np.mean([r[actual] for r in by_x[x][:R]]) for x in xs])
        x_v = float(np.mean([r["x_v"] for x in xs for r in by_x[x][:R]]))
        mat = preset_material(config.material, preset)
        tables[preset] = OnsagerTable.from_replicas(
            preset, x_actual, reps, x_v=x_v, w_per_s=mat.jump_frequency_pair_per_s(), f0=f0,
            material=to_mapping(mat), seeds=seeds, events_per_replica=events, wall_s=wall, halides=mat.halides)
    if not tables:
        raise ParameterError("no composition has >= 2 finished replicas: no table can be formed")
    return tables


def run_serial(config: BulkConfig, out_path, config_toml: str = "", progress: bool = True) -> dict:
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
    it = tqdm(range(len(points)), desc="parameterize", disable=not progress, leave=False)
    for i in it:
        results[i] = OnsagerTableRun.run(config, points[i], None)
        key = (points[i]["preset"], points[i]["composition"])
        last = i + 1 == len(points) or (points[i + 1]["preset"], points[i + 1]["composition"]) != key
        if last and i + 1 < len(points):
            try:
                partial = build_tables(config, points[: i + 1], results[: i + 1])
                write_onsager_tables(out_path, partial, prov, complete=False)
            except ParameterError:
                pass  # not enough compositions yet for a table
    tables = build_tables(config, points, results)
    write_onsager_tables(out_path, tables, prov, complete=True)
    plot_tables(tables, out_path.with_suffix(".png"))
    return {p: t.summary() for p, t in tables.items()}
