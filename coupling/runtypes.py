"""The run-type registry of ``ionwire campaign``: names in configs (``run = "continuum"``) ->
run types, which live beside their libraries and follow the interface of
:mod:`ionwire.structures.runtype` (:class:`~ionwire.structures.runtype.RunType`); plus the
``compare`` run type, the one that needs both models.

A run type is named in a config either by its registered name (see :data:`REGISTRY`) or as
``"package.module:attribute"`` for run types that live outside ionwire.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping

from ionwire.structures.parameters import ParameterError, to_mapping
from ionwire.structures.runtype import REQUIRED_METHODS, RunType

#: registered run types: name -> "module:attribute" (imported on first use, so a run type whose
#: library is missing from an installation only fails when a config asks for it)
REGISTRY: dict[str, str] = {
    # the rectification experiment with the continuum model (runs/fig1e.toml)
    "continuum": "ionwire.continuum.experiment:ContinuumRun",
    # what controls the rectification: Morris design over the open choices (runs/sensitivity.toml)
    "sensitivity": "ionwire.continuum.sensitivity:SensitivityRun",
    # independent bulk kMC replicas (transport coefficients against composition, field, temperature)
    "bulk": "ionwire.kmc.runtypes:BulkRun",
    # device kMC trajectories (runs/device_small.toml plus a [sweep])
    "device": "ionwire.kmc.runtypes:DeviceRun",
    # atomistic (device-kMC ensemble) against continuum on one parameter set (runs/validate.toml)
    "compare": "ionwire.coupling.runtypes:CompareRun",
    # l_ab(x_Cl) table from bulk kMC replicas (runs/onsager.toml)
    "onsager": "ionwire.coupling.parameterize:OnsagerTableRun",
    # bulk kMC D, l_ab and the device's L(+-E) against temperature, Arrhenius fits (runs/arrhenius.toml)
    "arrhenius": "ionwire.coupling.arrhenius:ArrheniusRun",
}
_LOADED: dict[str, Any] = {}


def check_run_type(obj: Any, name: str) -> RunType:
    """Raise ParameterError unless ``obj`` has the run-type methods (structures.runtype)."""
    missing = [a for a in REQUIRED_METHODS if not callable(getattr(obj, a, None))]
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


def get(name: str) -> RunType:
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
        from ionwire.coupling.compare import BiasedValidationConfig, load_config

        config = load_config(mapping)
        if isinstance(config, BiasedValidationConfig):
            raise ParameterError("[bias]: a comparison under a bias protocol runs with `ionwire compare CONFIG`, "
                                 "not as a campaign (a campaign fans out the fields of [compare].fields_V_per_um)")
        return config

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
