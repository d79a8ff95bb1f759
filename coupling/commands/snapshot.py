"""Render a Fig. 1c-style picture of the wire (Br green, Cl blue, Cs red, Pb grey) to a PNG.

INPUT is a device-kMC trajectory (H5MD, `ionwire device`) or a continuum result file
(`ionwire continuum`; --field-V-per-um picks a run of a multi-field file, default the first);
the kind is detected by trying the kMC reader first.

kMC trajectory: the selected frame's full CsPbX3 supercell is drawn as it is, or, for big
lattices, only the unit cells START <= k < STOP along z (--z-cells START:STOP) and the first
NX x NY cells of the cross-section (--xy-cells NX NY).

Continuum result: an atomistic thin wire is sampled from the profiles x_Br(z), x_V(z) at the
selected time: a cross-section of --cross-section NX NY cells (default 4 4, periodic) spanning
--z-window-um Z0 Z1 (a = 5.8 Angstrom, so 1 um = 1724 cells), or, without a window, --cells-z cells
(default 40) centred on the composition front x_Br = 0.55.  The profile between grid nodes is
interpolated linearly or, with --interpolation nearest, taken from the nearest node.  Each anion plane of n sites gets
floor or ceil of x n vacancies and Br (stochastic rounding, seed --seed), the rest Cl.

--frame N picks a frame / output time (negative counts from the end; default -1, the last);
--time-s T picks the one nearest to T seconds instead.  The view has the wire axis z horizontal,
increasing to the right.  Rendering is ASE's: POV-Ray when `povray` is installed (--renderer auto),
else the matplotlib PNG writer.  A strip along the bottom holds the legend of the elements drawn,
a scale bar and the time (--no-annotation: the atoms alone).  The picture is 1200 px wide and as
tall as the structure needs (--size WxH: exactly that size, the structure filling it in the
direction that binds).  A window too long to resolve atoms (fewer than 2 px per Angstrom) is
refused with the number of cells that fit: crop it (--z-cells, --z-window-um, --cells-z) or widen
--size.

example: ionwire snapshot runs/out/device.h5 --frame -1 -o junction.png --z-cells 56:116 --xy-cells 6 6
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ._output import claim, write_error

import numpy as np


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 1200x400, got {text!r}") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="kMC trajectory (H5MD) or continuum result file")
    parser.add_argument("-o", "--output", required=True, metavar="FIG.png", help="PNG file to write")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--frame", type=int, default=-1, metavar="N",
                      help="frame (kMC) or output time index (continuum); default -1 = last")
    pick.add_argument("--time-s", type=float, default=None, metavar="T",
                      help="use the frame / output time nearest to T seconds")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH",
                        help="image size in pixels (default: 1200 px wide, as tall as the structure needs)")
    parser.add_argument("--no-annotation", action="store_true",
                        help="the atoms alone: no legend, scale bar or time strip")
    parser.add_argument("--json", action="store_true", help="print what was drawn as one JSON object")
    parser.add_argument("--renderer", choices=("auto", "png", "pov"), default="auto",
                        help="ASE writer: pov (POV-Ray, if installed), png (matplotlib); default auto")
    parser.add_argument("--vacancies", choices=("omit", "mark"), default="omit",
                        help="omit vacant anion sites (default) or draw them as small yellow X atoms")
    parser.add_argument("--z-cells", default=None, metavar="START:STOP",
                        help="kMC input: draw only the unit cells START <= k < STOP along z (default: all)")
    parser.add_argument("--xy-cells", type=int, nargs=2, default=None, metavar=("NX", "NY"),
                        help="kMC input: draw only the first NX x NY cells of the cross-section (default: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    cont = parser.add_argument_group("continuum input")
    cont.add_argument("--z-window-um", type=float, nargs=2, default=None, metavar=("Z0", "Z1"),
                      help="z range (um) of the sampled atomistic wire; default: --cells-z cells at the front")
    cont.add_argument("--cells-z", type=int, default=40, metavar="N",
                      help="cells along z without --z-window-um (default 40)")
    cont.add_argument("--cross-section", type=int, nargs=2, default=(4, 4), metavar=("NX", "NY"),
                      help="cells across the sampled wire (default 4 4)")
    cont.add_argument("--field-V-per-um", type=float, default=None, metavar="E",
                      help="which run of a multi-field result file (default: the first in the file)")
    cont.add_argument("--interpolation", choices=("linear", "nearest"), default="linear",
                      help="profile between grid nodes: linear (default) or nearest node (finite-volume cells)")
    cont.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")


def pick_index(times_s, frame: int, time_s: float | None, what: str) -> int:
    """Index into ``times_s`` chosen by --frame or --time-s (ValueError naming the problem)."""
    times = np.asarray(times_s, dtype=float)
    n = len(times)
    if n == 0:
        raise ValueError(f"the {what} holds no {'frames' if what == 'trajectory' else 'output times'}")
    if time_s is not None:
        if not np.isfinite(time_s):
            raise ValueError(f"--time-s must be a finite number, got {time_s}")
        return int(np.argmin(np.abs(times - time_s)))
    if not -n <= frame < n:
        raise ValueError(f"--frame {frame} is out of range: the {what} has {n} "
                         f"{'frames' if what == 'trajectory' else 'output times'} (0..{n - 1}, or -{n}..-1)")
    return frame % n


def _continuum_atoms(args, result):
    from ionwire.structures.atoms import sample_continuum_window

    i = pick_index(result.times_s, args.frame, args.time_s, "continuum result")
    atoms = sample_continuum_window(result.z_um, np.asarray(result.x_br)[i], np.asarray(result.x_v)[i],
                                    z_window_um=args.z_window_um, n_cells_z=args.cells_z,
                                    cross_section=tuple(args.cross_section), vacancies=args.vacancies,
                                    time_s=float(result.times_s[i]), interpolation=args.interpolation,
                                    rng=args.seed, halides=getattr(result, "halides", ("Br", "Cl")))
    field = getattr(result, "metadata", {}).get("field_V_per_um")
    run = "" if field is None else f"field {float(field):g} V/um, "
    return atoms, (f"{run}output time {i} (t = {result.times_s[i]:.4g} s), "
                   f"sampled z0 = {atoms.info['z0_um']:.4g} um")


def load_atoms(args):
    """(Atoms, description) for the input file: a kMC frame, or a sample of a continuum profile."""
    from ionwire.coupling.cli import UserError
    from ionwire.coupling.commands.export import crop_ranges
    from ionwire.structures.atoms import crop_atoms

    path = args.input
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    errors = []
    try:
        from ionwire.kmc.h5md import open_trajectory
    except ImportError as exc:
        open_trajectory = None
        errors.append(f"kMC reader unavailable: {exc}")
    if open_trajectory is not None:
        try:
            traj = open_trajectory(path)
        except (ValueError, OSError) as exc:
            errors.append(f"as a kMC trajectory: {exc}")
        else:
            with traj:
                try:
                    i = pick_index(traj.times_s, args.frame, args.time_s, "trajectory")
                    occ = traj.species(i)
                except (ValueError, OSError) as exc:  # includes a file written without species
                    raise UserError(str(exc)) from exc
                t = float(traj.times_s[i])
                (x, y, z), cropped = crop_ranges(args, traj.lattice)
                what = f"frame {i} (t = {t:.4g} s)" + (f", {cropped}" if cropped else "")
                atoms = crop_atoms(traj.lattice, occ, x=x, y=y, z=z, vacancies=args.vacancies, time_s=t,
                                   halides=traj.halides)
                atoms.info["frame"] = int(i)
                return atoms, what
    try:
        from ionwire.continuum.io import read_result
    except ImportError as exc:
        errors.append(f"continuum reader unavailable: {exc}")
    else:
        try:
            result = read_result(path, field_V_per_um=args.field_V_per_um)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:  # RuntimeError: a truncated HDF5 file
            errors.append(f"as a continuum result: {exc}")
        else:
            try:
                return _continuum_atoms(args, result)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
    raise UserError(f"cannot read {path}: " + "; ".join(errors))


def _label(atoms) -> str | None:
    if "frame" in atoms.info:
        return f"frame {atoms.info['frame']}"
    if "z0_um" in atoms.info:
        nz = int(atoms.info["lattice_nxnynz"][2])
        a_um = float(atoms.info["lattice_constant_A"]) * 1e-4
        return f"z = {atoms.info['z0_um']:.4g}-{atoms.info['z0_um'] + nz * a_um:.4g} \u00b5m"
    return None


def run(args: argparse.Namespace) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.structures.snapshot import fit_size, render_snapshot

    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UserError(f"the snapshot is a PNG image: the output name must end in .png, got {str(out)!r}")
    if not out.parent.is_dir():
        raise UserError(f"output directory {str(out.parent)!r} does not exist")
    if args.size is not None:
        w, h = args.size
        if not (16 <= w <= 20000 and 16 <= h <= 20000):
            raise UserError(f"--size {w}x{h}: each side must be in [16, 20000] pixels")
    from ionwire.structures.parameters import check_seed

    check_seed(args.seed, "--seed")
    atoms, what = load_atoms(args)  # bad input is reported first, then an existing output
    annotate = not args.no_annotation
    with claim(out, overwrite=args.overwrite):
        # render to a temporary name and rename: an interrupted render leaves no broken image
        partial = out.with_name(f".{out.stem}.part{out.suffix}")
        try:
            size = fit_size(atoms, args.size, annotate=annotate)
            render_snapshot(atoms, partial, size_px=size, renderer=args.renderer, annotate=annotate,
                            label=_label(atoms))
            os.replace(partial, out)
        except (ValueError, RuntimeError) as exc:
            hint = ""
            if "too long to resolve atoms" in str(exc):
                hint = (" (--z-window-um Z0 Z1 or --cells-z N for a continuum result, --z-cells START:STOP for a "
                        "kMC frame, or a wider --size)")
            raise UserError(f"{exc}{hint}") from exc
        except OSError as exc:
            err = write_error(exc, out)
            if err is None:
                raise
            raise err from None
        finally:
            if partial.exists():
                partial.unlink()
    if args.json:
        print(json.dumps({"output": str(out), "input": args.input, "width_px": size[0], "height_px": size[1],
                          "atoms": len(atoms), "time_s": atoms.info.get("time_s"), "frame": atoms.info.get("frame"),
                          "z0_um": atoms.info.get("z0_um"), "cells": [int(v) for v in atoms.info["lattice_nxnynz"]],
                          "description": what}))
    else:
        print(f"wrote {out} ({size[0]}x{size[1]} px, {len(atoms)} atoms) from {args.input}, {what}")
    return 0
