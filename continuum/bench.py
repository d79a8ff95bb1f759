"""Benchmark of the Fig. 1e sweep (``python -m continuum.bench`` or ``ionwire bench continuum``).

Times, for runs/fig1e.toml (17 fields, 4 h each, 1000 nodes): the calibration fit and the sweep
with the fitted alphas, as wall time and as CPU time (this process plus its worker processes),
with the machine's load average before and after, since the 2-core machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time


def _cpu_s() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def benchmark_sweep(config="runs/fig1e.toml", workers: int | None = None, calibrate: bool = True) -> dict:
    """Time the calibration and the sweep of ``config``; returns a JSON-able dict."""
    from .experiment import bind, calibrate as fit, load_config_file, map_fields, warm_up

    cfg = load_config_file(config)
    workers = workers or cfg.workers
    warm_up()  # numba kernels loaded from the cache (compilation is not timed)
    load0 = os.getloadavg()[0]
    out = {"config": str(config), "workers": workers, "n_fields": len(cfg.sweep.field_V_per_um),
           "n_nodes": cfg.numerics.n_nodes, "duration_s": cfg.duration_s,
           "integrator": cfg.numerics.integrator}
    if calibrate and cfg.calibration.enabled:
        c0, t0 = _cpu_s(), time.perf_counter()
        record = fit(cfg, workers)
        out["calibration_wall_s"] = time.perf_counter() - t0
        out["calibration_cpu_s"] = _cpu_s() - c0
        out["calibration_iterations"] = record["iterations"]
        cfg = bind(cfg, record)
    c0, t0 = _cpu_s(), time.perf_counter()
    summaries = map_fields(cfg, cfg.sweep.field_V_per_um, workers)
    out["sweep_wall_s"] = time.perf_counter() - t0
    out["sweep_cpu_s"] = _cpu_s() - c0
    out["steps_total"] = sum(s["steps"] for s in summaries)
    out["newton_iterations_total"] = sum(s["newton_iterations"] for s in summaries)
    out["jacobian_evaluations_total"] = sum(s["jacobian_evaluations"] for s in summaries)
    out["L_plus4_um"] = summaries[-1]["migration_length_um"]
    out["load_average_before_after"] = [load0, os.getloadavg()[0]]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="runs/fig1e.toml")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--no-calibrate", action="store_true")
    args = ap.parse_args(argv)
    print(json.dumps(benchmark_sweep(args.config, args.workers, not args.no_calibrate), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
