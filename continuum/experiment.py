"""The rectification experiment with the continuum model: config, calibration, sweep, summary.

Library API (used by ``ionwire continuum`` and, through :class:`ContinuumRun`, by
``ionwire campaign``)::

    cfg = load_config(mapping)                      # TOML mapping -> frozen ContinuumConfig
    record = calibrate(cfg, mapper=map)             # the fit of (alpha_Br, alpha_Cl); JSON-able
    cfg = bind(cfg, record)                         # config with the fitted alphas (and the record)
    points = expand(cfg)                            # [{"field_V_per_um": E}, ...]
    result, summary = run_field(cfg, E, onsager=None)   # WireResult + JSON-able dict
    summary = run_point(cfg, point, outdir)         # one field -> outdir/continuum.h5 + dict
    out = summarize(cfg, points, summaries)         # the --json keys (see below)
    plot_fig1e(out, path_png)
    out = run_sweep(cfg, out_h5, mapper=map)        # all fields, HDF5 + summary (the CLI path)

Parallel runs: the functions that run several fields (:func:`map_runs`, :func:`map_fields`,
:func:`calibrate`, :func:`run_sweep`, continuum.figures.paper_figures) take a ``mapper``, a
callable with the semantics of the builtin ``map(fn, iterable)`` (results in order); the default
is the builtin (serial, in this process).  This package starts no processes of its own: the
caller passes the ``map`` of its pool (``ionwire continuum`` and ``ionwire campaign`` pass the
local process pool of coupling.campaign).

Config file (runs/fig1e.toml)::

    run = "continuum"
    duration_s = 14400.0
    workers = 2                                      # processes of ``ionwire continuum``
    [material] [vacancies] [geometry] [electrodes]   structures.parameters (DeviceParameters)
    [numerics]                                       continuum.model.Numerics
    [transport] f0, onsager_table, table_preset      Onsager coefficients (MAA theory or kMC table)
    [calibration] enabled, targets ...               the fit (see Calibration)
    [sweep] field_V_per_um = [-4.0, ..., 4.0]
    # or, instead of [sweep] fields and duration_s: a [bias] protocol (structures.bias,
    # docs/model.md section 19), run by continuum.protocol; its [sweep] names dotted bias.* keys

Summary keys (``--json``): field_V_per_um (list), migration_length_um (list, same order; after
duration_s; signed, > 0 towards the Br segment), rectification_ratio = L(+4)/|L(-4)| (the largest
forward over the largest reverse field of the sweep), reverse_sign (the sign of L there),
prediction_paper_alphas (the same sweep with the paper's alphas, nothing fitted:
field_V_per_um, migration_length_um, rectification_ratio, reverse_sign), cl_uptake (mean x_Cl over the original Br segment after duration_s at the
largest forward field; continuum.observables.cl_uptake), cl_uptake_window (mean x_Cl over the
1 um behind the initial junction, the PL-comparable uptake; continuum.observables.cl_uptake_window),
front_width_um (list: the 10-90 % width of the front after duration_s per field;
continuum.observables.front_width_um), calibrated (each fitted parameter with
its value, the paper value, the datum it was fitted to, what the fit achieved, the residual),
forward_linear_fit (slope, intercept, R^2 over 1.5-4 V/um), wall_s (the whole sweep incl.
calibration), sweep_wall_s, calibration_wall_s, per-field solver statistics.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import io as cio
from .model import Numerics, WireResult, default_f0, simulate_wire, integrate, wire_problem
from .observables import (UPTAKE_WINDOW_UM, cl_uptake, cl_uptake_window, front_positions_um, front_width_um,
                          linear_fit)
from ionwire.structures import materials, paper
from ionwire.structures.bias import BiasProtocol, resolve_bias
from ionwire.structures.parameters import (DeviceParameters, HoldsDeviceParameters, ParameterError, alpha_keys, from_mapping, uptake_key,
                                           inline_field, read_toml, require, to_mapping)

DEFAULT_FIELDS = tuple(float(x) for x in np.arange(-4.0, 4.01, 0.5))


@dataclass(frozen=True)
class Transport:
    """Onsager coefficients: the MAA theory with f0 (None: continuum.model.default_f0(), i.e. the
    kMC-measured constant once set), or a kMC table file written by ``ionwire parameterize``
    (onsager_table = path, table_preset = which preset's table in it)."""

    f0: float | None = None
    onsager_table: str | None = None
    table_preset: str = "random_alloy"

    def __post_init__(self):
        if self.f0 is not None:
            require(math.isfinite(self.f0) and 0.0 < self.f0 < 1.0, f"f0 must be in (0, 1), got {self.f0!r}")


@dataclass(frozen=True)
class Calibration:
    """The fit of alpha_Br and alpha_Cl (the only calibrated parameters) to docs/model.md section 1:
    L(+2 V/um, duration) = 0.49 um (mu E t on the linear forward branch) and
    |L(-4 V/um, duration)| = 0.05 um (ratio ~20); defaults from structures.paper
    (CALIBRATION_FORWARD, CALIBRATION_REVERSE and their fields).  reverse_target_signed: if true
    the reverse target is the signed L(-4 V/um) = +reverse_length_um (motion towards the Br
    segment, the paper's sign convention), else its magnitude; the record states which.  Each
    alpha is adjusted by a secant iteration in log-log space until both relative residuals are
    below ``tolerance``."""

    enabled: bool = True
    forward_field_V_per_um: float = paper.CALIBRATION_FORWARD_FIELD.value
    forward_length_um: float = paper.CALIBRATION_FORWARD.value
    reverse_field_V_per_um: float = paper.CALIBRATION_REVERSE_FIELD.value
    reverse_length_um: float = paper.CALIBRATION_REVERSE.value
    reverse_target_signed: bool = False
    tolerance: float = 2e-3
    max_iterations: int = 10

    def __post_init__(self):
        require(self.forward_field_V_per_um > 0, "forward_field_V_per_um must be > 0")
        require(self.reverse_field_V_per_um < 0, "reverse_field_V_per_um must be < 0")
        require(self.forward_length_um > 0, "forward_length_um must be > 0")
        require(self.reverse_length_um > 0, "reverse_length_um must be > 0")
        require(0 < self.tolerance < 0.5, "tolerance must be in (0, 0.5)")
        require(isinstance(self.max_iterations, int) and self.max_iterations >= 1, "max_iterations must be >= 1")


@dataclass(frozen=True)
class Sweep:
    """Fields of the sweep (V/um; > 0 forward)."""

    field_V_per_um: tuple[float, ...] = DEFAULT_FIELDS

    def __post_init__(self):
        require(len(self.field_V_per_um) >= 1, "field_V_per_um must list at least one field")
        require(len(set(self.field_V_per_um)) == len(self.field_V_per_um), "field_V_per_um has duplicates")
        for i, e in enumerate(self.field_V_per_um):
            require(math.isfinite(e) and abs(e) <= 50.0, f"field_V_per_um[{i}] must be in [-50, 50], got {e!r}")


@dataclass(frozen=True)
class ContinuumConfig(HoldsDeviceParameters):
    """A continuum experiment: the shared device parameters (``params``; the file's [material],
    [vacancies], [geometry], [electrodes]), numerics and the sweep.

    ``bias``: the protocol of a ``[bias]`` table (structures.bias; continuum.protocol runs it)
    instead of the ``[sweep]`` of constant fields; then ``duration_s`` is the duration of the
    calibration runs only (the paper's 4 h) and may not be given in the file, and
    ``bias_sweep`` (JSON) holds a ``[sweep]`` over dotted ``bias.*`` keys, if any.
    ``calibration_record`` is set by :func:`bind` (the JSON of the fit); not for config files.
    ``workers``: the number of processes ``ionwire continuum`` runs the fields on (the library
    functions take a mapper instead).  Default duration: the paper's 4 h (structures.paper).
    """

    params: DeviceParameters = inline_field(DeviceParameters)
    duration_s: float = paper.BIAS_DURATION.value
    workers: int = 2
    numerics: Numerics = field(default_factory=Numerics)
    transport: Transport = field(default_factory=Transport)
    calibration: Calibration = field(default_factory=Calibration)
    sweep: Sweep = field(default_factory=Sweep)
    calibration_record: str | None = None
    bias: BiasProtocol | None = None
    bias_sweep: str | None = None

    def __post_init__(self):
        require(math.isfinite(self.duration_s) and self.duration_s > 0,
                f"duration_s must be a positive number, got {self.duration_s!r}")
        require(isinstance(self.workers, int) and 1 <= self.workers <= 64,
                f"workers must be an integer in [1, 64], got {self.workers!r}")


def load_config(mapping: Mapping[str, Any]) -> ContinuumConfig:
    """Validate a TOML mapping (with or without its top-level ``run = "continuum"``)."""
    data = dict(mapping)
    run = data.pop("run", "continuum")
    if run != "continuum":
        raise ParameterError(f"run: this config is for {run!r}, not 'continuum'")
    for key in ("bias", "bias_sweep"):  # None: as to_mapping writes a config without [bias]
        if key in data and data[key] is None:
            del data[key]
    if "bias_sweep" in data:
        raise ParameterError("unknown key bias_sweep (set from [sweep] of a config with [bias], not a config key)")
    if "bias" not in data:
        return from_mapping(ContinuumConfig, data)
    from .protocol import bias_points

    sweep = data.get("sweep")
    if isinstance(sweep, Mapping) and "bias" in sweep:  # [sweep] over bias.* keys: not the old-style fields
        data = {k: v for k, v in data.items() if k != "sweep"}
    else:
        sweep = None
    protocol, rest = resolve_bias(data, field_keys=("sweep.field_V_per_um",), duration_keys=("duration_s",))
    if protocol.total_duration_s is None:
        raise ParameterError("[bias] field_V_per_um needs its duration_s in [bias] (a continuum run has an end)")
    if "sweep" in rest:
        raise ParameterError("[sweep] of a config with [bias] sweeps entries of the bias table, as dotted keys such as "
                             "bias.square_wave.period_s = [...]")
    cfg = from_mapping(ContinuumConfig, rest)
    cfg = dataclasses.replace(cfg, bias=protocol, bias_sweep=json.dumps(sweep) if sweep else None)
    bias_points(cfg.bias, cfg.bias_sweep)
    return cfg


def load_config_file(path) -> ContinuumConfig:
    return load_config(read_toml(path)[0])


def _onsager(cfg: ContinuumConfig):
    if cfg.transport.onsager_table is None:
        return None
    from ionwire.structures.onsager_table import load_table

    table = load_table(cfg.transport.onsager_table, cfg.transport.table_preset)
    return table.interpolator()


def f0_used(cfg: ContinuumConfig) -> tuple[float | None, str]:
    if cfg.transport.onsager_table is not None:
        return None, f"kMC table {cfg.transport.onsager_table} ({cfg.transport.table_preset})"
    if cfg.transport.f0 is not None:
        return cfg.transport.f0, "config [transport] f0"
    return default_f0()


def with_alphas(cfg: ContinuumConfig, alpha_br: float, alpha_cl: float) -> ContinuumConfig:
    el = dataclasses.replace(cfg.electrodes, alphas_um_per_V_s=(float(alpha_br), float(alpha_cl)))
    return cfg.with_params(electrodes=el)


# --------------------------------------------------------------------------------------------
# one field
# --------------------------------------------------------------------------------------------
def run_field(cfg: ContinuumConfig, field_V_per_um: float, onsager=None) -> tuple[WireResult, dict]:
    """Simulate one field for cfg.duration_s; returns (WireResult, JSON-able summary).

    onsager: None (use cfg.transport) or anything continuum.model.wire_problem accepts.
    Summary keys: field_V_per_um, migration_length_um (at the end), front_um, cl_uptake,
    times_s, migration_length_um_t (list over output times), vacancy_current_gap (J_V at the
    gap centre at the end, site fractions um/s), min_fraction (smallest x_Br or x_Cl seen),
    solver statistics, wall_s, cpu_s (CPU time of the process that ran it).
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    if onsager is None:
        onsager = _onsager(cfg)
    f0, _ = f0_used(cfg)
    res = simulate_wire(cfg.params, float(field_V_per_um), cfg.duration_s, cfg.numerics, onsager=onsager, f0=f0)
    zj = cfg.geometry.junction_um
    front = front_positions_um(res.z_um, res.x_br, zj)
    lengths = front[0] - front
    res.metadata["front_um"] = front
    res.metadata["migration_length_um_t"] = lengths
    res.front_um, res.migration_length_um = front, lengths
    g0, g1 = cfg.geometry.gap_um_interval
    ic = int(np.argmin(np.abs(0.5 * (res.z_um[:-1] + res.z_um[1:]) - 0.5 * (g0 + g1))))
    summary = {
        "field_V_per_um": float(field_V_per_um),
        "migration_length_um": float(lengths[-1]),
        "front_um": float(front[-1]),
        uptake_key(cfg.params.halides): cl_uptake(res.z_um, res.volume_um, res.x_cl[-1], zj),
        uptake_key(cfg.params.halides) + "_window": cl_uptake_window(res.z_um, res.x_cl[-1], zj),
        "front_width_um": front_width_um(res.z_um, res.x_br[-1], front[-1]),
        "front_width_um_t": [None if not np.isfinite(w) else float(w) for w in
                             front_width_um(res.z_um, res.x_br, front)],
        "times_s": res.times_s.tolist(),
        "migration_length_um_t": [None if not np.isfinite(v) else float(v) for v in lengths],
        "vacancy_current_gap": float(res.j_v[-1, ic]),
        "min_fraction": float(min(res.x_br.min(), res.x_cl.min())),
        "n_nodes": int(res.z_um.size),
        "steps": int(res.metadata["solver_steps"]),
        "newton_iterations": int(res.metadata["solver_newton_iterations"]),
        "jacobian_evaluations": int(res.metadata["solver_jacobian_evaluations"]),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }
    return res, summary


def result_arrays(res: WireResult) -> dict[str, np.ndarray]:
    """The arrays of a result by their file names (continuum.io.variables of its halides)."""
    return cio.file_names({"z_um": res.z_um, "volume_um": res.volume_um, "times_s": res.times_s, "x_br": res.x_br,
                           "x_cl": res.x_cl, "x_v": res.x_v, "phi_V": res.phi_V, "j_v": res.j_v, "j_br": res.j_br,
                           "q_v": res.q_v, "q_br": res.q_br, "front_um": res.metadata["front_um"],
                           "migration_length_um": res.metadata["migration_length_um_t"]}, res.halides)


def _run_attrs(cfg: ContinuumConfig, summary: dict) -> dict:
    return {"field_V_per_um": summary["field_V_per_um"], "migration_length_um": summary["migration_length_um"],
            uptake_key(cfg.params.halides): summary[uptake_key(cfg.params.halides)],
            "junction_um": cfg.geometry.junction_um, "summary": summary}


def _plain(cfg: ContinuumConfig) -> dict:
    """to_mapping(cfg) with the bias protocol as its [bias] table (JSON-able)."""
    d = to_mapping(dataclasses.replace(cfg, bias=None))
    d["bias"] = cfg.bias.to_mapping() if cfg.bias is not None else None
    d["bias_sweep"] = json.loads(cfg.bias_sweep) if cfg.bias_sweep else None
    return d


def config_dict(cfg: ContinuumConfig) -> dict:
    d = _plain(cfg)
    d["f0_used"] = list(f0_used(cfg))
    return d


def _calibration_dict(cfg: ContinuumConfig) -> dict:
    return json.loads(cfg.calibration_record) if cfg.calibration_record else {}


def run_point(cfg: ContinuumConfig, point: Mapping[str, Any], outdir) -> dict:
    """One campaign point {"field_V_per_um": E}: writes outdir/continuum.h5, returns the summary.
    A config with [bias]: continuum.protocol.run_protocol_point."""
    if cfg.bias is not None:
        from .protocol import run_protocol_point

        return run_protocol_point(cfg, point, outdir)
    unknown = set(point) - {"field_V_per_um", "replica"}
    if unknown:
        raise ParameterError(f"continuum point: unknown key {sorted(unknown)[0]}")
    res, summary = run_field(cfg, float(point["field_V_per_um"]))
    path = Path(outdir) / "continuum.h5"
    cio.create(path, config_dict(cfg), _calibration_dict(cfg))
    cio.append_run(path, result_arrays(res), _run_attrs(cfg, summary))
    summary["h5"] = str(path)
    return summary


def _field_worker(args):
    cfg, e = args
    res, summary = run_field(cfg, e)
    return result_arrays(res), summary


def warm_up(_=None) -> None:
    """Compile / load the numba kernels in this process (the argument is ignored, so that a
    mapper can run it in its workers: ``list(mapper(warm_up, range(workers)))``)."""
    p = DeviceParameters()
    prob = wire_problem(p, 1.0, Numerics(n_nodes=40))
    integrate(prob, np.array([0.0, 1e-6]))


def map_runs(runs, mapper=map, callback=None) -> list[dict]:
    """Run (config, field) pairs with ``mapper`` (``map(fn, iterable)`` semantics; default: the
    builtin, serial); returns the summaries in the given order.

    callback(arrays, summary) is called in this process for each run, in the given order, as
    soon as it and all runs before it are done.  A mapper other than the builtin receives the
    expensive runs (strong forward bias: the front crosses many cells) first, so that parallel
    workers finish together."""
    runs = [(cfg, float(e)) for cfg, e in runs]
    order = list(range(len(runs)))
    if mapper is not map:
        order.sort(key=lambda i: -max(runs[i][1], 0.0))
    done: dict[int, tuple] = {}
    out: list[dict] = []
    for i, result in zip(order, mapper(_field_worker, [runs[i] for i in order])):
        done[i] = result
        while len(out) in done:
            arrays, summary = done.pop(len(out))
            if callback:
                callback(arrays, summary)
            out.append(summary)
    if len(out) != len(runs):
        raise RuntimeError(f"the mapper returned {len(out)} results for {len(runs)} runs")
    return out


def map_fields(cfg: ContinuumConfig, fields, mapper=map, callback=None) -> list[dict]:
    """Run every field of one config (see map_runs); returns summaries in order."""
    return map_runs([(cfg, e) for e in fields], mapper, callback)


# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------
def calibrate(cfg: ContinuumConfig, mapper=map) -> dict:
    """Fit (alpha_Br, alpha_Cl) to the two numbers of docs/model.md section 1; returns the record.

    Two coupled secant iterations in log-log space (each L depends mainly on the alpha of the
    vacancy-depleted electrode's segment: alpha_Br forward, alpha_Cl reverse), started from the
    config's alphas (default: the paper's).  The two target fields of an iteration go to
    ``mapper`` together (run in parallel by a parallel mapper).
    Record (JSON-able): {"alpha_<A>_um_per_V_s": {...}, "alpha_<B>_um_per_V_s": {...} (A, B the halides),
    "iterations", "converged", "history", "wall_s", "method"}; each parameter entry holds value,
    paper_value, start_value, fitted_to (text), target_um, achieved_um, residual_um.
    """
    t0 = time.perf_counter()
    cal = cfg.calibration
    ka, kb = alpha_keys(cfg.params.halides)
    ef, er = cal.forward_field_V_per_um, cal.reverse_field_V_per_um
    tf, tr = cal.forward_length_um, cal.reverse_length_um
    la = np.array([math.log(cfg.electrodes.alphas_um_per_V_s[0]), math.log(cfg.electrodes.alphas_um_per_V_s[1])])
    target = np.log([tf, tr])
    la0 = la.copy()
    history = []
    prev = None
    slope = np.array([1.0, 1.0])
    converged = False
    for it in range(cal.max_iterations):
        trial = with_alphas(cfg, math.exp(la[0]), math.exp(la[1]))
        sf, sr = map_fields(trial, [ef, er], mapper)
        lf = sf["migration_length_um"]
        lr = sr["migration_length_um"] if cal.reverse_target_signed else abs(sr["migration_length_um"])
        history.append({ka: math.exp(la[0]), kb: math.exp(la[1]),
                        "L_forward_um": sf["migration_length_um"], "L_reverse_um": sr["migration_length_um"]})
        got = np.log(np.maximum([lf, lr], 1e-9))
        resid = np.array([lf / tf - 1.0, lr / tr - 1.0])
        if np.all(np.abs(resid) < cal.tolerance):
            converged = True
            break
        if prev is not None:
            dla = la - prev[0]
            dg = got - prev[1]
            ok = np.abs(dla) > 1e-12
            slope = np.where(ok, dg / np.where(ok, dla, 1.0), slope)
            slope = np.clip(slope, 0.1, 3.0)
        prev = (la.copy(), got.copy())
        la = la + np.clip((target - got) / slope, -3.0, 3.0)
        # alphas stay within 1e-3..1e3 of their start values (a target out of reach of one alpha
        # then shows up as converged = false with its residual, not as a runaway value)
        la = np.clip(la, la0 - math.log(1e3), la0 + math.log(1e3))
    record = {
        "method": "secant iteration on ln L vs ln alpha, both fields per iteration "
                  f"(relative tolerance {cal.tolerance})",
        "iterations": len(history),
        "converged": converged,
        "history": history,
        "wall_s": time.perf_counter() - t0,
        ka: {
            "value": history[-1][ka], "paper_value": paper.ALPHA_BR.value,
            "start_value": cfg.electrodes.alphas_um_per_V_s[0],
            "fitted_to": f"L({ef:+g} V/um, {cfg.duration_s / 3600:g} h) = {tf} um (docs/model.md section 1: mu E t "
                         f"on the linear forward branch, paper mobility {paper.MOBILITY.value:g} "
                         f"{paper.MOBILITY.unit})",
            "signed": True,
            "target_um": tf, "achieved_um": history[-1]["L_forward_um"],
            "residual_um": history[-1]["L_forward_um"] - tf},
        kb: {
            "value": history[-1][kb], "paper_value": paper.ALPHA_CL.value,
            "start_value": cfg.electrodes.alphas_um_per_V_s[1],
            "fitted_to": (f"L({er:+g} V/um, {cfg.duration_s / 3600:g} h) = +{tr} um, signed (towards the Br segment)"
                          if cal.reverse_target_signed else
                          f"|L({er:+g} V/um, {cfg.duration_s / 3600:g} h)| = {tr} um, magnitude only")
                         + f" (docs/model.md section 1: rectification ratio ~{paper.RECTIFICATION_RATIO.value:g} of the paper)",
            "signed": bool(cal.reverse_target_signed),
            "target_um": tr, "achieved_um": history[-1]["L_reverse_um"],
            "residual_um": (history[-1]["L_reverse_um"] if cal.reverse_target_signed
                            else abs(history[-1]["L_reverse_um"])) - tr},
    }
    return record


def predict_paper_alphas(cfg: ContinuumConfig, mapper=map) -> dict:
    """The sweep with the paper's electrode rates (Fig. 3 caption) and nothing fitted.

    Returns {"field_V_per_um": [...], "migration_length_um": [...] (signed: > 0 towards the Br
    segment), "rectification_ratio": L(largest forward field) / |L(largest reverse field)|,
    "reverse_sign": the sign of L at the largest reverse field (+1 towards Br, -1 towards Cl),
    "alpha_<A>_um_per_V_s", "alpha_<B>_um_per_V_s"} (A, B the halides)."""
    ka, kb = alpha_keys(cfg.params.halides)
    uncalibrated = dataclasses.replace(with_alphas(cfg, paper.ALPHA_BR.value, paper.ALPHA_CL.value),
                                       calibration_record=None)
    fields = [float(e) for e in cfg.sweep.field_V_per_um]
    summaries = map_fields(uncalibrated, fields, mapper)
    lengths = [float(s["migration_length_um"]) for s in summaries]
    out = {"field_V_per_um": fields, "migration_length_um": lengths,
           ka: paper.ALPHA_BR.value, kb: paper.ALPHA_CL.value}
    out.update(_ratio(fields, lengths))
    return out


def _ratio(fields, lengths) -> dict:
    """rectification_ratio = L(largest forward) / |L(largest reverse)| and reverse_sign."""
    e = np.asarray(fields, dtype=float)
    l_arr = np.asarray(lengths, dtype=float)
    i_fwd, i_rev = int(np.argmax(e)), int(np.argmin(e))
    if not (e[i_fwd] > 0 and e[i_rev] < 0):
        return {"rectification_ratio": None, "reverse_sign": None}
    ratio = float(l_arr[i_fwd] / abs(l_arr[i_rev])) if l_arr[i_rev] != 0 else float("inf")
    return {"rectification_ratio": ratio, "reverse_sign": int(np.sign(l_arr[i_rev])),
            "rectification_fields_V_per_um": [float(e[i_fwd]), float(e[i_rev])]}


def prepare(cfg: ContinuumConfig, mapper=map) -> dict:
    """The calibration fit if cfg.calibration.enabled, else {} (the run type's ``prepare``)."""
    if not cfg.calibration.enabled:
        return {}
    return calibrate(cfg, mapper)


def bind(cfg: ContinuumConfig, record: Mapping[str, Any]) -> ContinuumConfig:
    """cfg with the fitted alphas of ``record`` (from :func:`calibrate`) and the record itself."""
    if not record:
        return cfg
    ka, kb = alpha_keys(cfg.params.halides)
    out = with_alphas(cfg, record[ka]["value"], record[kb]["value"])
    return dataclasses.replace(out, calibration_record=json.dumps(dict(record)))


def expand(cfg: ContinuumConfig) -> list[dict]:
    """[{"field_V_per_um": E} for E in the sweep]; a config with [bias]: its protocol points
    (continuum.protocol.bias_points: [{}] or the dotted bias.* axes of its [sweep])."""
    if cfg.bias is not None:
        from .protocol import bias_points

        return bias_points(cfg.bias, cfg.bias_sweep)
    return [{"field_V_per_um": float(e)} for e in cfg.sweep.field_V_per_um]


# --------------------------------------------------------------------------------------------
# summary and Fig. 1e
# --------------------------------------------------------------------------------------------
def summarize(cfg: ContinuumConfig, points, summaries, wall_s: float | None = None) -> dict:
    """The --json keys (module docstring) from per-field summaries in ``points`` order."""
    fields = [float(p["field_V_per_um"]) for p in points]
    lengths = [float(s["migration_length_um"]) for s in summaries]
    e = np.array(fields)
    l_arr = np.array(lengths)
    out: dict[str, Any] = {"field_V_per_um": fields, "migration_length_um": lengths}
    i_fwd = int(np.argmax(e))
    out.update(_ratio(fields, lengths))
    a, b = cfg.params.halides
    uk = uptake_key(cfg.params.halides)
    out[uk] = float(summaries[i_fwd][uk]) if e[i_fwd] > 0 else None
    out[uk + "_definition"] = (f"volume-weighted mean x_{b} over the original {a} segment (0 <= z <= junction) "
                               f"after {cfg.duration_s:g} s at {e[i_fwd]:+g} V/um")
    out[uk + "_window"] = float(summaries[i_fwd][uk + "_window"]) if e[i_fwd] > 0 else None
    out[uk + "_window_definition"] = (f"volume-weighted mean x_{b} over the {UPTAKE_WINDOW_UM:g} um behind the "
                                      f"initial junction (junction - {UPTAKE_WINDOW_UM:g} um <= z <= junction, {a} side) "
                                      f"after {cfg.duration_s:g} s at {e[i_fwd]:+g} V/um: independent of the {a} segment "
                                      "length; to compare with the PL estimate of ~12 %")
    out["calibrated"] = {k: v for k, v in _calibration_dict(cfg).items() if k.startswith("alpha_")}
    if not out["calibrated"]:
        out["calibrated"] = {}
    cal = cfg.calibration
    out["calibration_targets"] = ([[cal.forward_field_V_per_um, cal.forward_length_um],
                                   [cal.reverse_field_V_per_um, cal.reverse_length_um]]
                                  if out["calibrated"] else [])
    out["duration_s"] = cfg.duration_s
    lo, hi = paper.LINEAR_FORWARD_FROM.value, paper.LARGEST_FIELD.value  # the paper's linear branch
    fwd = (e >= lo - 1e-9) & (e <= hi + 1e-9)
    if fwd.sum() >= 3:
        out["forward_linear_fit"] = dict(linear_fit(e[fwd], l_arr[fwd]), range_V_per_um=[lo, hi])
    rev = e < 0
    if rev.any():
        out["reverse_max_abs_um"] = float(np.max(np.abs(l_arr[rev])))
    ka, kb = alpha_keys(cfg.params.halides)
    out["halides"] = list(cfg.params.halides)
    out["parameters"] = {ka: cfg.electrodes.alphas_um_per_V_s[0],
                         kb: cfg.electrodes.alphas_um_per_V_s[1],
                         "f0": list(f0_used(cfg)),
                         "potential_imposed_at": cfg.geometry.potential_imposed_at}
    out["front_width_um"] = [float(s["front_width_um"]) for s in summaries]
    out["per_field"] = [{k: s[k] for k in ("field_V_per_um", "migration_length_um", "front_um", uk,
                                            uk + "_window", "front_width_um",
                                            "min_fraction", "steps", "newton_iterations", "wall_s") if k in s}
                        for s in summaries]
    out["wall_s"] = float(wall_s) if wall_s is not None else float(sum(s["wall_s"] for s in summaries))
    return out


def plot_fig1e(summary: Mapping[str, Any], path, title: str | None = None) -> None:
    """Fig. 1e (:func:`fig1e_figure`) as PNG at ``path``."""
    import matplotlib.pyplot as plt

    if "prediction_paper_alphas" in summary:  # side by side: paper alphas | calibrated
        from .fig1e_panels import fig1e_pair_figure

        fig = fig1e_pair_figure(summary)
    else:
        fig = fig1e_figure(summary, title)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def fig1e_figure(summary: Mapping[str, Any], title: str | None = None, ax=None):
    """Fig. 1e from a :func:`summarize` dict: migration length after the run against the field,
    with the forward linear fit, the paper's mobility (mu E t at the largest field, for the run's
    duration) and, if the alphas were fitted, the config's calibration targets (|L|); the
    duration is the summary's ``duration_s`` (the config's).  Draws into ``ax`` if given (else a new
    figure) and returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.array(summary["field_V_per_um"])
    l_arr = np.array(summary["migration_length_um"])
    duration_s = float(summary["duration_s"])
    hours = f"{duration_s / 3600.0:.3g} h"
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.8), dpi=150)
    else:
        fig = ax.figure
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.plot(e, l_arr, "o-", color="C0", ms=5, label="continuum model")
    fit = summary.get("forward_linear_fit")
    if fit:
        lo, hi = fit["range_V_per_um"]
        xs = np.linspace(lo, hi, 10)
        ax.plot(xs, fit["slope"] * xs + fit["intercept"], "--", color="C1",
                label=f"linear fit {lo:g}-{hi:g} V/um, $R^2$={fit['r_squared']:.3f}")
    e_max = paper.LARGEST_FIELD.value
    ax.plot([e_max], [paper.mobility_length_um(e_max, duration_s)], "s", mfc="none", color="k",
            label=f"paper mobility: $\\mu E t$ at {e_max:g} V/um")
    targets = summary.get("calibration_targets") or []
    if targets:
        ax.plot([t[0] for t in targets], [t[1] for t in targets], "x", color="C3", ms=8, mew=2,
                label="calibration targets (|L|)")
    ax.set_xlabel("field (V/$\\mu$m)  (negative: reverse)")
    ax.set_ylabel(f"migration length after {hours} ($\\mu$m)")
    ratio = summary.get("rectification_ratio")
    ax.set_title(title or (f"Fig. 1e  (ratio L(+4)/|L(-4)| = {ratio:.1f})" if ratio else "Fig. 1e"), fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    if len(fig.axes) == 1:
        fig.tight_layout()
    return fig


def calibrate_and_create(cfg: ContinuumConfig, out_h5, mapper=map, calibrate_first: bool = True
                         ) -> tuple[ContinuumConfig, float]:
    """The calibration (if enabled and not yet bound), then a fresh result file at out_h5 with
    the bound config; returns (bound config, calibration wall time in s)."""
    cal_wall = 0.0
    if calibrate_first and cfg.calibration.enabled and cfg.calibration_record is None:
        record = calibrate(cfg, mapper)
        cal_wall = record["wall_s"]
        cfg = bind(cfg, record)
    cio.create(out_h5, config_dict(cfg), _calibration_dict(cfg))
    return cfg, cal_wall


def run_sweep(cfg: ContinuumConfig, out_h5, mapper=map, calibrate_first: bool = True,
              figure: str | None = None, progress=None) -> dict:
    """The CLI path: calibration (if enabled), every field of the sweep written to out_h5 as it
    finishes, the summary dict (with wall_s of the whole thing) and the Fig. 1e PNG; all runs
    go through ``mapper`` (see the module docstring).  A config with [bias]:
    continuum.protocol.run_protocol_sweep (figure: the time series)."""
    if cfg.bias is not None:
        from .protocol import run_protocol_sweep

        return run_protocol_sweep(cfg, out_h5, mapper, calibrate_first, figure, progress)
    t0 = time.perf_counter()
    cfg, cal_wall = calibrate_and_create(cfg, out_h5, mapper, calibrate_first)
    t1 = time.perf_counter()

    def write(arrays, summary):
        cio.append_run(out_h5, arrays, _run_attrs(cfg, summary))
        if progress:
            progress(summary)

    points = expand(cfg)
    summaries = map_fields(cfg, [p["field_V_per_um"] for p in points], mapper, write)
    sweep_wall = time.perf_counter() - t1
    out = summarize(cfg, points, summaries)
    if cfg.params.material.set == materials.DEFAULT_SET.name:  # the paper's alphas belong to its Br | Cl wire
        out["prediction_paper_alphas"] = predict_paper_alphas(cfg, mapper)
    out["wall_s"] = time.perf_counter() - t0
    out["sweep_wall_s"] = sweep_wall
    out["calibration_wall_s"] = cal_wall
    out["h5"] = str(out_h5)
    if figure:
        plot_fig1e(out, figure)
        out["figure"] = str(figure)
    return out


class ContinuumRun:
    """The ``continuum`` run type of ``ionwire campaign`` (ionwire.structures.runtype interface):
    one field per run (``continuum.h5`` in its run folder), the alpha calibration as ``prepare``,
    Fig. 1e, its data as a plain table ``fig1e.csv`` and a one-line headline in ``reduce``."""

    name = "continuum"
    load = staticmethod(load_config)
    prepare = staticmethod(prepare)
    bind = staticmethod(bind)
    expand = staticmethod(expand)

    @staticmethod
    def run(cfg, point, outdir):
        result = run_point(cfg, point, outdir)
        result["h5"] = os.path.basename(result["h5"])  # relative to the run folder (renamed when done)
        return result

    @staticmethod
    def reduce(cfg, points, results, outdir):
        import csv

        if cfg.bias is not None:
            from .protocol import reduce_protocols

            return reduce_protocols(cfg, points, results, outdir)
        out = summarize(cfg, points, results)
        if cfg.params.material.set == materials.DEFAULT_SET.name:
            out["prediction_paper_alphas"] = predict_paper_alphas(cfg)
        figure = Path(outdir) / "fig1e.png"
        plot_fig1e(out, figure)
        out["figure"] = str(figure)
        cols = ("field_V_per_um", "migration_length_um", "front_um", uptake_key(cfg.params.halides))
        path = Path(outdir) / "fig1e.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in results:
                w.writerow([r.get(c) for c in cols])
        out["data"] = str(path)
        ratio = out.get("rectification_ratio")
        fit = out.get("forward_linear_fit") or {}
        lengths = dict(zip(out.get("field_V_per_um", []), out.get("migration_length_um", [])))
        parts = [f"figure {figure}, data {path}"]
        if 4.0 in lengths and -4.0 in lengths:
            parts.append(f"L(+4) = {lengths[4.0]:.3f} um, L(-4) = {lengths[-4.0]:.3f} um")
        if ratio is not None:
            parts.append(f"rectification ratio {ratio:.1f}")
        if fit:
            parts.append(f"forward R^2 {fit.get('r_squared', float('nan')):.4f}")
        out["headline"] = "; ".join(parts)
        return out

    @staticmethod
    def fingerprint(cfg):
        d = _plain(cfg)
        d.pop("sweep", None)
        d.pop("bias_sweep", None)
        d.pop("workers", None)
        return d
