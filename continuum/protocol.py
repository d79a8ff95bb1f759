"""Bias protocols in the continuum model: runs, observables over time, the AC diode.

The protocol (:class:`ionwire.structures.bias.BiasProtocol`, the ``[bias]`` table) is integrated
interval by interval: the integrator restarts at every switch time (the end of each step, each
edge of a square wave, each vertex of a ramp) and at every zero crossing of a ramp (where the
positive electrode changes sides), so no time step crosses a jump of the field or a kink.
Inside an interval with a constant field the problem is continuum.model.wire_problem at that
field; inside a ramp, time enters the assembly: before every implicit step to t the imposed
potentials psi_d (+-U(t)/2), the electrode field factors r_c ~ |E(t)| and the electrode roles
(the positive electrode is the left contact for E > 0) are set from E(t)
(continuum.model.bias_arrays).

Observables (ContinuumResult time series, continuum.io.TIME_SERIES): front position and
migration length against time; the ionic charge current density of each halide at each
contact's gap edge, i_a = -e c_s J_a (anions carry -e; J_a the face current in site fractions
times velocity), and the total ionic current at the gap centre, i = e c_s J_V = -e c_s (J_Br +
J_Cl); the charge passed through the gap centre, the trapezoid integral of i over the output
times; the applied field and voltage.  Summary per run: the migration length and front at every
interval boundary, the change over each interval (so a rest after a bias shows whether the front
relaxes back or stays), and for square waves the net migration per cycle.

Campaign points: ``[sweep]`` axes name entries of the ``[bias]`` table as TOML dotted keys, e.g.
``bias.square_wave.period_s = [60.0, 120.0]`` (runs/ac_diode.toml) or ``bias.field_V_per_um =
[4.0, -4.0]`` (runs/fig1d.toml); every point is one protocol.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import io as cio
from .model import Problem, bias_arrays, integrate, solution_to_result, wire_problem
from .observables import cl_uptake, cl_uptake_window, front_positions_um, front_width_um
from ionwire.structures.bias import BiasProtocol
from ionwire.structures.errors import ParameterError
from ionwire.structures.parameters import alpha_keys, uptake_key
from ionwire.structures.runtype import Axis, sweep_points
from ionwire.structures.units import ELEMENTARY_CHARGE_C, site_density_per_m3

#: output times of a protocol: at most this many log-spaced times inside each interval
TIMES_PER_INTERVAL = 8


# --------------------------------------------------------------------------------------------
# intervals and output times
# --------------------------------------------------------------------------------------------
def restart_times(protocol: BiasProtocol) -> tuple[float, ...]:
    """The interior times (s) where the integrator restarts: the switch times and the zero
    crossings inside ramp segments (module docstring)."""
    ts = set(protocol.switch_times())
    for t0, t1, e0, e1 in protocol.segments:
        if e0 != e1 and e0 * e1 < 0:
            ts.add(t0 + (t1 - t0) * (-e0) / (e1 - e0))
    return tuple(sorted(ts))


def protocol_intervals(protocol: BiasProtocol) -> list[tuple[float, float]]:
    """[(t_start_s, t_end_s)] between restarts, tiling [0, total_duration_s]."""
    if protocol.total_duration_s is None:
        raise ParameterError("a continuum bias protocol needs a duration: give [bias] duration_s")
    edges = (0.0,) + restart_times(protocol) + (protocol.total_duration_s,)
    return list(zip(edges[:-1], edges[1:]))


def protocol_output_times(protocol: BiasProtocol, n_uniform: int, first_output_s: float) -> list[np.ndarray]:
    """Output times per interval (absolute, s): each interval's end, up to TIMES_PER_INTERVAL
    log-spaced times from first_output_s after its start (fewer when there are many intervals,
    so the total stays ~ 2 n_uniform) and the points of a uniform grid of n_uniform times over
    the protocol that fall inside it.  Returns one increasing array per interval."""
    ivs = protocol_intervals(protocol)
    total = protocol.total_duration_s
    uniform = np.linspace(0.0, total, n_uniform + 1)[1:]
    k = max(0, min(TIMES_PER_INTERVAL, n_uniform // len(ivs)))
    out = []
    for t0, t1 in ivs:
        ts = [t1]
        if k > 0 and t1 - t0 > first_output_s:
            ts += list(t0 + np.geomspace(first_output_s, t1 - t0, k + 1)[:-1])
        ts += [t for t in uniform if t0 < t < t1 * (1 - 1e-12)]
        arr = np.unique(np.asarray(ts, dtype=float))
        arr = arr[arr > t0 * (1 + 1e-15)]
        out.append(arr)
    return out


# --------------------------------------------------------------------------------------------
# integration
# --------------------------------------------------------------------------------------------
class RampBias:
    """The time dependence of a ramp interval (Problem.at_time): sets psi_d, src_fac and rd_on
    from the protocol's field at the step's time (pure Python per step; picklable)."""

    def __init__(self, params, protocol: BiasProtocol, t_offset_s: float):
        self.params = params
        self.protocol = protocol
        self.t_offset_s = float(t_offset_s)

    def __call__(self, prob: Problem, t_local_s: float) -> None:
        t = min(self.t_offset_s + t_local_s, self.protocol.total_duration_s)
        _, psi_d, fac, rd_on, _ = bias_arrays(self.params, prob.mesh, self.protocol.field_at(t))
        prob.psi_d[:] = psi_d
        prob.src_fac[:] = fac
        prob.rd_on[:] = rd_on


def _interval_field(protocol: BiasProtocol, t0: float, t1: float) -> tuple[bool, float]:
    """(constant, field): whether E is constant on (t0, t1), and its value at the midpoint."""
    tm = 0.5 * (t0 + t1)
    if protocol.function is not None:
        return protocol.callable_piecewise_constant, protocol.field_at(tm)
    s = protocol.segment_at(tm)
    return s[2] == s[3], protocol.field_at(tm)


def simulate_protocol(params, protocol: BiasProtocol, numerics, onsager=None, f0: float | None = None,
                      n_uniform: int | None = None):
    """Integrate the wire through the protocol (module docstring); returns a ContinuumResult
    with the profiles at t = 0 and the output times of :func:`protocol_output_times`
    (n_uniform default: 4 * numerics.n_outputs), its time series (continuum.io.TIME_SERIES),
    front_um and migration_length_um, and metadata: bias (the [bias] table), restart_times_s,
    intervals, solver statistics summed over the intervals."""
    from .model import default_f0
    from ionwire.structures.parameters import check_field

    check_field(protocol.max_abs_field(), "the bias protocol's largest |field_V_per_um|")
    if onsager is None and f0 is None:
        f0 = default_f0()[0]
    n_uniform = 4 * numerics.n_outputs if n_uniform is None else int(n_uniform)
    ivs = protocol_intervals(protocol)
    times = protocol_output_times(protocol, n_uniform, numerics.first_output_s)
    base = wire_problem(params, protocol.field_at(0.0), numerics, onsager, f0)
    y = base.y0.copy()
    ys = [y.copy()]
    ts = [0.0]
    fields = [protocol.field_at(0.0)]
    qv, qb = [0.0], [0.0]
    qv_off = qb_off = 0.0
    stats = {"steps": 0, "rejected": 0, "newton_iterations": 0, "jacobian_evaluations": 0, "restarts": len(ivs) - 1}
    for (t0, t1), t_out in zip(ivs, times):
        constant, e_mid = _interval_field(protocol, t0, t1)
        prob = wire_problem(params, e_mid, numerics, onsager, f0, mesh=base.mesh)
        prob.y0 = y
        if not constant:
            prob.at_time = RampBias(params, protocol, t0)
            prob.at_time(prob, 0.0)
        local = np.concatenate(([0.0], t_out - t0))
        sol = integrate(prob, local, numerics.rtol, numerics.initial_step_s, numerics.max_steps)
        for k in ("steps", "rejected", "newton_iterations", "jacobian_evaluations"):
            stats[k] += int(sol.stats.get(k, 0))
        ys.extend(sol.y[1:])
        ts.extend(t_out)
        # the field under which each output state was computed: the left limit at the interval end
        fields.extend(protocol.field_at(min(t, t1 - 1e-9 * max(1.0, t1 - t0))) if t >= t1 * (1 - 1e-15)
                      else protocol.field_at(t) for t in t_out)
        qv.extend(qv_off + sol.q_v[1:])
        qb.extend(qb_off + sol.q_br[1:])
        qv_off, qb_off = qv[-1], qb[-1]
        y = sol.y[-1].copy()
    from .model import Solution

    sol_all = Solution(np.asarray(ts), np.asarray(ys), np.asarray(qv), np.asarray(qb), stats)
    meta = {"bias": protocol.to_mapping(), "bias_kind": protocol.kind, "field_V_per_um": float(protocol.field_at(0.0)),
            "duration_s": float(protocol.total_duration_s), "junction_um": params.geometry.junction_um,
            "n_nodes": base.n, "restart_times_s": list(restart_times(protocol))}
    res = solution_to_result(base, sol_all, meta)
    _add_time_series(res, params, base, np.asarray(fields))
    return res


def _add_time_series(res, params, prob: Problem, fields: np.ndarray) -> None:
    geo = params.geometry
    zj = geo.junction_um
    front = front_positions_um(res.z_um, res.x_br, zj)
    res.front_um, res.migration_length_um = front, front[0] - front
    res.metadata["front_um"], res.metadata["migration_length_um_t"] = res.front_um, res.migration_length_um
    res.applied_field = fields
    res.applied_voltage = np.array([geo.applied_voltage_V(e) for e in fields])
    (l0, l1), (r0, r1) = geo.contacts_um()
    mesh = prob.mesh
    i_left = mesh.index_of(l1)            # face i_left: between the left contact's inner edge node and the gap
    i_right = mesh.index_of(r0) - 1       # face before the right contact's inner edge node
    zf = 0.5 * (res.z_um[:-1] + res.z_um[1:])
    i_gap = int(np.argmin(np.abs(zf - 0.5 * (l1 + r0))))
    # site fractions * um/s -> A/m2: e c_s * 1e-6 m/um
    scale = ELEMENTARY_CHARGE_C * site_density_per_m3(params.material.lattice_constant_A) * 1e-6
    j_br, j_v = res.j_br, res.j_v
    j_cl = -(j_v + j_br)
    res.current_br_left = -scale * j_br[:, i_left]
    res.current_cl_left = -scale * j_cl[:, i_left]
    res.current_br_right = -scale * j_br[:, i_right]
    res.current_cl_right = -scale * j_cl[:, i_right]
    res.current_gap = scale * j_v[:, i_gap]
    t = res.times_s
    res.charge_passed = np.concatenate(([0.0], np.cumsum(0.5 * (res.current_gap[1:] + res.current_gap[:-1])
                                                         * np.diff(t))))


# --------------------------------------------------------------------------------------------
# observables
# --------------------------------------------------------------------------------------------
def _at(res, t: float, field: str = "migration_length_um") -> float:
    i = int(np.argmin(np.abs(res.times_s - t)))
    if abs(res.times_s[i] - t) > 1e-9 * max(1.0, t):
        raise ValueError(f"no output at t = {t} s")
    return float(getattr(res, field)[i])


def interval_table(res, protocol: BiasProtocol) -> list[dict]:
    """Per interval between restarts: t_start_s, t_end_s, field at its midpoint, L and front at
    both ends, the change of L, the charge passed over it (C/m2) and the front width at its end."""
    rows = []
    for t0, t1 in protocol_intervals(protocol):
        l0, l1 = _at(res, t0), _at(res, t1)
        i1 = int(np.argmin(np.abs(res.times_s - t1)))
        rows.append({"t_start_s": t0, "t_end_s": t1, "field_V_per_um": protocol.field_at(0.5 * (t0 + t1)),
                     "migration_length_start_um": l0, "migration_length_end_um": l1, "change_um": l1 - l0,
                     "front_end_um": _at(res, t1, "front_um"),
                     "charge_passed_C_per_m2": _at(res, t1, "charge_passed") - _at(res, t0, "charge_passed"),
                     "front_width_end_um": _finite(front_width_um(res.z_um, res.x_br[i1], res.front_um[i1]))})
    return rows


def net_migration_per_cycle(res, protocol: BiasProtocol) -> dict:
    """For a square wave: L at every cycle boundary, the net change of L over each cycle (um;
    > 0 towards the Br segment), its mean over the cycles after the first and the forward and
    reverse half-cycle excursions of the last cycle."""
    d = protocol.to_mapping().get("square_wave")
    if d is None:
        raise ParameterError("net_migration_per_cycle needs a square-wave protocol")
    p, n = float(d["period_s"]), int(d["cycles"])
    tm = float(d["duty"]) * p
    ends = [_at(res, min(k * p, protocol.total_duration_s)) for k in range(n + 1)]
    per = list(np.diff(ends))
    later = per[1:] if len(per) > 1 else per
    last_mid = _at(res, (n - 1) * p + tm)
    return {"period_s": p, "frequency_Hz": 1.0 / p, "amplitude_V_per_um": float(d["amplitude_V_per_um"]),
            "cycles": n, "migration_length_at_cycle_ends_um": ends, "net_per_cycle_um": per,
            "net_migration_per_cycle_um": float(np.mean(later)),
            "first_half_change_um": last_mid - ends[-2], "second_half_change_um": ends[-1] - last_mid}


def _finite(v):
    return float(v) if v is not None and np.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# configs: points of a protocol campaign, one run, the sweep, the summary
# --------------------------------------------------------------------------------------------
_BIAS_AXIS = Axis(float, -1e12, 1e12, "a number of the [bias] table")


def _flatten(table: Mapping[str, Any], prefix: str) -> dict:
    out = {}
    for k, v in table.items():
        key = f"{prefix}.{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def bias_points(bias: BiasProtocol, sweep_json: str | None) -> list[dict]:
    """The points of a protocol config: [{}] (one run) or the [sweep] over dotted [bias] keys;
    every point's protocol is built here once, so a bad value fails at load time."""
    sweep = json.loads(sweep_json) if sweep_json else {}
    flat = {}
    for k, v in sweep.items():
        if isinstance(v, Mapping):
            flat.update(_flatten(v, k))
        else:
            flat[k] = v
    for k in flat:
        if k in ("combine", "replicas"):
            continue
        if not k.startswith("bias."):
            raise ParameterError(f"sweep.{k}: a config with [bias] sweeps entries of the bias table, as dotted keys "
                                 f"such as bias.square_wave.period_s")
    axes = {k: _BIAS_AXIS for k in flat if k not in ("combine", "replicas")}
    points = sweep_points(flat, axes) if axes else [{}]
    for pt in points:
        protocol_of(bias, pt)
    return points


def protocol_of(bias: BiasProtocol, point: Mapping[str, Any]) -> BiasProtocol:
    """The protocol of one point: the [bias] table with the point's dotted keys replaced."""
    keys = [k for k in point if k.startswith("bias.")]
    if not keys:
        return bias
    table = copy.deepcopy(bias.to_mapping())
    for k in keys:
        parts = k.split(".")[1:]
        node = table
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise ParameterError(f"sweep.{k}: the [bias] table has no [{'.'.join(['bias'] + parts[:-1])}]")
            node = node[part]
        if parts[-1] not in node and not (parts[-1] in ("offset_V_per_um", "duty", "ramp_step_s")):
            raise ParameterError(f"sweep.{k}: the [bias] table has no {'.'.join(['bias'] + parts)} to sweep")
        value = point[k]
        if parts[-1] == "cycles":
            value = int(value)
        node[parts[-1]] = value
    return BiasProtocol.from_mapping(table, where="[bias]")


def run_protocol(cfg, point: Mapping[str, Any] | None = None, onsager=None):
    """One protocol run of a continuum config with [bias]: (ContinuumResult, JSON-able summary).

    Summary keys: bias (the [bias] table of the point), field_V_per_um (the field at t = 0),
    migration_length_um and front_um at the end, times_s, migration_length_um_t, front_um_t,
    applied_field_t, current_gap_A_per_m2_t, charge_passed_C_per_m2_t (lists over the output
    times), charge_passed_C_per_m2 (at the end), intervals (:func:`interval_table`), ac (square
    waves: :func:`net_migration_per_cycle`), cl_uptake, cl_uptake_window, front_width_um,
    min_fraction, solver statistics, wall_s, cpu_s."""
    from .experiment import _onsager, f0_used

    t0 = time.perf_counter()
    c0 = time.process_time()
    protocol = protocol_of(cfg.bias, point or {})
    if onsager is None:
        onsager = _onsager(cfg)
    f0, _ = f0_used(cfg)
    res = simulate_protocol(cfg.params, protocol, cfg.numerics, onsager=onsager, f0=f0)
    zj = cfg.geometry.junction_um
    lengths = res.migration_length_um
    summary: dict[str, Any] = {
        "bias": protocol.to_mapping(),
        "point": dict(point or {}),
        "field_V_per_um": float(protocol.field_at(0.0)),
        "duration_s": float(protocol.total_duration_s),
        "migration_length_um": float(lengths[-1]),
        "front_um": float(res.front_um[-1]),
        "charge_passed_C_per_m2": float(res.charge_passed[-1]),
        uptake_key(cfg.params.halides): cl_uptake(res.z_um, res.volume_um, res.x_cl[-1], zj),
        uptake_key(cfg.params.halides) + "_window": cl_uptake_window(res.z_um, res.x_cl[-1], zj),
        "front_width_um": _finite(front_width_um(res.z_um, res.x_br[-1], res.front_um[-1])),
        "times_s": res.times_s.tolist(),
        "migration_length_um_t": [_finite(v) for v in lengths],
        "front_um_t": [_finite(v) for v in res.front_um],
        "applied_field_t": res.applied_field.tolist(),
        "current_gap_A_per_m2_t": res.current_gap.tolist(),
        "charge_passed_C_per_m2_t": res.charge_passed.tolist(),
        "intervals": interval_table(res, protocol),
        "min_fraction": float(min(res.x_br.min(), res.x_cl.min())),
        "n_nodes": int(res.z_um.size),
        "steps": int(res.metadata["solver_steps"]),
        "restarts": int(res.metadata["solver_restarts"]),
        "newton_iterations": int(res.metadata["solver_newton_iterations"]),
    }
    if protocol.kind == "square_wave":
        summary["ac"] = net_migration_per_cycle(res, protocol)
    summary["wall_s"] = time.perf_counter() - t0
    summary["cpu_s"] = time.process_time() - c0
    return res, summary


def result_arrays(res) -> dict[str, np.ndarray]:
    return {k: v for k, v in res.arrays.items()}


def _run_attrs(cfg, summary: dict) -> dict:
    return {"field_V_per_um": summary["field_V_per_um"], "migration_length_um": summary["migration_length_um"],
            uptake_key(cfg.params.halides): summary[uptake_key(cfg.params.halides)],
            "junction_um": cfg.geometry.junction_um,
            "label": "bias " + json.dumps(summary["bias"], sort_keys=True), "bias": json.dumps(summary["bias"]),
            "summary": summary}


def _worker(args):
    cfg, point = args
    res, summary = run_protocol(cfg, point)
    return result_arrays(res), summary


def run_protocol_point(cfg, point: Mapping[str, Any], outdir) -> dict:
    """One campaign point: writes outdir/continuum.h5, returns the summary (with "h5")."""
    from .experiment import _calibration_dict, config_dict

    res, summary = run_protocol(cfg, point)
    path = Path(outdir) / "continuum.h5"
    cio.create(path, config_dict(cfg), _calibration_dict(cfg))
    cio.append_run(path, result_arrays(res), _run_attrs(cfg, summary))
    summary["h5"] = str(path)
    return summary


def run_protocol_sweep(cfg, out_h5, mapper=map, calibrate_first: bool = True, figure: str | None = None,
                       progress=None, kymograph: str | None = None) -> dict:
    """The CLI path of a config with [bias]: the calibration (if enabled; at the config's
    duration_s, the paper's 4 h by default), every point's protocol written to out_h5, the
    summary (:func:`summarize_protocols`), the time-series figure (with ramps also
    ``<figure>_iv.png``, the I-V loop; with square waves ``<figure>_ac.png``, the net migration
    per cycle against frequency) and, if given, the PL kymograph (continuum.pl) of every run."""
    from .experiment import calibrate_and_create

    t0 = time.perf_counter()
    cfg, cal_wall = calibrate_and_create(cfg, out_h5, mapper, calibrate_first)
    points = bias_points(cfg.bias, cfg.bias_sweep)
    t1 = time.perf_counter()
    summaries = []
    iv = []
    for arrays, summary in mapper(_worker, [(cfg, p) for p in points]):
        cio.append_run(out_h5, arrays, _run_attrs(cfg, summary))
        if progress:
            progress(summary)
        summaries.append(summary)
        if not {"ramp", "triangle"}.isdisjoint(summary["bias"]):
            iv.append({k: arrays[k] for k in ("times_s", "applied_voltage", "current_gap")})
    out = summarize_protocols(cfg, points, summaries)
    out["wall_s"] = time.perf_counter() - t0
    out["runs_wall_s"] = time.perf_counter() - t1
    out["calibration_wall_s"] = cal_wall
    out["h5"] = str(out_h5)
    if figure:
        plot_protocols(out, figure)
        out["figure"] = str(figure)
        if iv:
            path = Path(figure).with_name(Path(figure).stem + "_iv.png")
            plot_iv(iv, path)
            out["iv_figure"] = str(path)
        if "ac" in out:
            path = Path(figure).with_name(Path(figure).stem + "_ac.png")
            plot_ac(out, path)
            out["ac_figure"] = str(path)
    if kymograph:
        from .pl import plot_kymograph_file

        plot_kymograph_file(out_h5, kymograph)
        out["kymograph"] = str(kymograph)
    return out


def summarize_protocols(cfg, points, summaries) -> dict:
    """The --json keys of a [bias] config: field_V_per_um (list: each run's field at t = 0),
    migration_length_um (list: each run's L at the end of its protocol; signed, > 0 towards the
    Br segment), duration_s (list), charge_passed_C_per_m2 (list), bias (list of [bias]
    tables), points, calibrated, parameters, ac (square waves: frequency_Hz, period_s,
    amplitude_V_per_um, net_migration_per_cycle_um lists), per_run (the run summaries without
    their long lists) and wall_s."""
    from .experiment import _calibration_dict

    out: dict[str, Any] = {
        "field_V_per_um": [s["field_V_per_um"] for s in summaries],
        "migration_length_um": [s["migration_length_um"] for s in summaries],
        "duration_s": [s["duration_s"] for s in summaries],
        "charge_passed_C_per_m2": [s["charge_passed_C_per_m2"] for s in summaries],
        "bias": [s["bias"] for s in summaries],
        "points": [dict(p) for p in points],
        "calibrated": {k: v for k, v in _calibration_dict(cfg).items() if k.startswith("alpha_")},
        "halides": list(cfg.params.halides),
        "parameters": {**dict(zip(alpha_keys(cfg.params.halides), cfg.electrodes.alphas_um_per_V_s)),
                       "n_nodes": cfg.numerics.n_nodes, "rtol": cfg.numerics.rtol},
    }
    acs = [s["ac"] for s in summaries if "ac" in s]
    if acs:
        out["ac"] = {k: [a[k] for a in acs] for k in ("frequency_Hz", "period_s", "amplitude_V_per_um", "cycles",
                                                      "net_migration_per_cycle_um")}
    long_keys = {"times_s", "migration_length_um_t", "front_um_t", "applied_field_t", "current_gap_A_per_m2_t",
                 "charge_passed_C_per_m2_t"}
    out["per_run"] = [{k: v for k, v in s.items() if k not in long_keys} for s in summaries]
    out["series"] = [{k: s[k] for k in long_keys if k in s} for s in summaries]
    out["wall_s"] = float(sum(s["wall_s"] for s in summaries))
    return out


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def plot_protocols(summary: Mapping[str, Any], path=None, axes=None):
    """Migration length, field and gap current against time for every run of a
    :func:`summarize_protocols` dict (the net migration per cycle of square waves:
    :func:`plot_ac`).  Draws into ``axes`` (three Axes) if given; writes ``path`` if given;
    returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = summary["series"]
    if axes is None:
        fig, axes = plt.subplots(3, 1, figsize=(6.0, 6.5), dpi=130, sharex=True)
    else:
        fig = axes[0].figure
    for k, s in enumerate(series):
        t_h = np.asarray(s["times_s"]) / 3600.0
        label = _label(summary["bias"][k])
        axes[0].plot(t_h, np.asarray(s["migration_length_um_t"], dtype=float), label=label)
        axes[1].plot(t_h, s["applied_field_t"], drawstyle="steps-pre")
        axes[2].plot(t_h, s["current_gap_A_per_m2_t"])
    axes[0].set_ylabel("migration length ($\\mu$m)")
    axes[1].set_ylabel("field (V/$\\mu$m)")
    axes[2].set_ylabel("ionic current, gap (A/m$^2$)")
    axes[2].set_xlabel("time (h)")
    if len(series) <= 8:
        axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    """``fig`` written to ``path`` and closed if a path is given; ``fig`` either way."""
    if path is not None:
        import matplotlib.pyplot as plt

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return fig


def _label(bias: Mapping[str, Any]) -> str:
    if "field_V_per_um" in bias:
        return f"{bias['field_V_per_um']:+g} V/um"
    if "square_wave" in bias:
        w = bias["square_wave"]
        return f"+-{w['amplitude_V_per_um']:g} V/um, period {w['period_s']:g} s"
    return next(iter(bias))


def plot_ac(summary: Mapping[str, Any], path=None, ax=None):
    """Net migration per cycle against frequency (log-log of |net|, filled markers > 0 towards
    the Br segment, open < 0), one line per amplitude, with the slope -1 line of a constant net
    drift velocity for reference.  Draws into ``ax`` if given; writes ``path`` if given; returns
    the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ac = summary["ac"]
    f = np.asarray(ac["frequency_Hz"])
    net = np.asarray(ac["net_migration_per_cycle_um"])
    amp = np.asarray(ac["amplitude_V_per_um"])
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.8), dpi=140)
    else:
        fig = ax.figure
    for k, a in enumerate(sorted(set(amp.tolist()))):
        sel = amp == a
        order = np.argsort(f[sel])
        ff, nn = f[sel][order], net[sel][order] * 1e3
        ax.plot(ff, np.abs(nn), "-", color=f"C{k}", lw=1)
        ax.plot(ff[nn > 0], nn[nn > 0], "o", color=f"C{k}", label=f"$\\pm${a:g} V/$\\mu$m")
        ax.plot(ff[nn <= 0], -nn[nn <= 0], "o", mfc="none", color=f"C{k}")
    if f.size:
        ref = np.abs(net[np.argmin(f)]) * 1e3 * f.min() / np.sort(f)
        ax.plot(np.sort(f), ref, ":", color="0.5", label="constant net drift (slope -1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("|net migration per cycle| (nm)")
    first = (summary.get("halides") or ["Br"])[0]
    ax.set_title(f"ionic diode under a square wave (filled: towards {first})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def plot_iv(runs, path=None, ax=None):
    """The ionic I-V loop of ramp or triangle runs (a ContinuumResult, or a list of them or of
    dicts with times_s, applied_voltage, current_gap): total ionic current at the gap centre
    against the applied voltage, coloured by time.  Draws into ``ax`` if given; writes ``path``
    if given; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(runs, (list, tuple)):
        runs = [runs]
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.8, 3.8), dpi=140)
    else:
        fig = ax.figure
    for r in runs:
        get = (lambda k: r[k]) if isinstance(r, Mapping) else (lambda k: getattr(r, k))
        v, i, t = get("applied_voltage"), get("current_gap"), np.asarray(get("times_s"))
        sc = ax.scatter(v, i, c=t / 3600.0, s=6, cmap="viridis")
        ax.plot(v, i, color="0.6", lw=0.6, zorder=0)
    fig.colorbar(sc, ax=ax, label="time (h)")
    ax.set_xlabel("applied voltage (V)")
    ax.set_ylabel("ionic current density, gap (A/m$^2$)")
    fig.tight_layout()
    return _finish(fig, path)


def reduce_protocols(cfg, points, results, outdir) -> dict:
    """The campaign summary of a [bias] config: :func:`summarize_protocols`, the time-series
    figure (bias.png), with square waves the net migration per cycle against frequency
    (ac_diode.png) and its table (ac_diode.csv), and a headline."""
    import csv

    out = summarize_protocols(cfg, points, results)
    outdir = Path(outdir)
    plot_protocols(out, outdir / "bias.png")
    out["figure"] = str(outdir / "bias.png")
    parts = [f"figure {out['figure']}"]
    if "ac" in out:
        plot_ac(out, outdir / "ac_diode.png")
        path = outdir / "ac_diode.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            cols = ("frequency_Hz", "period_s", "amplitude_V_per_um", "cycles", "net_migration_per_cycle_um")
            w.writerow(cols)
            for row in zip(*(out["ac"][c] for c in cols)):
                w.writerow(row)
        out["ac_figure"], out["data"] = str(outdir / "ac_diode.png"), str(path)
        net = out["ac"]["net_migration_per_cycle_um"]
        parts.append(f"AC diode: {len(net)} runs, net migration per cycle {min(net) * 1e3:+.3g} .. "
                     f"{max(net) * 1e3:+.3g} nm ({out['ac_figure']})")
    else:
        parts.append("L at the end: " + ", ".join(f"{v:+.3f} um" for v in out["migration_length_um"]))
    out["headline"] = "; ".join(parts)
    return out
