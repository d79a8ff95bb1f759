"""Time to first result, cold (empty numba cache) and warm, of the README's first commands.

    python benchmarks/bench_first_run.py [--only bulk,device,campaign] [--baseline COMMIT] [--json]
    python benchmarks/bench_first_run.py --profile --only bulk,device

For each command: one run with ``NUMBA_CACHE_DIR`` pointing at a fresh empty folder (cold: every
kernel the command uses is compiled) and one more with the same folder (warm: loaded from the
cache).  Reported: wall seconds, CPU seconds (user + system of the command: the robust number
on a shared machine; not for ``campaign``, whose worker processes are children of a
multiprocessing forkserver that is never waited for, so their CPU time is not seen) and the peak
RSS of the main process.  With
``--baseline COMMIT`` the same is measured for that commit (see ``_trees.py``), interleaved:
current cold, baseline cold, current warm, baseline warm.  A cold run costs a minute or more of
CPU per command: run this on a quiet machine, once.

With ``--profile`` (current tree only, cold only, ``bulk`` and ``device``: the campaign compiles
in worker processes) the command runs in a child that listens to numba's "numba:compile" events
and reports, per kernel, the CPU seconds of its compilation (exclusive of the kernels it calls),
how many specialisations it got (a kernel compiled for two argument types or literal values
counts twice) and the CPU seconds spent under numba's LLVM lock.

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


PROFILE = """\
import json, os, sys, time
from numba.core import event
stack, rows, llvm = [], {}, [0.0, None]
class Compile(event.Listener):
    def on_start(self, ev):
        stack.append([ev.data["dispatcher"], time.process_time(), 0.0])
    def on_end(self, ev):
        disp, t0, inner = stack.pop()
        dt = time.process_time() - t0
        if stack:
            stack[-1][2] += dt
        f = getattr(disp, "py_func", None)
        name = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', '?')}"
        row = rows.setdefault(name, {"kernel": name, "specialisations": 0, "compile_cpu_s": 0.0})
        row["specialisations"] += 1
        row["compile_cpu_s"] += dt - inner
class Llvm(event.Listener):
    def on_start(self, ev):
        llvm[1] = time.process_time()
    def on_end(self, ev):
        llvm[0] += time.process_time() - llvm[1]
event.register("numba:compile", Compile())
event.register("numba:llvm_lock", Llvm())
from ionwire.coupling.cli import main
c0 = time.process_time()
try:
    main(sys.argv[2:])
except SystemExit:
    pass
out = {"cpu_s": time.process_time() - c0, "llvm_cpu_s": llvm[0],
       "kernels": sorted(rows.values(), key=lambda r: -r["compile_cpu_s"])}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
"""


def profile(name: str, tmp: str) -> dict:
    """Cold run of command ``name`` of the current tree with numba's compile events recorded."""
    import subprocess

    out_dir = tempfile.mkdtemp(dir=tmp, prefix=f"{name}-profile-")
    report = os.path.join(out_dir, "profile.json")
    env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(dir=tmp, prefix="numba-profile-"),
               IONWIRE_QUIET_COMPILE="1")
    subprocess.run([sys.executable, "-c", PROFILE, report, *_commands(out_dir, REPO)[name]], env=env,
                   cwd=out_dir, check=True, capture_output=True, text=True)
    result = json.loads(Path(report).read_text())
    result["compile_cpu_s"] = sum(r["compile_cpu_s"] for r in result["kernels"])
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="bulk,device,campaign", help="comma-separated commands")
    ap.add_argument("--baseline", default=None, help="also measure this commit, interleaved")
    ap.add_argument("--baseline-only", action="store_true", help="measure only --baseline (not the current tree)")
    ap.add_argument("--profile", action="store_true",
                    help="per-kernel compile CPU of a cold run (current tree; bulk and device)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    if args.profile:
        if args.only == ap.get_default("only"):
            names = ["bulk", "device"]
        if "campaign" in names:
            ap.error("--profile: the campaign compiles in its worker processes; use --only bulk,device")
        res = {"machine_before": machine(), "commit": commit_of(), "profiles": {}}
        with tempfile.TemporaryDirectory(prefix="ionwire-first-run-") as tmp:
            for name in names:
                p = res["profiles"][name] = profile(name, tmp)
                if not args.json:
                    print(f"{name}: cold CPU {p['cpu_s']:.1f} s, compiling {p['compile_cpu_s']:.1f} s "
                          f"(LLVM {p['llvm_cpu_s']:.1f} s), {len(p['kernels'])} kernels", flush=True)
                    for r in p["kernels"][:12]:
                        print(f"  {r['compile_cpu_s']:6.2f} s  x{r['specialisations']}  {r['kernel']}")
                    twice = [r["kernel"].rsplit(".", 1)[-1] for r in p["kernels"]
                             if r["specialisations"] > 1 and r["kernel"].startswith("ionwire")]
                    print("  compiled more than once: " + (", ".join(twice) or "none"))
        res["machine_after"] = machine()
        if args.json:
            print(json.dumps(res))
        else:
            print(f"load before {res['machine_before']['load_average']}, after "
                  f"{res['machine_after']['load_average']}; commit {res['commit'][:10]}")
        return 0
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
