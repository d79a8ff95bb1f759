"""Validate the continuum model against an ensemble of device-kMC replicas on one parameter set.

ionwire compare CONFIG.toml -o REPORT_DIR [--json] [--replicas R]

Both models are built from the config's one parameter set ([material], [vacancies], [geometry],
[electrodes]; mapped to the kMC scale, see runs/validate.toml).  For every field of
[compare].fields_V_per_um (> 0 forward, < 0 reverse) R kMC replicas and the continuum model give
x_Br, x_V and phi at [compare].times_s (a [bias] table instead of fields_V_per_um: one direction,
"protocol", both models under that bias history); REPORT_DIR receives report.h5 (all profiles, replicas and
statistics), summary.json (chi2_per_dof per field and bias direction with the expectation for R
replicas, front_position_agreement (x_Br = 0.55, 2 sigma), replicas, wall_s) and PNG plots.
See coupling/compare.py for the mapping and the statistics.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from ._output import claim, sigterm_as_interrupt


def add_arguments(parser):
    parser.add_argument("config", help="validation config (TOML), e.g. runs/validate.toml")
    parser.add_argument("-o", "--output", required=True, help="report directory to write")
    parser.add_argument("--replicas", type=int, default=None, help="override [compare].replicas")
    parser.add_argument("--onsager", default=None,
                        help="override [compare].onsager: 'theory' or an `ionwire parameterize` table file")
    parser.add_argument("--field", type=float, action="append", default=None, metavar="V_PER_UM",
                        help="override [compare].fields_V_per_um (repeat for several fields)")
    parser.add_argument("--times", type=float, nargs="+", default=None, metavar="T_S",
                        help="override [compare].times_s")
    parser.add_argument("--cells", type=int, nargs=2, default=None, metavar=("NX", "NY"),
                        help="override the kMC cross-section [kmc] nx ny")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a report directory that already holds a report")


def run(args):
    from ionwire.coupling.cli import UserError
    from ionwire.coupling.compare import compare, load_file
    from ionwire.structures.parameters import from_mapping, to_mapping
    from ionwire.coupling.compare import CompareSettings

    cfg, text = load_file(args.config)
    overrides = {}
    if args.replicas is not None:
        overrides["replicas"] = args.replicas
    if args.onsager is not None:
        overrides["onsager"] = args.onsager
    if args.field:
        if cfg.bias is not None:
            raise UserError("--field overrides compare.fields_V_per_um, but this config compares a [bias] protocol")
        overrides["fields_V_per_um"] = args.field
    if args.times:
        overrides["times_s"] = args.times
    if args.cells:
        from ionwire.kmc.device import KMCSettings

        kmc = {**to_mapping(cfg.kmc), "nx": args.cells[0], "ny": args.cells[1]}
        cfg = dataclasses.replace(cfg, kmc=from_mapping(KMCSettings, kmc, "kmc"))
    if overrides:
        settings = from_mapping(CompareSettings, {**to_mapping(cfg.compare), **overrides}, "compare")
        cfg = dataclasses.replace(cfg, compare=settings)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder (-o names the report directory)")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} is not empty: pass --overwrite to write the report into it "
                        "(nothing was changed)")
    with claim(out, folder_ok=True, check_existing=False), sigterm_as_interrupt():
        summary = compare(cfg, args.output, config_toml=text, progress=not (args.no_progress or args.json))
    if args.json:
        keys = ("chi2_per_dof", "chi2_per_dof_variance_corrected", "acceptance_criterion", "front_position_agreement", "replicas", "wall_s", "accepted", "times_s",
                "expected_chi2_per_dof_if_models_agree", "onsager", "preset",
                "regime", "rectification")
        print(json.dumps({k: summary.get(k) for k in keys}, default=float))
    else:
        from ionwire.coupling.compare import regime_lines

        print("\n".join(regime_lines(summary["regime"])), file=sys.stderr)
        for name, d in summary["directions"].items():
            chi = ", ".join(f"{f} " + "/".join(f"{v:.2f}" for v in vals) for f, vals in d["chi2_per_dof"].items())
            fa = d.get("front_position_agreement") or {}
            print(f"{name} (E = {d['field_V_per_um']:g} V/um): chi2/dof {chi}; "
                  f"front within 2 sigma: {fa.get('all_within')}", file=sys.stderr)
        rect = summary.get("rectification")
        if rect:
            print(f"rectification at +-{rect['field_V_per_um']:g} V/um: kMC {rect['kmc_ratio']:.3g} +- "
                  f"{rect['kmc_ratio_err']:.2g}, continuum {rect['continuum_ratio']:.3g} "
                  f"(z = {rect['z_score']:.2f})", file=sys.stderr)
        print(f"expected chi2/dof for agreeing models with {summary['replicas']} replicas: "
              f"{summary['expected_chi2_per_dof_if_models_agree']:.2f}; wrote {args.output} "
              f"({summary['wall_s']['total']:.1f} s)", file=sys.stderr)
    return 0
