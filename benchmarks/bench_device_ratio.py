"""Device-vs-bulk kMC speed ratio (target: device >= 50 % of bulk events per second).

    python benchmarks/bench_device_ratio.py [--rounds 3] [--json]

Runs ``ionwire bench device --json`` and ``ionwire bench kmc --json`` alternately ``rounds``
times (interleaved, so slow phases of a shared machine hit both alike) and prints each pair,
the load average before and after, and the ratio device / bulk of the medians, both for wall
clock events/s (what ``ionwire bench`` reports) and for events per CPU second (less sensitive to
other users on the machine).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def _bench(target: str) -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "ionwire")
    out = subprocess.run([exe, "bench", target, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved device/bulk pairs (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    pairs = []
    for _ in range(args.rounds):
        d = _bench("device")
        k = _bench("kmc")
        pairs.append({"device_events_per_second": d["events_per_second"],
                      "device_events_per_cpu_second": d.get("events_per_cpu_second"),
                      "kmc_events_per_second": k["events_per_second"],
                      "kmc_events_per_cpu_second": k.get("events_per_cpu_second")})
        if not args.json:
            print(f"device {d['events_per_second']:.3e} ev/s   kmc {k['events_per_second']:.3e} ev/s   "
                  f"ratio {d['events_per_second'] / k['events_per_second']:.3f}", flush=True)
    med = {key: statistics.median(p[key] for p in pairs if p[key] is not None) for key in pairs[0]}
    res = {"pairs": pairs, "median": med, "load_before": load0, "load_after": os.getloadavg(),
           "ratio_wall": med["device_events_per_second"] / med["kmc_events_per_second"],
           "ratio_cpu": med["device_events_per_cpu_second"] / med["kmc_events_per_cpu_second"]}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"median ratio device/bulk: {res['ratio_wall']:.3f} (wall), {res['ratio_cpu']:.3f} (CPU); "
              f"load {load0[0]:.2f} -> {res['load_after'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
