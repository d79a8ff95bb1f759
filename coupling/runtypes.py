"""Run types: what ``ionwire campaign`` fans out (interface 6 of the team contract).

A *run type* is any object (usually a class with static methods) with these attributes::

    name: str                                   a short name (messages, progress bar)
    load(mapping) -> config                     validate the TOML mapping (without its top-level
                                                ``run`` key) into a frozen config; bad input raises
                                                ParameterError naming the key
    expand(config) -> list[dict]                one JSON-able point per run (e.g.
                                                {"field_V_per_um": 2.0}); order = presentation order
    run(config, point, outdir) -> dict          one run; a JSON-able result; may write files into
                                                ``outdir`` (a fresh folder that becomes
                                                OUT/runs/<id>/ once ``run`` returns)
    reduce(config, points, results, outdir)     the campaign summary (JSON-able dict) from all
                                                results in expand order; may write figures/data
                                                into ``outdir`` (the campaign folder); an
                                                optional "headline" string in it is printed
  optional:
    prepare(config) -> dict                     once per campaign, before any run (e.g. the
                                                continuum calibration fit); JSON-able; cached in
                                                OUT/prepare.json and reused on ``--resume``; a
                                                ``prepare(config, mapper)`` gets the ``map`` of
                                                the campaign's pool for its own runs
    bind(config, prepared) -> config            required with ``prepare``: the config the runs and
                                                ``reduce`` see (e.g. with the fitted rates filled in)
    fingerprint(config) -> mapping              the parameters that identify a run besides its
                                                point (default: ``to_mapping(config)`` without its
                                                ``sweep``); part of every run id

Runs execute in other processes (a local process pool or dask workers), so the run type and the
config must pickle (module-level classes and frozen dataclasses do) and ``run`` must not rely on
state set up in the parent process.

A run type is named in a config either by its registered name (``run = "continuum"``; see
:data:`REGISTRY`) or as ``"package.module:attribute"`` for run types that live outside ionwire.

:func:`sweep_points` is the shared sweep grammar; a run type's ``expand`` usually just calls it::

    [sweep]
    field_V_per_um = [-4.0, -3.5, 4.0]  # every list is an axis; a scalar is a one-value axis
    x_cl = [0.2, 0.5]
    combine = "product"                 # "product" (default: all combinations) or "zip"
    replicas = 4                        # optional: every point repeated, with "replica" = 0..3
"""
from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ionwire.structures.parameters import ParameterError, to_mapping

# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
#: registered run types: name -> "module:attribute" (imported on first use, so a run type whose
#: library is missing from an installation only fails when a config asks for it)
REGISTRY: dict[str, str] = {
    # the rectification experiment with the continuum model (runs/fig1e.toml; CONT's library)
    "continuum": "ionwire.coupling.runtypes:ContinuumCampaignRun",
    # independent bulk kMC replicas (kmc.observables; throughput benchmark, transport sweeps)
    "bulk": "ionwire.coupling.runtypes:BulkRun",
    # device kMC trajectories (kmc.device; runs/device_small.toml plus a [sweep])
    "device": "ionwire.coupling.runtypes:DeviceRun",
    # atomistic (device-kMC ensemble) against continuum on one parameter set (runs/validate.toml)
    "compare": "ionwire.coupling.runtypes:CompareRun",
    # l_ab(x_Cl) table from bulk kMC replicas (runs/onsager.toml; the coupling engineer's)
    "onsager": "ionwire.coupling.parameterize:OnsagerTableRun",
}
_LOADED: dict[str, Any] = {}

_REQUIRED = ("load", "expand", "run", "reduce")


def register(name: str, target: str | Any) -> None:
    """Register a run type under ``name``: an object or a ``"module:attribute"`` string."""
    if isinstance(target, str):
        REGISTRY[name] = target
        _LOADED.pop(name, None)
    else:
        check_run_type(target, name)
        REGISTRY[name] = f"{target.__module__}:{getattr(target, '__qualname__', name)}"
        _LOADED[name] = target


def check_run_type(obj: Any, name: str) -> Any:
    """Raise ParameterError unless ``obj`` has the run-type attributes (see module docstring)."""
    missing = [a for a in _REQUIRED if not callable(getattr(obj, a, None))]
    if missing:
        raise ParameterError(f"run = {name!r}: not a run type (missing {', '.join(missing)})")
    if callable(getattr(obj, "prepare", None)) and not callable(getattr(obj, "bind", None)):
        raise ParameterError(f"run = {name!r}: a run type with prepare() must also define bind()")
    return obj


def _import_target(spec: str, name: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ParameterError(f"run = {name!r}: cannot import {module_name} ({exc})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ParameterError(f"run = {name!r}: {module_name} has no attribute {attr}")
        obj = getattr(obj, part)
    return obj


def get(name: str) -> Any:
    """The run type called ``name`` (a registered name or ``"module:attribute"``)."""
    if not isinstance(name, str) or not name:
        raise ParameterError(f"run: expected the name of a run type, got {name!r}")
    if name in _LOADED:
        return _LOADED[name]
    if name in REGISTRY:
        obj = check_run_type(_import_target(REGISTRY[name], name), name)
    elif ":" in name:
        obj = check_run_type(_import_target(name, name), name)
    else:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ParameterError(f"run: unknown run type {name!r} (available: {known}; "
                             "or 'package.module:attribute')")
    _LOADED[name] = obj
    return obj


def available() -> list[str]:
    """Names of the registered run types whose library imports in this installation."""
    out = []
    for name in sorted(REGISTRY):
        try:
            get(name)
        except ParameterError:
            continue
        out.append(name)
    return out


def fingerprint(run_type: Any, config: Any) -> Any:
    """The JSON-able parameters that identify the runs of ``config`` besides their points."""
    fn = getattr(run_type, "fingerprint", None)
    if callable(fn):
        return fn(config)
    if dataclasses.is_dataclass(config):
        data = to_mapping(config)
        data.pop("sweep", None)
        return data
    if isinstance(config, Mapping):
        return {k: v for k, v in config.items() if k != "sweep"}
    raise TypeError(f"run type {getattr(run_type, 'name', run_type)!r}: define fingerprint(config)")


# --------------------------------------------------------------------------------------------
# the sweep grammar
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One sweepable parameter: its type, allowed range (inclusive) or choices, and unit."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    unit: str = ""
    choices: tuple | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]{unit}"
        if self.low is not None:
            return f">= {self.low:g}{unit}"
        if self.high is not None:
            return f"<= {self.high:g}{unit}"
        return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}[self.kind]

    def check(self, value: Any, where: str) -> Any:
        """The validated value (ints become floats on float axes) or ParameterError."""
        bad = ParameterError(f"{where}: must be {self.describe()}, got {value!r}")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad
            value = float(value)
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif not isinstance(value, self.kind):
            raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and value < self.low:
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value


_SWEEP_OPTIONS = ("combine", "replicas")
MAX_REPLICAS = 100_000


def sweep_points(sweep: Mapping[str, Any] | None, axes: Mapping[str, Axis],
                 where: str = "sweep", required: Sequence[str] = ()) -> list[dict]:
    """Expand a ``[sweep]`` table into point dicts (see the module docstring for the grammar).

    ``axes`` declares which keys may be swept and their ranges; unknown keys, empty or duplicate
    lists, values out of range and zip axes of unequal length raise ParameterError naming the key.
    An empty/missing sweep gives one point ``{}`` (a single run).
    """
    if sweep is None:
        sweep = {}
    if not isinstance(sweep, Mapping):
        raise ParameterError(f"{where}: expected a table, got {sweep!r}")
    allowed = list(axes) + list(_SWEEP_OPTIONS)
    for key in sweep:
        if key not in allowed:
            raise ParameterError(f"unknown key {where}.{key} (allowed in [{where}]: {', '.join(allowed)})")
    for key in required:
        if key not in sweep:
            raise ParameterError(f"{where}.{key}: missing (a list of values, {axes[key].describe()})")
    combine = sweep.get("combine", "product")
    if combine not in ("product", "zip"):
        raise ParameterError(f"{where}.combine: must be 'product' or 'zip', got {combine!r}")
    replicas = sweep.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise ParameterError(f"{where}.replicas: must be an integer in [1, {MAX_REPLICAS}], got {replicas!r}")

    names, values = [], []
    for key, raw in sweep.items():
        if key in _SWEEP_OPTIONS:
            continue
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise ParameterError(f"{where}.{key}: empty list (give at least one value, {axes[key].describe()})")
        checked = [axes[key].check(v, f"{where}.{key}[{i}]" if isinstance(raw, list) else f"{where}.{key}")
                   for i, v in enumerate(items)]
        seen = set()
        for i, v in enumerate(checked):
            if v in seen:
                raise ParameterError(f"{where}.{key}[{i}]: duplicate value {v!r} (runs would repeat)")
            seen.add(v)
        names.append(key)
        values.append(checked)

    if combine == "zip" and values:
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            detail = ", ".join(f"{n}: {len(v)}" for n, v in zip(names, values))
            raise ParameterError(f"{where}: combine = 'zip' needs lists of equal length ({detail})")
        combos = list(zip(*values))
    else:
        combos = list(itertools.product(*values))
    points = [dict(zip(names, combo)) for combo in combos]
    if combine == "zip" and len({tuple(p.items()) for p in points}) != len(points):
        raise ParameterError(f"{where}: combine = 'zip' gives duplicate points")
    if "replicas" in sweep:
        points = [{**p, "replica": r} for p in points for r in range(replicas)]
    return points


# --------------------------------------------------------------------------------------------
# progress bars for long single runs
# --------------------------------------------------------------------------------------------
#: set in campaign worker processes: per-run bars would garble the campaign's own bar
WORKER_ENV = "IONWIRE_CAMPAIGN_WORKER"


def progress(iterable=None, total: float | None = None, desc: str | None = None, unit: str = "it",
             **kwargs):
    """A tqdm progress bar on stderr for a long single run; silent inside campaign workers and
    when stderr is not a terminal (tqdm ``disable=None``)."""
    from tqdm.auto import tqdm

    disable = True if os.environ.get(WORKER_ENV) else kwargs.pop("disable", None)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True, **kwargs)


def seed_for(base_seed: int, run_point: Mapping[str, Any]) -> int:
    """A 63-bit seed derived from a base seed and a point (for example its replica number), so
    replicas are independent and a resumed run draws the same stream."""
    import hashlib
    import json

    blob = json.dumps({"seed": base_seed, "point": dict(run_point)}, sort_keys=True).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1



# --------------------------------------------------------------------------------------------
# adapters: run types over the other packages' library APIs
# --------------------------------------------------------------------------------------------
MAX_FIELD_V_PER_UM = 5000.0


@dataclass(frozen=True)
class BulkCampaignConfig:
    """A bulk kMC campaign (``run = "bulk"``): every run is ONE independent replica of a periodic
    random Br/Cl alloy (kmc.observables.run_replica); ``reduce`` forms replica means and standard
    errors per point.  Sweepable: x_cl, field_V_per_um, temperature_K, vacancies, events.

    cells: periodic supercell (unit cells); x_cl: Cl fraction of the halides; vacancies: count
    (None: 1 % of the anion sites); field_V_per_um: uniform field along z; events: hops per
    replica after ``warmup_events`` (None: events // 10); blocks: blocks per replica for l_ab;
    seed: root seed (each run's seed is derived from it and the run's point, so every replica is
    independent and reproducible on its own); [material]: structures.parameters.Material.
    """

    material: Any = None
    cells: tuple[int, int, int] = (16, 16, 16)
    x_cl: float = 0.5
    vacancies: int | None = None
    field_V_per_um: float = 0.0
    events: int = 1_000_000
    warmup_events: int | None = None
    blocks: int = 20
    seed: int = 0
    sweep: Any = None

    def __post_init__(self):
        from ionwire.structures.parameters import Material, from_mapping, require

        if not isinstance(self.material, Material):
            object.__setattr__(self, "material", from_mapping(Material, self.material, "material"))
        require(all(2 <= c <= 4096 for c in self.cells), f"cells: each must be in [2, 4096], got {list(self.cells)}")
        for name, axis in BULK_AXES.items():
            value = getattr(self, name) if name != "temperature_K" else self.material.temperature_K
            if value is not None:
                axis.check(value, name if name != "temperature_K" else "material.temperature_K")
        n_sites = 3 * self.cells[0] * self.cells[1] * self.cells[2]
        if self.vacancies is not None:
            require(self.vacancies < n_sites, f"vacancies: must be < the {n_sites} anion sites, got {self.vacancies}")
        if self.warmup_events is not None:
            require(0 <= self.warmup_events <= 10**12, f"warmup_events: must be in [0, 1e12], got {self.warmup_events}")
        require(1 <= self.blocks <= 10_000, f"blocks: must be in [1, 10000], got {self.blocks}")
        require(self.events >= self.blocks, f"events: must be >= blocks ({self.blocks}), got {self.events}")
        require(0 <= self.seed < 2**63, f"seed: must be in [0, 2^63), got {self.seed}")


BULK_AXES = {
    "x_cl": Axis(float, 0.0, 1.0),
    "field_V_per_um": Axis(float, -MAX_FIELD_V_PER_UM, MAX_FIELD_V_PER_UM, "V/um"),
    "temperature_K": Axis(float, 1.0, 5000.0, "K"),
    "vacancies": Axis(int, 1, 10**9),
    "events": Axis(int, 1, 10**13),
}
_BULK_OBSERVABLES = ("l_per_s", "f", "D_tracer_cm2_per_s", "drift_velocity_cm_per_s")


class BulkRun:
    """Run type ``bulk``: independent bulk kMC replicas over a sweep (kMC throughput campaigns,
    transport coefficients against composition, field or temperature)."""

    name = "bulk"

    @staticmethod
    def load(mapping):
        from ionwire.structures.parameters import from_mapping

        return from_mapping(BulkCampaignConfig, mapping)

    @staticmethod
    def expand(config):
        return sweep_points(config.sweep, BULK_AXES)

    @staticmethod
    def fingerprint(config):
        d = to_mapping(config)
        d["material"] = to_mapping(config.material)
        d.pop("sweep", None)
        return d

    @staticmethod
    def _settings(config, point):
        material = config.material
        if "temperature_K" in point:
            material = dataclasses.replace(material, temperature_K=float(point["temperature_K"]))
        nx, ny, nz = config.cells
        vac = point.get("vacancies", config.vacancies)
        if vac is None:
            vac = max(1, round(0.01 * 3 * nx * ny * nz))
        events = int(point.get("events", config.events))
        warm = config.warmup_events if config.warmup_events is not None else events // 10
        return material, int(vac), events, int(warm)

    @staticmethod
    def run(config, point, outdir):
        import time

        from ionwire.kmc.observables import run_replica
        from ionwire.structures.lattice import AnionLattice

        material, vac, events, warm = BulkRun._settings(config, point)
        lattice = AnionLattice(*config.cells, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
        x_cl = float(point.get("x_cl", config.x_cl))
        field_ = float(point.get("field_V_per_um", config.field_V_per_um))
        seed = seed_for(config.seed, point)
        t0 = time.perf_counter()
        rep = run_replica(lattice, x_cl, vac, material, field_, events, seed, warm, config.blocks)
        wall = time.perf_counter() - t0
        return {"x_cl": x_cl, "field_V_per_um": field_, "temperature_K": material.temperature_K,
                "vacancies": vac, "events": events, "warmup_events": warm, "seed": seed,
                "l_per_s": rep.l_per_s, "f": rep.f, "D_tracer_cm2_per_s": rep.D_tracer_cm2_per_s,
                "D_vacancy_cm2_per_s": rep.D_vacancy_cm2_per_s,
                "drift_velocity_cm_per_s": rep.drift_velocity_cm_per_s, "time_s": rep.time_s,
                "hops": rep.hops, "wall_s": wall, "events_per_second": (events + warm) / wall}

    @staticmethod
    def reduce(config, points, results, outdir):
        """Replica mean and standard error of every observable, per point (without its replica)."""
        import json
        from pathlib import Path

        import numpy as np

        groups: dict[str, list] = {}
        keys: dict[str, dict] = {}
        for p, r in zip(points, results):
            key = {k: v for k, v in p.items() if k != "replica"}
            k = json.dumps(key, sort_keys=True)
            groups.setdefault(k, []).append(r)
            keys[k] = key

        def mean_err(values):
            v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
            err = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
            return float(v.mean()), err

        table = []
        for k, rs in groups.items():
            row = {"point": keys[k], "replicas": len(rs), "events_per_replica": rs[0]["events"]}
            for obs in _BULK_OBSERVABLES:
                row[obs], row[obs + "_err"] = {}, {}
                for name in rs[0][obs]:
                    row[obs][name], row[obs + "_err"][name] = mean_err([r[obs][name] for r in rs])
            row["D_vacancy_cm2_per_s"], row["D_vacancy_err"] = mean_err([r["D_vacancy_cm2_per_s"] for r in rs])
            table.append(row)
        events = sum(r["events"] + r["warmup_events"] for r in results)
        run_wall = sum(r["wall_s"] for r in results)
        summary = {"table": table, "runs": len(results), "events": events, "run_wall_s": run_wall,
                   "events_per_second_per_run": events / run_wall if run_wall > 0 else None,
                   "units": {"l_per_s": "1/s", "D_tracer_cm2_per_s": "cm^2/s", "D_vacancy_cm2_per_s": "cm^2/s",
                             "drift_velocity_cm_per_s": "cm/s"}}
        (Path(outdir) / "bulk_table.json").write_text(json.dumps(table, indent=1))
        first = table[0]
        summary["headline"] = (f"{len(table)} points x {first['replicas']} replicas; {events:.3g} events at "
                               f"{summary['events_per_second_per_run']:.3g} events/s per run; "
                               f"table: {Path(outdir) / 'bulk_table.json'}")
        return summary


@dataclass(frozen=True)
class DeviceCampaignConfig:
    """A device kMC campaign (``run = "device"``): the device config of kmc.device (every table of
    e.g. runs/device_small.toml) plus a [sweep] over field_V_per_um and/or seed ([kmc] values
    otherwise; with ``replicas`` and no seed axis each replica's seed is derived from [kmc] seed
    and the point).  Each run writes its H5MD trajectory ``device.h5`` into its run folder."""

    device: Any
    sweep: Any = None


DEVICE_AXES = {
    "field_V_per_um": Axis(float, -MAX_FIELD_V_PER_UM, MAX_FIELD_V_PER_UM, "V/um"),
    "seed": Axis(int, 0, 2**63 - 1),
}


class DeviceRun:
    """Run type ``device``: device kMC trajectories (kmc.device.run_device) over fields / seeds."""

    name = "device"

    @staticmethod
    def load(mapping):
        from ionwire.kmc.device import load_config

        data = dict(mapping)
        sweep = data.pop("sweep", None)
        cfg = DeviceCampaignConfig(load_config(data), sweep)
        sweep_points(sweep, DEVICE_AXES)  # validate now, before anything runs
        return cfg

    @staticmethod
    def expand(config):
        return sweep_points(config.sweep, DEVICE_AXES)

    @staticmethod
    def fingerprint(config):
        return to_mapping(config.device)

    @staticmethod
    def settings(config, point):
        """The kmc.device.DeviceConfig of one point."""
        from ionwire.kmc.device import replace_settings

        kmc = config.device.kmc
        if "seed" in point:
            seed = int(point["seed"])
        elif "replica" in point:
            seed = seed_for(kmc.seed, point)
        else:
            seed = kmc.seed
        return replace_settings(config.device, field_V_per_um=float(point.get("field_V_per_um", kmc.field_V_per_um)),
                                seed=seed)

    @staticmethod
    def run(config, point, outdir):
        from ionwire.kmc.device import run_device

        cfg = DeviceRun.settings(config, point)
        summary = run_device(cfg, os.path.join(outdir, "device.h5"))
        # paths relative to the run folder (the temporary folder is renamed when the run is done)
        summary["output"] = "device.h5"
        summary.update(field_V_per_um=cfg.kmc.field_V_per_um, seed=cfg.kmc.seed)
        for f in os.listdir(outdir):
            if f.endswith(".checkpoint"):  # a finished run needs no checkpoint
                os.remove(os.path.join(outdir, f))
        return summary

    @staticmethod
    def reduce(config, points, results, outdir):
        import json
        from pathlib import Path

        rows = [{"point": p, **r} for p, r in zip(points, results)]
        (Path(outdir) / "device_runs.json").write_text(json.dumps(rows, indent=1))
        events = sum(r["events"] for r in results)
        wall = sum(r["wall_s"] for r in results)
        return {"runs": rows, "events": events, "run_wall_s": wall,
                "headline": f"{len(rows)} device runs, {events:.3g} events, "
                            f"{events / wall if wall else float('nan'):.3g} events/s per run; "
                            "trajectories: runs/<id>/device.h5 (index.json maps ids to points)"}


def _continuum_run_type():
    from ionwire.continuum.experiment import ContinuumRun

    return ContinuumRun


class ContinuumCampaignRun:
    """Run type ``continuum``: continuum.experiment.ContinuumRun (one field per run, the alpha
    calibration as prepare, Fig. 1e in reduce), plus the figure's data as a plain table
    ``fig1e.csv`` and a one-line headline."""

    name = "continuum"

    @staticmethod
    def load(mapping):
        return _continuum_run_type().load(mapping)

    @staticmethod
    def prepare(config, mapper=map):
        return _continuum_run_type().prepare(config, mapper)

    @staticmethod
    def bind(config, prepared):
        return _continuum_run_type().bind(config, prepared)

    @staticmethod
    def expand(config):
        return _continuum_run_type().expand(config)

    @staticmethod
    def fingerprint(config):
        return _continuum_run_type().fingerprint(config)

    @staticmethod
    def run(config, point, outdir):
        result = _continuum_run_type().run(config, point, outdir)
        if "h5" in result:  # the temporary run folder is renamed: keep the path relative to it
            result["h5"] = os.path.basename(result["h5"])
        return result

    @staticmethod
    def reduce(config, points, results, outdir):
        import csv
        from pathlib import Path

        summary = _continuum_run_type().reduce(config, points, results, outdir)
        cols = ("field_V_per_um", "migration_length_um", "front_um", "cl_uptake")
        path = Path(outdir) / "fig1e.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in results:
                w.writerow([r.get(c) for c in cols])
        summary["data"] = str(path)
        ratio = summary.get("rectification_ratio")
        fit = summary.get("forward_linear_fit") or {}
        lengths = dict(zip(summary.get("field_V_per_um", []), summary.get("migration_length_um", [])))
        parts = [f"figure {summary.get('figure')}, data {path}"]
        if 4.0 in lengths and -4.0 in lengths:
            parts.append(f"L(+4) = {lengths[4.0]:.3f} um, L(-4) = {lengths[-4.0]:.3f} um")
        if ratio is not None:
            parts.append(f"rectification ratio {ratio:.1f}")
        if fit:
            parts.append(f"forward R^2 {fit.get('r_squared', float('nan')):.4f}")
        summary["headline"] = "; ".join(parts)
        return summary


class CompareRun:
    """Run type ``compare`` (runs/validate.toml, coupling.compare): every run is ONE device-kMC
    replica at one field of [compare] (the expensive part, fanned out); ``reduce`` hands the
    finished replicas to :func:`ionwire.coupling.compare.compare`, which runs the continuum model on the
    same parameter object, bins both and writes report.h5, summary.json and the plots into the
    campaign folder, exactly as ``ionwire compare`` does serially (same seeds, same numbers)."""

    name = "compare"
    _ARRAYS = ("x_br", "x_v", "phi_V", "plane_z_um", "sites_per_plane", "counters")

    @staticmethod
    def load(mapping):
        from ionwire.coupling.compare import load_config

        return load_config(mapping)

    @staticmethod
    def expand(config):
        c = config.compare
        return [{"field_V_per_um": float(e), "replica": r} for e in c.fields_V_per_um for r in range(c.replicas)]

    @staticmethod
    def _seed(config, point):
        from ionwire.coupling.compare import replica_seed

        fi = [float(e) for e in config.compare.fields_V_per_um].index(float(point["field_V_per_um"]))
        return replica_seed(config.compare.seed, fi, int(point["replica"]))

    @staticmethod
    def run(config, point, outdir):
        import numpy as np

        from ionwire.coupling.compare import run_kmc_replica

        seed = CompareRun._seed(config, point)
        res = run_kmc_replica(config, float(point["field_V_per_um"]), seed)
        out = {k: (np.asarray(v).tolist() if k in CompareRun._ARRAYS else v) for k, v in res.items()}
        out["seed"] = seed
        return out

    @staticmethod
    def reduce(config, points, results, outdir):
        import json

        import numpy as np

        from ionwire.coupling.compare import compare

        done = {(float(p["field_V_per_um"]), r["seed"]): r for p, r in zip(points, results)}

        def finished_replica(cfg, field_V_per_um, seed):
            r = done[(float(field_V_per_um), int(seed))]
            return {k: (np.asarray(v, dtype=float) if k in CompareRun._ARRAYS else v) for k, v in r.items()
                    if k != "seed"}

        text = json.dumps(to_mapping(config), sort_keys=True)
        summary = compare(config, outdir, config_toml=text, progress=False, kmc_runner=finished_replica)
        acc = summary.get("accepted", {})
        parts = []
        for name, per_field in summary.get("chi2_per_dof", {}).items():
            worst = ", ".join(f"{f} {max(v):.2f}" for f, v in per_field.items())
            parts.append(f"{name}: max chi2/dof {worst}; accepted {acc.get(name)}")
        summary["headline"] = (f"{len(results)} kMC replicas; " + "; ".join(parts)
                               + f"; report {outdir}/report.h5")
        return json.loads(json.dumps(summary, default=float))
