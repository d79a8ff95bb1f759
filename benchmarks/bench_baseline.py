"""The current tree against a stated baseline commit, interleaved: ``ionwire bench kmc|device|continuum``.

    python benchmarks/bench_baseline.py BASELINE_COMMIT [--targets kmc,device] [--rounds 3]
                                        [--events 1e7] [--cells NX NY NZ] [--json]
    python benchmarks/bench_baseline.py BASELINE_COMMIT --targets continuum [--rounds 2]

For ``continuum`` (the 17-field Fig. 1e sweep of ``ionwire bench continuum``) the measure is the
sweep's CPU seconds (``sweep_cpu_s``, the sum over its worker processes) and its wall time;
ratios are baseline / current (how many times less the current tree needs).

The baseline is checked out into a temporary detached worktree and imported through PYTHONPATH
(``_trees.py``: the repository root is the package, so a symlink ``ionwire -> <tree>`` is all
it takes; same interpreter and dependencies).  Each round runs, for every target, the current
tree then the baseline (A B A B ...), each in a fresh process with its own warm numba cache (one
untimed warm-up call per tree compiles it first).  Reported per round: events per second (wall)
and per CPU second of both, and their ratio current / baseline; then the median ratios, the
machine (CPU model, cores) and the load average before and after.  Ratios measured this way are
what a shared machine can support; absolute rates belong with the machine that gave them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import baseline_tree, commit_of, machine, run_cli  # noqa: E402


def _bench(target: str, pythonpath, events: float, cells) -> dict:
    if target == "continuum":
        # each tree sweeps its own runs/fig1e.toml (the config keys may differ between commits;
        # the physics is checked by comparing L(+4 V/um) of the two)
        cwd = os.path.join(pythonpath, "ionwire") if pythonpath else None
        return json.loads(run_cli(["bench", "continuum", "--json"], pythonpath=pythonpath, cwd=cwd)["stdout"])
    args = ["bench", target, "--json", "--events", str(int(events))]
    if cells:
        args += ["--cells", *map(str, cells)]
    return json.loads(run_cli(args, pythonpath=pythonpath)["stdout"])


def _compare(target: str, r: dict) -> dict:
    """The row of one target and round from the two trees' reports ``r`` (current, baseline)."""
    if target == "continuum":
        return {"sweep_cpu_s": {k: v["sweep_cpu_s"] for k, v in r.items()},
                "sweep_wall_s": {k: v["sweep_wall_s"] for k, v in r.items()},
                "L_plus4_um": {k: v["L_plus4_um"] for k, v in r.items()},
                "steps_total": {k: v["steps_total"] for k, v in r.items()},
                "ratio_wall": r["baseline"]["sweep_wall_s"] / r["current"]["sweep_wall_s"],
                "ratio_cpu": r["baseline"]["sweep_cpu_s"] / r["current"]["sweep_cpu_s"]}
    return {"events_per_second": {k: v["events_per_second"] for k, v in r.items()},
            "events_per_cpu_second": {k: v["events_per_cpu_second"] for k, v in r.items()},
            "ratio_wall": r["current"]["events_per_second"] / r["baseline"]["events_per_second"],
            "ratio_cpu": r["current"]["events_per_cpu_second"] / r["baseline"]["events_per_cpu_second"]}


def _line(i: int, target: str, t: dict) -> str:
    if target == "continuum":
        return (f"round {i} continuum: sweep CPU current {t['sweep_cpu_s']['current']:.2f} s, baseline "
                f"{t['sweep_cpu_s']['baseline']:.2f} s; L(+4) {t['L_plus4_um']['current']:.6f} / "
                f"{t['L_plus4_um']['baseline']:.6f} um -> baseline / current {t['ratio_cpu']:.3f} CPU, "
                f"{t['ratio_wall']:.3f} wall")
    return (f"round {i} {target}: current {t['events_per_second']['current']:.3g} ev/s "
            f"({t['events_per_cpu_second']['current']:.3g} per CPU s), baseline "
            f"{t['events_per_second']['baseline']:.3g} ({t['events_per_cpu_second']['baseline']:.3g})"
            f" -> current / baseline {t['ratio_wall']:.3f} wall, {t['ratio_cpu']:.3f} CPU")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", help="the baseline commit (any git revision)")
    ap.add_argument("--targets", default="kmc,device", help="comma-separated bench targets")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--events", type=float, default=1e7, help="timed events per run (default 1e7)")
    ap.add_argument("--cells", type=int, nargs=3, default=None, help="cells (default: each target's standard)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    res = {"current": commit_of(), "baseline": commit_of(args.baseline), "machine_before": machine(),
           "rounds": []}
    with baseline_tree(args.baseline) as base_path:
        trees = (("current", None), ("baseline", base_path))
        for target in targets:  # compile / load each tree's kernels before any timing
            for _, path in trees:
                if target != "continuum":  # its benchmark warms its own workers up
                    _bench(target, path, 1e4, args.cells)
        for i in range(args.rounds):
            row = {"load_before": list(os.getloadavg())}
            for target in targets:
                r = {label: _bench(target, path, args.events, args.cells) for label, path in trees}
                row[target] = _compare(target, r)
                if not args.json:
                    print(_line(i, target, row[target]), flush=True)
            row["load_after"] = list(os.getloadavg())
            res["rounds"].append(row)
    res["machine_after"] = machine()
    res["median"] = {t: {k: statistics.median(r[t][k] for r in res["rounds"]) for k in ("ratio_wall", "ratio_cpu")}
                     for t in targets}
    if args.json:
        print(json.dumps(res))
        return 0
    m = res["machine_before"]
    print(f"current {res['current'][:10]} vs baseline {res['baseline'][:10]} on {m['cpu_model']} "
          f"({m['cores']} cores), load {m['load_average']} -> {res['machine_after']['load_average']}")
    for t, v in res["median"].items():
        how = "baseline / current" if t == "continuum" else "current / baseline"
        print(f"  {t}: median {how} {v['ratio_wall']:.3f} (wall), {v['ratio_cpu']:.3f} (CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
