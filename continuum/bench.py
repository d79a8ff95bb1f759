"""Benchmark of the Fig. 1e sweep (``ionwire bench continuum``).

Times, for runs/fig1e.toml (17 fields, 4 h each, 1000 nodes): the calibration fit and the sweep
with the fitted alphas, as wall time and as CPU time (this process plus the CPU time of every
run done in another process, measured there), with the machine's load average before and
after, since the 2-core machine is shared.  The runs go through the caller's mapper; its
workers load the numba kernels before the clock starts.
"""
from __future__ import annotations

import functools
import os
import time


def _timed_call(fn, arg):
    """(fn(arg), CPU seconds it took, process id): runs in the mapper's worker."""
    c0 = time.process_time()
    result = fn(arg)
    return result, time.process_time() - c0, os.getpid()


class _CPUCountingMapper:
    """Wraps a mapper; adds up the CPU time of the calls that ran in other processes."""

    def __init__(self, mapper):
        self.mapper = mapper
        self.other_processes_cpu_s = 0.0

    def __call__(self, fn, iterable):
        me = os.getpid()
        for result, cpu_s, pid in self.mapper(functools.partial(_timed_call, fn), iterable):
            if pid != me:
                self.other_processes_cpu_s += cpu_s
            yield result


def benchmark_sweep(config="runs/fig1e.toml", mapper=map, workers: int = 1, calibrate: bool = True) -> dict:
    """Time the calibration and the sweep of ``config`` with ``mapper`` (``map`` semantics;
    ``workers``: how many processes it uses, for the record); returns a JSON-able dict with
    calibration_wall_s, calibration_cpu_s, sweep_wall_s, sweep_cpu_s, ..."""
    from .experiment import bind, calibrate as fit, load_config_file, map_fields, warm_up

    cfg = load_config_file(config)
    warm_up()  # numba kernels loaded from the cache (compilation is not timed) ...
    list(mapper(warm_up, range(workers)))  # ... here and in the mapper's workers
    load0 = os.getloadavg()[0]
    out = {"config": str(config), "workers": workers, "n_fields": len(cfg.sweep.field_V_per_um),
           "n_nodes": cfg.numerics.n_nodes, "duration_s": cfg.duration_s}
    if calibrate and cfg.calibration.enabled:
        counting = _CPUCountingMapper(mapper)
        c0, t0 = time.process_time(), time.perf_counter()
        record = fit(cfg, counting)
        out["calibration_wall_s"] = time.perf_counter() - t0
        out["calibration_cpu_s"] = time.process_time() - c0 + counting.other_processes_cpu_s
        out["calibration_iterations"] = record["iterations"]
        cfg = bind(cfg, record)
    counting = _CPUCountingMapper(mapper)
    c0, t0 = time.process_time(), time.perf_counter()
    summaries = map_fields(cfg, cfg.sweep.field_V_per_um, counting)
    out["sweep_wall_s"] = time.perf_counter() - t0
    out["sweep_cpu_s"] = time.process_time() - c0 + counting.other_processes_cpu_s
    out["steps_total"] = sum(s["steps"] for s in summaries)
    out["newton_iterations_total"] = sum(s["newton_iterations"] for s in summaries)
    out["jacobian_evaluations_total"] = sum(s["jacobian_evaluations"] for s in summaries)
    out["L_plus4_um"] = summaries[-1]["migration_length_um"]
    out["load_average_before_after"] = [load0, os.getloadavg()[0]]
    return out
