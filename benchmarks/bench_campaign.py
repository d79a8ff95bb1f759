"""Campaign benchmark: scheduling overhead and kMC campaign throughput from 1 to 2 workers.

    python benchmarks/bench_campaign.py overhead [--runs 3] [--run-s 10] [--workers 1] [--scheduler local]
    python benchmarks/bench_campaign.py throughput [--sizes in_cache_16,out_of_cache_128] [--rounds 2]
    python benchmarks/bench_campaign.py all --json

overhead: a campaign of ``runs`` runs that each compute for ``run_s`` seconds of wall time
(a numpy work loop; the run type lives in this file and is not registered in ionwire).  The
overhead is the time the workers were not inside a run, relative to the run time:

    overhead = (campaign wall x workers - sum of run walls) / sum of run walls

where run walls are measured inside the workers and the campaign wall covers everything
``ionwire campaign`` does (config load, pool start-up, dispatch, result files, index, reduce).
CPU contention from other users lengthens the runs themselves but not this difference.

throughput: a kMC campaign (the ``bulk`` run type: independent replicas with a fixed number of
events each) with 1 and 2 local workers; speed-up = wall(1) / wall(2).  This needs two free
cores, so a control measures what the machine gives without the campaign: the same runs in one
plain process against half of them in each of two concurrent processes (raw speed-up); campaign
/ raw is the campaign's own parallel efficiency.  Control and campaign are interleaved (control
1 process, campaign 1 worker, control 2 processes, campaign 2 workers, repeated ``--rounds``
times) so both see the machine at the same moments; medians over the rounds are reported with
every round and its load average.  Two replica sizes: 16^3 cells (state ~0.2 MB, fits in L2: the
best case) and 128^3 cells (~90 MB, beyond any cache: the two workers share memory bandwidth).
The template is ``bench_campaign_kmc.toml`` (``--config``); ``--sizes ''`` runs it as given.
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
from ionwire.kmc.bulk import BulkKMC
from ionwire.kmc.state import BulkState
from ionwire.structures.lattice import AnionLattice
# imports and kernel loading before the start signal (a campaign worker has them loaded too)
BulkKMC(BulkState.random(AnionLattice(4, 4, 4), 0.5, 3, 0)).run(100)
spec = load_spec(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
t = time.perf_counter()
for rp in spec.points[: int(sys.argv[2])]:
    with tempfile.TemporaryDirectory() as d:
        spec.run_type.run(spec.config, rp.point, Path(d))
print(time.perf_counter() - t, flush=True)
"""


def _control(cfg: Path, shares: list[int]) -> float:
    """Wall time from a common start signal until every plain process (no campaign) has done its
    share of the config's runs; process start-up, imports and kernel loading happen before the
    signal."""
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", _CONTROL, str(cfg), str(k)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for k in shares]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.communicate()
        if p.returncode:
            raise RuntimeError(f"control process failed (exit {p.returncode})")
    return time.perf_counter() - t0


def control_serial(cfg: Path, runs: int) -> float:
    """Wall time of ``runs`` runs of the config in ONE plain process."""
    return _control(cfg, [runs])


def control_parallel(cfg: Path, runs: int) -> float:
    """Wall time of half the runs in each of TWO concurrent plain processes (same work)."""
    return _control(cfg, [runs // 2, runs - runs // 2])


# replica sizes of the throughput benchmark: 16^3 cells (12,288 sites, ~0.2 MB of state: fits in
# L2, the best case) and 128^3 cells (6.3 M sites, ~90 MB: far beyond any cache, every hop's
# neighbourhood is a main-memory access, and two workers share the memory bandwidth)
SIZES = {"in_cache_16": {"cells": 16, "events": 10_000_000},
         "out_of_cache_128": {"cells": 128, "events": 8_000_000}}


def size_config(template: str, cells: int, events: int, replicas: int) -> str:
    """The kMC campaign config ``template`` with cubic replicas of ``cells``^3 cells, ``events``
    hops each and ``replicas`` replicas.  The blocks per replica are cut so that each block keeps
    at least 100 hops per vacancy (1 % vacancies), as the bulk config requires."""
    import re

    out = re.sub(r"(?m)^cells = .*$", f"cells = [{cells}, {cells}, {cells}]", template)
    out = re.sub(r"(?m)^events_per_replica = .*$", f"events_per_replica = {int(events)}", out)
    if not re.search(r"(?m)^blocks = ", out):  # the default (200 blocks) would be too many
        out = re.sub(r"(?m)^(events_per_replica = .*)$", r"\1\nblocks = 200", out, count=1)
    n_vacancies = max(1, round(0.01 * 3 * cells**3))
    max_blocks = max(1, int(events) // (100 * n_vacancies))

    def _cut(m):
        return f"blocks = {min(int(m.group(1)), max_blocks)}"

    out = re.sub(r"(?m)^blocks = (\d+).*$", _cut, out)
    out = re.sub(r"(?m)^replicas = .*$", f"replicas = {int(replicas)}", out)
    return out


def bench_throughput_one(cfg: Path, runs: int, rounds: int, workdir: Path) -> dict:
    """``rounds`` rounds of, interleaved: control in one process, campaign with 1 worker, control
    in two processes, campaign with 2 workers (A B A B), so that the control sees the machine
    at the same moments as the campaign.  Per round: campaign speed-up wall(1) / wall(2), raw
    speed-up serial / parallel, efficiency = campaign / raw; medians over the rounds."""
    import statistics

    rows = []
    for i in range(rounds):
        row = {"load_before": _load()}
        row["control_one_process_s"] = control_serial(cfg, runs)
        row["workers_1"] = run_campaign_file(cfg, workdir / f"r{i}w1", 1)
        row["control_two_processes_s"] = control_parallel(cfg, runs)
        row["workers_2"] = run_campaign_file(cfg, workdir / f"r{i}w2", 2)
        row["speedup_1_to_2"] = row["workers_1"]["wall_s"] / row["workers_2"]["wall_s"]
        row["raw_speedup"] = row["control_one_process_s"] / row["control_two_processes_s"]
        row["efficiency_vs_raw"] = row["speedup_1_to_2"] / row["raw_speedup"]
        row["load_after"] = _load()
        rows.append(row)
    med = {k: statistics.median(r[k] for r in rows) for k in ("speedup_1_to_2", "raw_speedup", "efficiency_vs_raw")}
    return {"runs": runs, "rounds": rows, **{f"median_{k}": v for k, v in med.items()}}


def bench_throughput(config: Path, runs: int | None, rounds: int = 2, sizes=None) -> dict:
    """The throughput benchmark for each replica size of ``SIZES`` (or only ``config`` as given
    when ``sizes`` is empty)."""
    text = config.read_text()
    out = {"config": str(config), "sizes": {}}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        todo = {name: SIZES[name] for name in (SIZES if sizes is None else sizes)} or {"as_given": None}
        for name, size in todo.items():
            cfg = d / f"{name}.toml"
            if size is None:  # as given: the control runs exactly the campaign's points
                from ionwire.coupling.campaign import load_spec

                cfg.write_text(text)
                n = len(load_spec(cfg).points)
            else:
                n = int(runs) if runs else (8 if size["cells"] <= 32 else 4)
                cfg.write_text(size_config(text, size["cells"], size["events"], n))
            res = bench_throughput_one(cfg, n, rounds, d / name)
            res["replica"] = size
            out["sizes"][name] = res
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
    p.add_argument("--throughput-runs", type=int, default=None,
                   help="throughput: replicas per campaign (default 8 at 16^3, 4 at 128^3)")
    p.add_argument("--rounds", type=int, default=2, help="throughput: interleaved rounds (default 2)")
    p.add_argument("--sizes", default=",".join(SIZES),
                   help=f"throughput: replica sizes, comma-separated from {', '.join(SIZES)} ('' = --config as given)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    res = {}
    if args.what in ("overhead", "all"):
        res["overhead"] = bench_overhead(args.runs, args.run_s, args.workers, args.scheduler)
    if args.what in ("throughput", "all"):
        sizes = [x for x in args.sizes.split(",") if x]
        unknown = [x for x in sizes if x not in SIZES]
        if unknown:
            p.error(f"unknown --sizes {unknown}; choose from {list(SIZES)}")
        res["throughput"] = bench_throughput(args.config, args.throughput_runs, args.rounds, sizes)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        if "overhead" in res:
            o = res["overhead"]
            print(f"overhead: {o['runs']} runs x {o['run_s']:g} s on {o['executor']}: campaign "
                  f"{o['wall_s']:.2f} s, runs {o['run_wall_s']:.2f} s -> {100 * o['overhead_fraction']:.2f} % "
                  f"({o['overhead_per_run_s']:.3f} s per run); load {o['load_before']['load_1min']:.2f}")
        if "throughput" in res:
            for name, t in res["throughput"]["sizes"].items():
                for i, r in enumerate(t["rounds"]):
                    w1, w2 = r["workers_1"], r["workers_2"]
                    print(f"throughput {name} round {i}: {t['runs']} kMC runs: campaign 1 worker {w1['wall_s']:.2f} s, "
                          f"2 workers {w2['wall_s']:.2f} s -> {r['speedup_1_to_2']:.2f}x; control 1 process "
                          f"{r['control_one_process_s']:.2f} s, 2 processes {r['control_two_processes_s']:.2f} s -> "
                          f"{r['raw_speedup']:.2f}x; campaign / raw {r['efficiency_vs_raw']:.2f}; core share per run "
                          f"{w1['cpu_share_per_run']:.2f} / {w2['cpu_share_per_run']:.2f}; load (1 min) "
                          f"{r['load_before']['load_1min']:.2f} -> {r['load_after']['load_1min']:.2f}")
                print(f"throughput {name}: medians over {len(t['rounds'])} rounds: speed-up "
                      f"{t['median_speedup_1_to_2']:.2f}x, raw {t['median_raw_speedup']:.2f}x, campaign / raw "
                      f"{t['median_efficiency_vs_raw']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
