"""Speed and memory benchmarks: `ionwire bench kmc` (bulk kMC standard benchmark), `ionwire bench device`.

`ionwire bench kmc`: 64 x 64 x 64 cells (786,432 anion sites), 1 % vacancies, random 50/50
Br/Cl, random_alloy barriers 0.25 / 0.29 eV, 300 K, zero field; 1e7 events timed after a
warm-up of 1e6 events (numba compilation excluded).  Reports events per second (wall clock; the
best of --repeat runs, and the spread), events per CPU second, sites, vacancies and the state
memory per site (occupancy, per-site tracer displacements, vacancy arrays and the event tree).

`ionwire bench device`: a 16 x 16 x 1024-cell Br | Cl wire (786,432 sites, as many as the bulk
benchmark), x_V^eq(Br) = 1e-2, 2 V/um forward, exact electrostatics after every event and
electrode reactions on (kmc.device.benchmark_device); same timing protocol.

Every report names the machine: CPU model (/proc/cpuinfo), logical cores, and the load average
before and after the timing (other work on a shared machine slows the wall clock; events per CPU
second are less sensitive to it).  Compare numbers only between runs on the same machine, best
interleaved (benchmarks/bench_baseline.py).

Extension point for other targets (e.g. `ionwire bench device`): add a function
``_bench_<name>(args) -> dict`` and an entry in ``TARGETS`` below (and, if it needs options,
in ``add_arguments``); the dispatcher, --json output and error handling are shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform


def machine() -> dict:
    """CPU model (from /proc/cpuinfo where available), logical cores, Python and platform."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without a load average
        return []


def _bench_kmc(args) -> dict:
    from ionwire.kmc.bulk import benchmark

    runs = [benchmark(cells=tuple(args.cells), n_events=int(args.events), warmup_events=int(args.warmup),
                      seed=args.seed + i) for i in range(args.repeat)]
    best = max(runs, key=lambda r: r["events_per_second"])
    rates = [r["events_per_second"] for r in runs]
    out = dict(best)
    out["target"] = "kmc"
    out["repeat"] = args.repeat
    out["events_per_second_all"] = rates
    out["events_per_second_spread"] = (max(rates) - min(rates)) if len(rates) > 1 else 0.0
    return out


def _bench_continuum(args) -> dict:
    from ionwire.continuum.bench import benchmark_sweep
    from ionwire.continuum.experiment import load_config_file
    from ionwire.coupling.campaign import local_mapper

    config = "runs/fig1e.toml"
    workers = load_config_file(config).workers
    with local_mapper(workers) as mapper:  # the campaign's local process pool
        return benchmark_sweep(config, mapper=mapper, workers=workers)


def _bench_device(args) -> dict:
    # device kMC: kmc.device.benchmark_device; the default --cells (the bulk cube)
    # maps to the device's standard wire of as many sites, 16 x 16 x 1024 cells
    from ionwire.kmc.device import benchmark_device

    cells = (16, 16, 1024) if list(args.cells) == [64, 64, 64] else tuple(args.cells)
    runs = [benchmark_device(events=int(args.events), warmup_events=int(args.warmup), cells=cells,
                             seed=args.seed + i) for i in range(args.repeat)]
    rates = [r["events_per_second"] for r in runs]
    out = dict(max(runs, key=lambda r: r["events_per_second"]))
    out["repeat"] = args.repeat
    out["events_per_second_all"] = rates
    return out


TARGETS = {"kmc": _bench_kmc, "continuum": _bench_continuum, "device": _bench_device}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=sorted(TARGETS), help="what to benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cells", nargs=3, type=int, default=[64, 64, 64], metavar=("NX", "NY", "NZ"),
                        help="supercell (default 64 64 64: the standard benchmark)")
    parser.add_argument("--events", type=float, default=1e7, help="timed events (default 1e7)")
    parser.add_argument("--warmup", type=float, default=1e6, help="warm-up events (default 1e6)")
    parser.add_argument("--repeat", type=int, default=1, help="independent timed runs; the best is reported")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the first run")


def run(args) -> int:
    from ionwire.coupling.cli import UserError

    if args.repeat < 1 or args.events < 1 or args.warmup < 0:
        raise UserError("--repeat and --events must be >= 1 and --warmup >= 0")
    if any(c < 2 for c in args.cells):
        raise UserError("--cells must be at least 2 2 2")
    from ionwire.structures.parameters import check_memory, check_seed

    check_seed(args.seed, "--seed")
    n_sites = 3.0 * args.cells[0] * args.cells[1] * args.cells[2]
    check_memory(n_sites * 64, f"the benchmark lattice ({' x '.join(map(str, args.cells))} cells, {n_sites:.3g} sites)")
    from ._output import stop_at_once_on_interrupt

    load_before = _load()
    with stop_at_once_on_interrupt():  # writes no file: Ctrl-C may end it at once
        out = TARGETS[args.target](args)
    out["machine"] = machine()
    out["load_average_before"] = load_before
    out["load_average_after"] = _load()
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"ionwire bench {args.target}:")
    m = out.pop("machine")
    for k, v in out.items():
        print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    print(f"  machine: {m['cpu_model']}, {m['cores']} logical cores, Python {m['python']}, {m['platform']}")
    return 0
