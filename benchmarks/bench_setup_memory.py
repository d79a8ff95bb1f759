"""Set-up memory of the kMC engines at scale: peak resident memory per site while a state is built.

    python benchmarks/bench_setup_memory.py [--bulk 500] [--device 128 128 20345] [--json]

Each case runs in a fresh child process, which first compiles (or loads) the kernels on a tiny
system, records its resident set size (RSS), then builds the engine: a bulk lattice of
``--bulk``^3 cells (1 % vacancies, random 50/50 Br/Cl; 500^3 cells = 375 M sites) and/or a device
wire of ``--device`` cells (the standard device benchmark's physics; 128 x 128 x 20345 cells =
1.0e9 sites).  Reported per site: the state (engine ``nbytes`` / ``memory_bytes()``), the set-up
peak above the pre-build RSS (``ru_maxrss`` of the child; 0 when the set-up stays below the
memory the compilation took before), the peak of numpy's allocations (tracemalloc) and the whole child's peak
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` seen by the parent), with the set-up wall time.
Needs about 15 bytes/site free for bulk and 4 for the device; the parent refuses to start a case
that would not fit into the available memory (/proc/meminfo MemAvailable).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

BYTES_PER_SITE_NEEDED = {"bulk": 16.0, "device": 5.0}


def _child(kind: str, cells: list[int]) -> dict:
    from ionwire.kmc import device as D
    from ionwire.kmc.bulk import BulkKMC
    from ionwire.kmc.state import BulkState
    from ionwire.structures.lattice import AnionLattice

    if kind == "bulk":  # compile or load every kernel used below on a tiny system first
        BulkKMC(BulkState.random(AnionLattice(4, 4, 4), 0.5, 3, 0)).run(1000)
    else:
        D.DeviceSimulation(D.benchmark_config((4, 4, 64))).advance(float("inf"), 1000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()  # numpy's allocations: the set-up peak even below the pre-build RSS
    t0 = time.perf_counter()
    if kind == "bulk":
        lat = AnionLattice(*cells)
        engine = BulkKMC(BulkState.random(lat, 0.5, int(round(0.01 * lat.n_sites)), 0))
        state, sites, extra = engine.nbytes, lat.n_sites, {"vacancies": engine.state.n_vacancies}
        engine.run(1000)
    else:
        sim = D.DeviceSimulation(D.benchmark_config(tuple(cells)))
        state, sites, extra = sim.memory_bytes(), sim.lattice.n_sites, {"vacancies": sim.n_vacancies}
        sim.advance(float("inf"), 1000)
    wall = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"target": kind, "cells": cells, "sites": sites, "state_bytes_per_site": state / sites,
            "setup_peak_bytes_per_site": (after - before) / sites,
            "setup_numpy_peak_bytes_per_site": traced_peak / sites, "setup_wall_s": wall,
            "rss_before_build_bytes": before, **extra}


def _available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_case(kind: str, cells: list[int]) -> dict:
    sites = 3 * cells[0] * cells[1] * cells[2]
    need = BYTES_PER_SITE_NEEDED[kind] * sites
    avail = _available_bytes()
    if need > 0.9 * avail:
        return {"target": kind, "cells": cells, "sites": sites,
                "skipped": f"needs about {need / 2**30:.1f} GiB, {avail / 2**30:.1f} GiB available"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, cells)],
                         check=True, capture_output=True, text=True).stdout
    res = json.loads(out)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if peak > before * 1024:  # ru_maxrss of children is the largest child so far
        res["child_peak_rss_bytes_per_site"] = peak / sites
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulk", type=int, default=500, metavar="N", help="bulk lattice of N^3 cells (0: skip)")
    ap.add_argument("--device", type=int, nargs=3, default=[128, 128, 20345], metavar=("NX", "NY", "NZ"),
                    help="device wire cells (NZ 0: skip)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], [int(c) for c in args.child[1:]])))
        return 0
    results = {"load_before": os.getloadavg(), "cases": []}
    if args.bulk > 0:
        results["cases"].append(_run_case("bulk", [args.bulk] * 3))
    if args.device[2] > 0:
        results["cases"].append(_run_case("device", list(args.device)))
    results["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    for c in results["cases"]:
        print(f"{c['target']} {c['cells']} ({c['sites']:.3g} sites): "
              + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in c.items() if k not in ("target", "cells", "sites")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
