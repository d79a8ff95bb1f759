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
else the matplotlib PNG writer.

example: ionwire snapshot runs/out/device.h5 --frame -1 -o junction.png --size 1200x400
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ._output import claim

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
    parser.add_argument("--size", type=_size, default=(1200, 400), metavar="WxH",
                        help="image size in pixels (default 1200x400)")
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


def _z_cells(text: str, nz: int) -> tuple[int, int]:
    from ionwire.coupling.cli import UserError

    try:
        k0, k1 = (int(v) if v.strip() else d for v, d in zip(text.split(":"), (0, nz), strict=True))
    except ValueError:
        raise UserError(f"--z-cells: expected START:STOP (integers), got {text!r}") from None
    if not 0 <= k0 < k1 <= nz:
        raise UserError(f"--z-cells {text}: need 0 <= START < STOP <= {nz} (cells along z of this lattice)")
    return k0, k1


def _continuum_atoms(args, result):
    from ionwire.structures.atoms import sample_continuum_window

    i = pick_index(result.times_s, args.frame, args.time_s, "continuum result")
    atoms = sample_continuum_window(result.z_um, np.asarray(result.x_br)[i], np.asarray(result.x_v)[i],
                                    z_window_um=args.z_window_um, n_cells_z=args.cells_z,
                                    cross_section=tuple(args.cross_section), vacancies=args.vacancies,
                                    time_s=float(result.times_s[i]), interpolation=args.interpolation,
                                    rng=args.seed)
    field = getattr(result, "metadata", {}).get("field_V_per_um")
    run = "" if field is None else f"field {float(field):g} V/um, "
    return atoms, (f"{run}output time {i} (t = {result.times_s[i]:.4g} s), "
                   f"sampled z0 = {atoms.info['z0_um']:.4g} um")


def load_atoms(args):
    """(Atoms, description) for the input file: a kMC frame, or a sample of a continuum profile."""
    from ionwire.coupling.cli import UserError
    from ionwire.structures.atoms import crop_cells, perovskite_atoms

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
                lattice = traj.lattice
                what = f"frame {i} (t = {t:.4g} s)"
                z = x = y = None
                if args.z_cells is not None:
                    z = _z_cells(args.z_cells, lattice.nz)
                    what += f", cells {z[0]}:{z[1]} along z"
                if args.xy_cells is not None:
                    x, y = (0, args.xy_cells[0]), (0, args.xy_cells[1])
                    what += f", {x[1]}x{y[1]} cells across"
                if (x, y, z) != (None, None, None):
                    try:
                        lattice, occ = crop_cells(lattice, occ, x=x, y=y, z=z)
                    except ValueError as exc:
                        raise UserError(f"{exc} (this lattice: {lattice.nx}x{lattice.ny}x{lattice.nz} cells)") \
                            from exc
                atoms = perovskite_atoms(lattice, occ, vacancies=args.vacancies, time_s=t)
                return atoms, what
    try:
        from ionwire.continuum.io import read_result
    except ImportError as exc:
        errors.append(f"continuum reader unavailable: {exc}")
    else:
        try:
            result = read_result(path, field_V_per_um=args.field_V_per_um)
        except (ValueError, OSError, KeyError) as exc:
            errors.append(f"as a continuum result: {exc}")
        else:
            try:
                return _continuum_atoms(args, result)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
    raise UserError(f"cannot read {path}: " + "; ".join(errors))


def run(args: argparse.Namespace) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.structures.snapshot import render_snapshot

    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UserError(f"the snapshot is a PNG image: the output name must end in .png, got {str(out)!r}")
    if not out.parent.is_dir():
        raise UserError(f"output directory {str(out.parent)!r} does not exist")
    w, h = args.size
    if not (16 <= w <= 20000 and 16 <= h <= 20000):
        raise UserError(f"--size {w}x{h}: each side must be in [16, 20000] pixels")
    from ionwire.structures.parameters import check_seed

    check_seed(args.seed, "--seed")
    atoms, what = load_atoms(args)  # bad input is reported first, then an existing output
    with claim(out, overwrite=args.overwrite):
        # render to a temporary name and rename: an interrupted render leaves no broken image
        partial = out.with_name(f".{out.stem}.part{out.suffix}")
        try:
            render_snapshot(atoms, partial, size_px=args.size, renderer=args.renderer)
            os.replace(partial, out)
        except (ValueError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc
        finally:
            if partial.exists():
                partial.unlink()
    print(f"wrote {out} ({args.size[0]}x{args.size[1]} px, {len(atoms)} atoms) from {args.input}, {what}")
    return 0
