"""Measure the Onsager table l_ab(x_Cl) by a bulk kMC campaign.

ionwire parameterize CONFIG.toml -o TABLE.h5 [--json]

Runs every (preset, x_Cl, replica) of the config's [sweep] with the bulk kMC engine, in this
process (use ``ionwire campaign CONFIG.toml`` to fan the same runs out over processes or a
cluster), and writes TABLE.h5 (mean and standard error of l_BrBr, l_BrCl, l_ClCl per
composition, every replica and seed, provenance) and TABLE.png (kMC against the
Moleko-Allnatt-Allnatt theory).  The table is rewritten after each finished composition, marked
incomplete until the campaign ends.  See coupling/parameterize.py for the config.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ._output import claim, sigterm_as_interrupt


def add_arguments(parser):
    parser.add_argument("config", help="campaign config (TOML), e.g. runs/onsager.toml")
    parser.add_argument("-o", "--output", required=True, help="table file to write (HDF5)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing table (and its .png)")


def run(args):
    from ionwire.coupling.parameterize import load_file, run_serial

    config, text = load_file(args.config)
    out = Path(args.output)
    t0 = time.perf_counter()
    with claim(out, out.with_suffix(".png"), overwrite=args.overwrite), sigterm_as_interrupt():
        summary = run_serial(config, args.output, config_toml=text, progress=not (args.no_progress or args.json))
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"tables": summary, "output": str(args.output), "wall_s": wall}))
    else:
        for preset, s in summary.items():
            print(f"{preset}: {len(s['x_cl'])} compositions x {s['replicas']} replicas; "
                  f"max |z| vs MAA theory {s['max_abs_z_vs_theory']:.2f}, "
                  f"chi2/dof {s['chi2_per_dof_vs_theory']:.2f}", file=sys.stderr)
        print(f"wrote {args.output} ({wall:.1f} s)", file=sys.stderr)
    return 0
