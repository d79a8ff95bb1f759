"""Run the continuum reaction-drift-diffusion-Poisson model of the rectification experiment.

Reads a TOML config (runs/fig1e.toml: `run = "continuum"`, [sweep] field_V_per_um = [...]),
fits the two electrode rates alpha_Br, alpha_Cl to docs/model.md section 1 if [calibration] is
enabled, runs every field (in parallel over `workers` processes), writes all profiles to an HDF5
file (continuum/io.py layout) and Fig. 1e as PNG next to it, and prints a summary (--json: the
keys field_V_per_um, migration_length_um, rectification_ratio, cl_uptake, calibrated, wall_s, ...).
--paper-figures DIR also reproduces Fig. 2b/2d, 3a/3b, S10-S16 (data + PNG) into DIR.
A config with a [bias] protocol instead of the [sweep] of fields (runs/fig1d.toml,
runs/reversal.toml) runs the protocol (or the [sweep] of bias.* entries) and writes the time
series figure <output>_bias.png and the PL kymograph <output>_kymograph.png next to the HDF5 file;
--json reports field_V_per_um (the field at t = 0) and migration_length_um (at the end) per run.
A config with `run = "sensitivity"` (runs/sensitivity.toml) runs the sensitivity study
(continuum.sensitivity) instead; -o names its output folder (default runs/out/<config name>/).
"""
from __future__ import annotations

import errno
import json
import math
import sys
from pathlib import Path

from ._output import claim, sigterm_as_interrupt


def add_arguments(parser) -> None:
    parser.add_argument("config", help="TOML config (e.g. runs/fig1e.toml)")
    parser.add_argument("-o", "--output", help="HDF5 output (default runs/out/<config name>.h5)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--workers", type=int, help="processes (default: the config's workers)")
    parser.add_argument("--no-calibrate", action="store_true", help="use the config's alphas, no fit")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--paper-figures", metavar="DIR", help="also reproduce Fig. 2b/2d, 3a/3b, S10-S16 into DIR")


def run(args) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.continuum.experiment import load_config_file

    path = Path(args.config)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    from ionwire.structures.parameters import read_toml

    if read_toml(path)[0].get("run") == "sensitivity":
        return _run_sensitivity(args, path)
    cfg = load_config_file(path)
    if args.paper_figures and cfg.bias is not None:
        raise UserError("--paper-figures needs the [sweep] of fields (runs/fig1e.toml), not a [bias] protocol")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    from ionwire.structures.parameters import check_duration, check_field

    check_duration(cfg.duration_s, "duration_s")
    from ionwire.coupling.campaign import check_continuum_memory

    check_continuum_memory(cfg.numerics, "numerics")
    for i, e in enumerate(cfg.sweep.field_V_per_um):
        check_field(e, f"sweep.field_V_per_um[{i}]")
    out = Path(args.output) if args.output else Path("runs/out") / (path.stem + ".h5")
    if out.exists() and out.is_dir():
        raise UserError(f"{out}: is a directory")
    if not args.output:
        out.parent.mkdir(parents=True, exist_ok=True)
    fig = out.with_name(out.stem + ("_bias.png" if cfg.bias is not None else "_fig1e.png"))
    kymo = out.with_name(out.stem + "_kymograph.png") if cfg.bias is not None else None
    with claim(out, fig, kymo, overwrite=args.overwrite), sigterm_as_interrupt():
        try:
            summary = _run(args, cfg, out, fig, kymo)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
                raise
            raise UserError(f"cannot write {exc.filename or out}: {exc.strerror or exc}; {out} holds only the fields "
                            "completed before (readers skip the interrupted one); free some space, then run again "
                            "with --overwrite") from None
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {out} and {fig}" + (f" and {kymo}" if kymo else ""))
        for k in ("rectification_ratio", f"{cfg.params.halides[1].lower()}_uptake", "forward_linear_fit",
                  "reverse_max_abs_um", "wall_s"):
            print(f"{k}: {summary.get(k)}")
        for k, v in (summary.get("calibrated") or {}).items():
            print(f"calibrated {k} = {v['value']:.4g} (paper {v['paper_value']:.3g}; fitted to {v['fitted_to']}; "
                  f"residual {v['residual_um']:+.2e} um)")
    return 0


def _run_sensitivity(args, path) -> int:
    """``run = "sensitivity"``: the study into a folder (sensitivity.csv / .h5 / _indices.json / _morris.png)."""
    from ionwire.coupling.cli import UserError
    from ionwire.continuum.sensitivity import load_config as load_sensitivity, run_study
    from ionwire.coupling.campaign import local_mapper
    from ionwire.structures.parameters import read_toml

    if args.paper_figures or args.no_calibrate:
        raise UserError("--paper-figures and --no-calibrate do not apply to a sensitivity config "
                        "(its alphas are the config's, never fitted)")
    cfg = load_sensitivity(read_toml(path)[0])
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    outdir = Path(args.output) if args.output else Path("runs/out") / path.stem
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"{outdir}: exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    table = outdir / "sensitivity.csv"
    with claim(table, outdir / "sensitivity.h5", outdir / "sensitivity_indices.json",
               outdir / "sensitivity_morris.png", overwrite=args.overwrite), sigterm_as_interrupt():
        with local_mapper(args.workers if args.workers is not None else cfg.workers) as mapper:
            out = run_study(cfg, outdir, mapper=mapper)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"wrote {table}, {out['figure']} ({out['runs']} runs in {out['wall_s']:.0f} s)")
        for law, d in out["per_law"].items():
            print(f"{law}: {d['ok']}/{d['samples']} samples complete; ratio {d['ratio_range']}; "
                  f"L(-4) {d['L_reverse_range_um']} um; ratio in {out['ratio_near']}: {d['ratio_near_count']} "
                  f"samples, L(-4) signs {d['ratio_near_reverse_signs']}")
    return 0


def _run(args, cfg, out, fig, kymo=None) -> dict:
    from ionwire.coupling.cli import UserError
    from ionwire.continuum.experiment import run_sweep

    def progress(s):
        if not args.json:
            print(f"  E = {s['field_V_per_um']:+5.2f} V/um  L = {s['migration_length_um']:+.4f} um  "
                  f"({s['wall_s']:.2f} s)", file=sys.stderr)

    from ionwire.continuum.model import SolverError
    from ionwire.coupling.campaign import local_mapper

    if cfg.calibration.enabled and not args.no_calibrate and cfg.calibration_record is None and not args.json:
        print("fitting alpha_Br and alpha_Cl to the calibration targets first (several continuum runs) ...",
              file=sys.stderr, flush=True)
    workers = args.workers if args.workers is not None else cfg.workers
    # one process pool for the calibration, the sweep and the paper figures
    with local_mapper(workers) as mapper:
        try:
            if cfg.bias is not None:
                from ionwire.continuum.protocol import run_protocol_sweep

                summary = run_protocol_sweep(cfg, out, mapper=mapper, calibrate_first=not args.no_calibrate,
                                             figure=fig, progress=progress, kymograph=kymo)
            else:
                summary = run_sweep(cfg, out, mapper=mapper, calibrate_first=not args.no_calibrate, figure=fig,
                                    progress=progress)
        except SolverError as exc:  # a physically meaningless parameter set, reported in one line
            raise UserError(f"the continuum solver failed: {exc}") from None
        _check_finite(summary, out)
        if args.paper_figures:
            from ionwire.continuum.experiment import with_alphas
            from ionwire.structures.parameters import alpha_keys
            from ionwire.continuum.figures import paper_figures

            cal = summary.get("calibrated") or {}
            bound = cfg
            if cal:  # the figures use the parameter set of the sweep, fitted alphas included
                bound = with_alphas(cfg, *(cal[k]["value"] for k in alpha_keys(cfg.params.halides)))
            summary["paper_figures"] = paper_figures(bound, args.paper_figures, mapper=mapper)
    return summary


def _check_finite(summary, out) -> None:
    from ionwire.coupling.cli import UserError

    for e, length in zip(summary.get("field_V_per_um", []), summary.get("migration_length_um", [])):
        if length is None or not math.isfinite(float(length)):
            raise UserError(f"the continuum run at E = {e:g} V/um gave a non-finite migration length "
                            f"({length}); its profiles are in {out} (check duration_s and [numerics])")
