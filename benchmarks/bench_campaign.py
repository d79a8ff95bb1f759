"""Campaign benchmark: scheduling overhead and kMC campaign throughput from 1 to 2 workers.

    python benchmarks/bench_campaign.py overhead [--runs 3] [--run-s 10] [--workers 1] [--scheduler local]
    python benchmarks/bench_campaign.py throughput [--config CONFIG.toml] [--runs 8]
    python benchmarks/bench_campaign.py all --json

overhead: a campaign of ``runs`` runs that each compute for ``run_s`` seconds of wall time
(a numpy work loop; the run type lives in this file and is not registered in ionwire).  The
overhead is the time the workers were not inside a run, relative to the run time:

    overhead = (campaign wall x workers - sum of run walls) / sum of run walls

where run walls are measured inside the workers and the campaign wall covers everything
``ionwire campaign`` does (config load, pool start-up, dispatch, result files, index, reduce).
CPU contention from other users lengthens the runs themselves but not this difference.

throughput: the same kMC campaign (the ``bulk`` run type: independent replicas with a fixed
number of events each) with 1 and then 2 local workers; speed-up = wall(1) / wall(2).  This
needs two free cores: on a shared machine the load average is recorded next to the numbers, and a
control measures what the machine gives at that moment without the campaign (two runs in one
plain process against two runs in each of two concurrent processes); campaign / raw is the
campaign's own parallel efficiency.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # workers import this module as ``bench_campaign``


@dataclass(frozen=True)
class SpinConfig:
    run_s: float = 10.0
    sweep: object = None


class Spin:
    """A run that computes (a 64x64 matrix-product loop) for ``run_s`` seconds of wall time."""

    name = "spin"

    @staticmethod
    def load(mapping):
        from ionwire.structures.parameters import from_mapping

        return from_mapping(SpinConfig, mapping)

    @staticmethod
    def expand(config):
        from ionwire.structures.runtype import sweep_points

        return sweep_points(config.sweep, {})

    @staticmethod
    def run(config, point, outdir):
        a = np.random.default_rng(point.get("replica", 0)).standard_normal((64, 64)) / 8
        t_end = time.perf_counter() + config.run_s
        n = 0
        while time.perf_counter() < t_end:
            a = np.tanh(a @ a)
            n += 1
        return {"products": n}

    @staticmethod
    def reduce(config, points, results, outdir):
        return {"products": sum(r["products"] for r in results)}


def _load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load_1min": one, "load_5min": five, "cpus": os.cpu_count()}


def run_campaign_file(cfg: Path, out: Path, workers: int, scheduler: str | None = None) -> dict:
    from ionwire.coupling.campaign import load_spec, run_campaign

    spec = load_spec(cfg)
    load_before = _load()
    t0 = time.perf_counter()
    rep = run_campaign(spec, out, workers=workers, scheduler=scheduler, progress=False)
    wall = time.perf_counter() - t0
    assert not rep.failed and rep.n_new == rep.n_runs, rep.failed
    out = {"runs": rep.n_runs, "workers": workers, "wall_s": wall, "run_wall_s": rep.run_wall_s,
           "load_before": load_before, "load_after": _load(), "executor": rep.executor,
           "overhead_fraction": (wall * workers - rep.run_wall_s) / rep.run_wall_s}
    cpu = [r["cpu_s"] / r["wall_s"] for r in rep.records if r and r.get("cpu_s") is not None and r["wall_s"] > 0]
    # the share of a core each run got (1: a core to itself); low values mean other processes
    # took the cores during the measurement
    out["cpu_share_per_run"] = sum(cpu) / len(cpu) if cpu else None
    if isinstance(rep.summary, dict) and "events_per_second_per_run" in rep.summary:
        # kMC speed inside each run: falls when the workers compete for cores (other users)
        out["events_per_second_per_run"] = rep.summary["events_per_second_per_run"]
    return out


def bench_overhead(runs: int, run_s: float, workers: int, scheduler: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "spin.toml"
        cfg.write_text(f'run = "bench_campaign:Spin"\nrun_s = {run_s}\n[sweep]\nreplicas = {runs}\n')
        r = run_campaign_file(cfg, Path(d) / "out", workers, scheduler)
    r["overhead_fraction"] = (r["wall_s"] * workers - r["run_wall_s"]) / r["run_wall_s"]
    r["overhead_per_run_s"] = (r["wall_s"] * workers - r["run_wall_s"]) / runs
    r["run_s"] = run_s
    return r


_CONTROL = """
import sys, tempfile, time
from pathlib import Path
from ionwire.coupling.campaign import load_spec
spec = load_spec(sys.argv[1])
t = time.perf_counter()
for rp in spec.points[: int(sys.argv[2])]:
    with tempfile.TemporaryDirectory() as d:
        spec.run_type.run(spec.config, rp.point, Path(d))
print(time.perf_counter() - t)
"""


def raw_parallel_speedup(cfg: Path) -> dict:
    """What the machine gives right now, without the campaign: four runs of the config in ONE
    plain process, against two runs in each of TWO concurrent processes (same work)."""
    import subprocess

    def launch(n_runs):
        return subprocess.Popen([sys.executable, "-c", _CONTROL, str(cfg), str(n_runs)], stdout=subprocess.PIPE,
                                text=True)

    t0 = time.perf_counter()
    launch(4).communicate()
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [launch(2), launch(2)]
    for p in procs:
        p.communicate()
    parallel = time.perf_counter() - t0
    return {"one_process_four_runs_s": serial, "two_processes_two_runs_each_s": parallel,
            "raw_speedup": serial / parallel, "load_after": _load()}


def bench_throughput(config: Path, runs: int | None) -> dict:
    text = config.read_text()
    out = {}
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / config.name
        cfg.write_text(text)
        out["control"] = raw_parallel_speedup(cfg)
        for workers in (1, 2):
            out[f"workers_{workers}"] = run_campaign_file(cfg, Path(d) / f"out{workers}", workers)
    w1, w2 = out["workers_1"], out["workers_2"]
    out["speedup_1_to_2"] = w1["wall_s"] / w2["wall_s"]
    # the campaign's share: its speed-up relative to what two plain processes got
    out["efficiency_vs_raw"] = out["speedup_1_to_2"] / out["control"]["raw_speedup"]
    out["runs_per_s"] = {"1": w1["runs"] / w1["wall_s"], "2": w2["runs"] / w2["wall_s"]}
    out["config"] = str(config)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("overhead", "throughput", "all"))
    p.add_argument("--runs", type=int, default=3, help="overhead: number of runs")
    p.add_argument("--run-s", type=float, default=10.0, help="overhead: seconds per run")
    p.add_argument("--workers", type=int, default=1, help="overhead: workers")
    p.add_argument("--scheduler", default=None, help="overhead: dask scheduler ('local' or an address)")
    p.add_argument("--config", type=Path, default=HERE / "bench_campaign_kmc.toml",
                   help="throughput: the kMC campaign config")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    res = {}
    if args.what in ("overhead", "all"):
        res["overhead"] = bench_overhead(args.runs, args.run_s, args.workers, args.scheduler)
    if args.what in ("throughput", "all"):
        res["throughput"] = bench_throughput(args.config, None)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        if "overhead" in res:
            o = res["overhead"]
            print(f"overhead: {o['runs']} runs x {o['run_s']:g} s on {o['executor']}: campaign "
                  f"{o['wall_s']:.2f} s, runs {o['run_wall_s']:.2f} s -> {100 * o['overhead_fraction']:.2f} % "
                  f"({o['overhead_per_run_s']:.3f} s per run); load {o['load_before']['load_1min']:.2f}")
        if "throughput" in res:
            t = res["throughput"]
            w1, w2 = t["workers_1"], t["workers_2"]
            print(f"throughput: {w1['runs']} kMC runs: 1 worker {w1['wall_s']:.2f} s, 2 workers {w2['wall_s']:.2f} s "
                  f"-> speed-up {t['speedup_1_to_2']:.2f}x; kMC events/s per run "
                  f"{w1.get('events_per_second_per_run', float('nan')):.3g} / "
                  f"{w2.get('events_per_second_per_run', float('nan')):.3g}; core share per run "
                  f"{w1['cpu_share_per_run']:.2f} / {w2['cpu_share_per_run']:.2f}; load (1 min) before "
                  f"{w1['load_before']['load_1min']:.2f} / {w2['load_before']['load_1min']:.2f}")
            c = t["control"]
            print(f"control without the campaign: 4 runs in 1 process {c['one_process_four_runs_s']:.2f} s, "
                  f"2 runs in each of 2 processes {c['two_processes_two_runs_each_s']:.2f} s -> raw speed-up "
                  f"{c['raw_speedup']:.2f}x; campaign / raw = {t['efficiency_vs_raw']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
