"""Time to first result, cold (empty numba cache) and warm, of the README's first commands.

    python benchmarks/bench_first_run.py [--only bulk,device,campaign] [--baseline COMMIT] [--json]

For each command: one run with ``NUMBA_CACHE_DIR`` pointing at a fresh empty folder (cold: every
kernel the command uses is compiled) and one more with the same folder (warm: loaded from the
cache).  Reported: wall seconds, CPU seconds (user + system of the command: the robust number
on a shared machine; not for ``campaign``, whose worker processes are children of a
multiprocessing forkserver that is never waited for, so their CPU time is not seen) and the peak
RSS of the main process.  With
``--baseline COMMIT`` the same is measured for that commit (see ``_trees.py``), interleaved:
current cold, baseline cold, current warm, baseline warm.  A cold run costs a minute or more of
CPU per command: run this on a quiet machine, once.

Commands: ``bulk`` = ``ionwire bulk --cells 8 8 8 --events 1e5 --replicas 1``;
``device`` = ``ionwire device runs/device_small.toml`` with the simulated time cut to 2e-7 s (10
frames); ``campaign`` = ``ionwire campaign runs/fig1e.toml`` (the README's main job) into a
temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import REPO, baseline_tree, commit_of, machine, run_cli  # noqa: E402


def _device_toml(folder: str, root: Path) -> str:
    text = (root / "runs" / "device_small.toml").read_text()
    assert tomllib.loads(text)["kmc"]["duration_s"] == 2e-6
    path = os.path.join(folder, "device_first.toml")
    Path(path).write_text(text.replace("duration_s = 2e-6", "duration_s = 2e-7"))
    return path


def _commands(folder: str, root: Path) -> dict[str, list[str]]:
    """The commands, with the config files of the tree ``root`` (current or baseline)."""
    return {"bulk": ["bulk", "--cells", "8", "8", "8", "--events", "100000", "--warmup", "1000",
                     "--replicas", "1", "--json"],
            "device": ["device", _device_toml(folder, root), "-o", os.path.join(folder, "device_first.h5")],
            "campaign": ["campaign", str(root / "runs" / "fig1e.toml"), "-o", os.path.join(folder, "fig1e"),
                         "--no-progress", "--overwrite"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="bulk,device,campaign", help="comma-separated commands")
    ap.add_argument("--baseline", default=None, help="also measure this commit, interleaved")
    ap.add_argument("--baseline-only", action="store_true", help="measure only --baseline (not the current tree)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    result = {"machine_before": machine(), "commit": commit_of(), "baseline": None, "runs": []}
    with tempfile.TemporaryDirectory(prefix="ionwire-first-run-") as tmp:
        trees = [] if args.baseline_only and args.baseline else [("current", None)]
        ctx = baseline_tree(args.baseline) if args.baseline else None
        if ctx is not None:
            result["baseline"] = commit_of(args.baseline)
            trees.append(("baseline", ctx.__enter__()))
        try:
            for name in names:
                caches = {label: tempfile.mkdtemp(dir=tmp, prefix=f"numba-{label}-") for label, _ in trees}
                for phase in ("cold", "warm"):
                    for label, path in trees:
                        out_dir = tempfile.mkdtemp(dir=tmp, prefix=f"{name}-{label}-")
                        env = dict(os.environ, NUMBA_CACHE_DIR=caches[label])
                        root = REPO if path is None else Path(path, "ionwire").resolve()
                        r = run_cli(_commands(out_dir, root)[name], pythonpath=path, env=env, cwd=out_dir)
                        r.pop("stdout")
                        if name == "campaign":  # its workers belong to a forkserver nobody waits for
                            r["cpu_s"] = None
                        # compiled functions in the cache (index files) and their specialisations
                        files = [q.name for q in Path(caches[label]).rglob("*") if q.is_file()]
                        r["cached_functions"] = sum(f.endswith(".nbi") for f in files)
                        r["cached_specialisations"] = sum(f.endswith(".nbc") for f in files)
                        row = {"command": name, "tree": label, "phase": phase, **r,
                               "load_after": list(os.getloadavg())}
                        result["runs"].append(row)
                        if not args.json:
                            print(f"{name:8s} {label:8s} {phase}: wall {r['wall_s']:.1f} s, CPU "
                                  + ("n/a" if r["cpu_s"] is None else f"{r['cpu_s']:.1f} s") + ", "
                                  f"peak RSS {r['peak_rss_MiB']:.0f} MiB, {r['cached_functions']} kernels / "
                                  f"{r['cached_specialisations']} specialisations cached (load {row['load_after'][0]:.2f})",
                                  flush=True)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    result["machine_after"] = machine()
    if args.json:
        print(json.dumps(result))
    else:
        m = result["machine_before"]
        print(f"{m['cpu_model']}, {m['cores']} cores, load before {m['load_average']}, "
              f"after {result['machine_after']['load_average']}; commit {result['commit'][:10]}"
              + (f", baseline {result['baseline'][:10]}" if result["baseline"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
