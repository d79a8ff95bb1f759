"""Draw the synthetic confocal PL kymograph of a continuum result (the look of Fig. 1d).

The local Cl fraction is mapped to a PL peak wavelength (CsPbBr3 526 nm, CsPbCl3 420 nm from the
paper, linear in photon energy unless --bowing-ev is given), blurred by a Gaussian confocal PSF
(--psf-fwhm-um, default 0.3 um) and drawn as position against time in spectral colours, one
panel per run of the file (--run K to choose).  docs/model.md, "PL kymograph".

example: ionwire pl runs/out/fig1d.h5 -o kymograph.png
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ._output import claim


def add_arguments(parser) -> None:
    parser.add_argument("result", metavar="RESULT.h5", help="continuum result file (ionwire continuum)")
    parser.add_argument("-o", "--output", required=True, metavar="PNG", help="the kymograph image")
    parser.add_argument("--run", type=int, action="append", metavar="K",
                        help="run index in the file (repeatable; default: every run)")
    parser.add_argument("--psf-fwhm-um", type=float, default=0.3, help="confocal PSF FWHM in um (default 0.3)")
    parser.add_argument("--bowing-ev", type=float, default=0.0,
                        help="optical bowing parameter in eV (default 0: linear in energy)")
    parser.add_argument("--json", action="store_true", help="print what was drawn as one JSON object")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args) -> int:
    from ionwire.continuum.pl import plot_kymograph_file
    from ionwire.structures.errors import UserError

    if not (math.isfinite(args.psf_fwhm_um) and args.psf_fwhm_um > 0):
        raise UserError(f"--psf-fwhm-um must be a positive length, got {args.psf_fwhm_um}")
    if not math.isfinite(args.bowing_ev):
        raise UserError(f"--bowing-ev must be a number, got {args.bowing_ev}")
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: the kymograph is written as PNG (give a .png output)")
    with claim(out, overwrite=args.overwrite):
        info = plot_kymograph_file(args.result, out, runs=args.run, psf_fwhm_um=args.psf_fwhm_um,
                                   bowing_eV=args.bowing_ev)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {out} ({len(info['runs'])} run(s), PSF FWHM {args.psf_fwhm_um:g} um)")
    return 0
