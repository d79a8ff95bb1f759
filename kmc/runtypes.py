"""Campaign run types of the kMC engines (:mod:`ionwire.structures.runtype` interface):

- ``bulk`` (:class:`BulkRun`): independent bulk kMC replicas of a periodic random alloy of the
  halide pair over a sweep; ``reduce`` forms replica means and standard errors per point;
- ``device`` (:class:`DeviceRun`): device kMC trajectories (kmc.device.run_device) over fields
  and seeds, one H5MD file per run.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ionwire.structures.parameters import (DEFAULT_HALIDES, Material, ParameterError, _halides_of_material_table,
                                           from_mapping, to_mapping)
from ionwire.structures.runtype import Axis, sweep_points
from ionwire.structures.seeds import point_seed
from ionwire.structures.statistics import mean_and_error

from .observables import MAX_FIELD_V_PER_UM, BulkSettings, fraction_key, measure_replica, pair_names


# --------------------------------------------------------------------------------------------
# bulk replicas
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkConfig:
    """A bulk kMC campaign: [material] (structures.parameters.Material), [bulk]
    (:class:`ionwire.kmc.observables.BulkSettings`), ``f0`` (the tracer correlation factor of the
    Moleko-Allnatt-Allnatt theory the measured l_ab are compared with; None:
    structures.onsager.F0_ANION_PEROVSKITE) and [sweep].  The config of the ``bulk`` and the
    ``onsager`` run types."""

    material: Material = field(default_factory=Material)
    bulk: BulkSettings = field(default_factory=BulkSettings)
    f0: float | None = None
    sweep: Any = None

    def __post_init__(self):
        if self.f0 is not None and not (math.isfinite(self.f0) and 0 < self.f0 < 1):
            raise ParameterError(f"f0: must be in (0, 1), got {self.f0!r}")

    @classmethod
    def from_toml_keys(cls, data, where: str, halides=None):
        """The pair of [material] names the per-halide keys of [bulk] (composition = {Cl = ...})."""
        mat = data.get("material")
        return data, (_halides_of_material_table(mat, "material") if isinstance(mat, Mapping) else DEFAULT_HALIDES)

    def halides_of_set(self) -> tuple[str, str]:
        return self.material.halides

    def resolved_f0(self) -> float:
        if self.f0 is not None:
            return float(self.f0)
        from ionwire.structures.onsager import F0_ANION_PEROVSKITE

        if F0_ANION_PEROVSKITE is None:
            raise ParameterError("f0: not given and structures.onsager.F0_ANION_PEROVSKITE is not measured yet")
        return float(F0_ANION_PEROVSKITE)


#: keys of earlier bulk configs -> the error naming their replacement
_MOVED_TOP = {k: f"{k}: moved to [bulk] (bulk.{k})" for k in
              ("cells", "field_V_per_um", "warmup_events", "blocks", "seed")}
_MOVED_TOP["x_cl"] = ("x_cl: moved to [bulk] as bulk.composition = {<second halide> = ...} (the second halide's "
                      "fraction of the halide sites, e.g. {Cl = 0.5})")
_MOVED_TOP["vacancies"] = "vacancies: replaced by bulk.vacancy_fraction (vacancies per anion site)"
_MOVED_TOP["events"] = "events: renamed bulk.events_per_replica"
_MOVED_BULK = {"vacancies": "bulk.vacancies: replaced by bulk.vacancy_fraction (vacancies per anion site)",
               "events": "bulk.events: renamed bulk.events_per_replica",
               "f0": "bulk.f0: moved to the top level (f0 = ...)"}
#: sweep axes renamed with the [bulk] keys
RENAMED_AXES = {"vacancies": "vacancy_fraction", "events": "events_per_replica", "x_cl": "composition"}


def load_bulk_config(mapping: Mapping[str, Any]) -> BulkConfig:
    """Validate a bulk campaign mapping (``run`` key allowed and ignored); the sweep is checked
    by the run type's ``expand``."""
    data = {k: v for k, v in mapping.items() if k != "run"}
    for key, message in _MOVED_TOP.items():
        if key in data:
            raise ParameterError(message)
    bulk = data.get("bulk")
    if isinstance(bulk, Mapping):
        for key, message in _MOVED_BULK.items():
            if key in bulk:
                raise ParameterError(message)
    return from_mapping(BulkConfig, data)


BULK_AXES = {
    "composition": Axis(float, 0.0, 1.0),  # the second halide's fraction of the halide sites
    "field_V_per_um": Axis(float, -MAX_FIELD_V_PER_UM, MAX_FIELD_V_PER_UM, "V/um"),
    "temperature_K": Axis(float, 1.0, 5000.0, "K"),
    "vacancy_fraction": Axis(float, 0.0, 0.5),
    "events_per_replica": Axis(int, 1, 10**13),
}
#: sweep axis -> BulkSettings field
_BULK_SETTINGS_AXES = {"composition": "x_cl", "field_V_per_um": "field_V_per_um",
                       "vacancy_fraction": "vacancy_fraction", "events_per_replica": "events_per_replica"}
_BULK_OBSERVABLES = ("l_per_s", "f", "D_tracer_cm2_per_s", "drift_velocity_cm_per_s")


def point_run(config: BulkConfig, point: Mapping[str, Any]) -> tuple[Material, BulkSettings]:
    """(material, settings) of one point: its axes replace [material] temperature_K and [bulk] keys
    (ParameterError naming the point if the combination is invalid)."""
    material = config.material
    if "temperature_K" in point:
        material = dataclasses.replace(material, temperature_K=float(point["temperature_K"]))
    changes = {f: point[k] for k, f in _BULK_SETTINGS_AXES.items() if k in point}
    try:
        settings = dataclasses.replace(config.bulk, **changes) if changes else config.bulk
    except ParameterError as exc:
        raise ParameterError(f"sweep point {json.dumps(dict(point))}: bulk.{exc}") from None
    return material, settings


def seed_point(point: Mapping[str, Any]) -> dict:
    """The point a run's seed is derived from: the composition axis under its earlier spelling
    x_cl, so that a campaign draws the random streams it drew before the axis was renamed (and a
    relabelled pair the same ones)."""
    return {("x_cl" if k == "composition" else k): v for k, v in point.items()}


class BulkRun:
    """Run type ``bulk``: every run is ONE independent replica (kmc.observables.measure_replica)
    at one point of the sweep (composition: the second halide's fraction, field_V_per_um,
    temperature_K, vacancy_fraction, events_per_replica); its seed is derived from bulk.seed and
    the whole point (:func:`seed_point`)."""

    name = "bulk"

    @staticmethod
    def load(mapping):
        cfg = load_bulk_config(mapping)
        BulkRun.expand(cfg)  # validate the sweep now, before anything runs
        return cfg

    @staticmethod
    def expand(config):
        points = sweep_points(config.sweep, BULK_AXES, renamed=RENAMED_AXES)
        for p in points:
            point_run(config, p)
        return points

    @staticmethod
    def fingerprint(config):
        d = to_mapping(config)
        d.pop("sweep", None)
        return d

    @staticmethod
    def run(config, point, outdir):
        material, settings = point_run(config, point)
        return measure_replica(material, settings, point_seed(settings.seed, seed_point(point)))

    @staticmethod
    def reduce(config, points, results, outdir):
        """Replica mean and standard error of every observable, per point (without its replica)."""
        groups: dict[str, list] = {}
        keys: dict[str, dict] = {}
        for p, r in zip(points, results):
            key = {k: v for k, v in p.items() if k != "replica"}
            k = json.dumps(key, sort_keys=True)
            groups.setdefault(k, []).append(r)
            keys[k] = key
        table = []
        for k, rs in groups.items():
            row = {"point": keys[k], "replicas": len(rs), "events_per_replica": rs[0]["events"]}
            for obs in _BULK_OBSERVABLES:
                row[obs], row[obs + "_err"] = {}, {}
                for name in rs[0][obs]:
                    row[obs][name], row[obs + "_err"][name] = mean_and_error([r[obs][name] for r in rs])
            row["D_vacancy_cm2_per_s"], row["D_vacancy_err"] = mean_and_error([r["D_vacancy_cm2_per_s"] for r in rs])
            theory = _maa_theory(config, keys[k], rs[0])
            if theory is not None:
                row["l_theory_MAA_per_s"] = theory
            table.append(row)
        events = sum(r["events"] + r["warmup_events"] for r in results)
        run_wall = sum(r["wall_s"] for r in results)
        summary = {"table": table, "runs": len(results), "events": events, "run_wall_s": run_wall,
                   "events_per_second_per_run": events / run_wall if run_wall > 0 else None,
                   "units": {"l_per_s": "1/s", "D_tracer_cm2_per_s": "cm^2/s", "D_vacancy_cm2_per_s": "cm^2/s",
                             "drift_velocity_cm_per_s": "cm/s"}}
        (Path(outdir) / "bulk_table.json").write_text(json.dumps(table, indent=1))
        first = table[0]
        rate = summary["events_per_second_per_run"]
        summary["headline"] = (f"{len(table)} points x {first['replicas']} replicas; {events:.3g} events at "
                               f"{rate if rate is not None else float('nan'):.3g} events/s per run; "
                               f"table: {Path(outdir) / 'bulk_table.json'}")
        return summary


def _maa_theory(config: BulkConfig, point: Mapping[str, Any], result: Mapping[str, Any]) -> dict | None:
    """l_ab of the Moleko-Allnatt-Allnatt theory at the composition of a point (random_alloy
    barriers only, where the theory applies)."""
    from ionwire.structures import onsager
    from ionwire.structures.parameters import Barriers

    material, _ = point_run(config, point)
    if material.preset != "random_alloy" or material.barriers != Barriers.preset("random_alloy"):
        return None
    try:
        f0 = config.resolved_f0()
    except ParameterError:
        return None
    x_v, x_cl = result["x_v"], result[fraction_key(material.halides) + "_actual"]
    w_first, w_second = material.jump_frequency_pair_per_s()
    ll = onsager.onsager_coefficients((1 - x_v) * (1 - x_cl), (1 - x_v) * x_cl, x_v, w_first, w_second, f0)
    return {name: float(v) for (name, _, _), v in zip(pair_names(material.halides), ll)}


# --------------------------------------------------------------------------------------------
# device trajectories
# --------------------------------------------------------------------------------------------
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
        from .device import load_config

        data = dict(mapping)
        sweep = data.pop("sweep", None)
        cfg = DeviceCampaignConfig(load_config(data), sweep)
        sweep_points(sweep, DEVICE_AXES)  # validate now, before anything runs
        if cfg.device.bias is not None and isinstance(sweep, Mapping) and "field_V_per_um" in sweep:
            raise ParameterError("sweep.field_V_per_um: this device config has a [bias] protocol, which sets the field")
        return cfg

    @staticmethod
    def expand(config):
        return sweep_points(config.sweep, DEVICE_AXES)

    @staticmethod
    def fingerprint(config):
        return config.device.to_mapping()

    @staticmethod
    def settings(config, point):
        """The kmc.device.DeviceConfig of one point."""
        from .device import replace_settings

        kmc = config.device.kmc
        if "seed" in point:
            seed = int(point["seed"])
        elif "replica" in point:
            seed = point_seed(kmc.seed, point)
        else:
            seed = kmc.seed
        return replace_settings(config.device, field_V_per_um=float(point.get("field_V_per_um", kmc.field_V_per_um)),
                                seed=seed)

    @staticmethod
    def run(config, point, outdir):
        from .device import run_device

        cfg = DeviceRun.settings(config, point)
        summary = run_device(cfg, os.path.join(outdir, "device.h5"))
        # paths relative to the run folder (the temporary folder is renamed when the run is done)
        summary["output"] = "device.h5"
        summary.update(field_V_per_um=cfg.kmc.field_V_per_um if cfg.bias is None else None, seed=cfg.kmc.seed)
        if cfg.bias is not None:
            summary["bias"] = cfg.bias.to_mapping()
        for f in os.listdir(outdir):
            if f.endswith(".checkpoint"):  # a finished run needs no checkpoint
                os.remove(os.path.join(outdir, f))
        return summary

    @staticmethod
    def reduce(config, points, results, outdir):
        rows = [{"point": p, **r} for p, r in zip(points, results)]
        (Path(outdir) / "device_runs.json").write_text(json.dumps(rows, indent=1))
        events = sum(r["events"] for r in results)
        wall = sum(r["wall_s"] for r in results)
        return {"runs": rows, "events": events, "run_wall_s": wall,
                "headline": f"{len(rows)} device runs, {events:.3g} events, "
                            f"{events / wall if wall else float('nan'):.3g} events/s per run; "
                            "trajectories: runs/<id>/device.h5 (index.json maps ids to points)"}
