"""Export frames of a device-kMC trajectory (H5MD) as atomistic CsPbX3 structures for ASE / OVITO / VMD.

Writes the CsPbX3 supercell (Pb, Cs, Br, Cl) of each selected frame with ase.io: `.traj` (ASE
trajectory) or `.extxyz` / `.xyz` (extended XYZ).  Both open with `ase gui OUT` and
`ase.io.read(OUT, index=":")`; each frame's simulated time is in `atoms.info["time_s"]` and its
frame number in `atoms.info["frame"]`.  Vacancies are omitted unless `--vacancies mark`, which puts
the dummy element X on vacant sites.  --frames takes an integer N (negative counts from the end)
or a Python slice START:STOP[:STEP], e.g. `::10` for every tenth frame.

Big lattices: --z-cells START:STOP keeps the unit cells START <= k < STOP along the wire and
--xy-cells NX NY the first NX x NY cells of the cross-section (as in `ionwire snapshot`); the
block starts at the origin, `atoms.info["origin_cells"]` holds its first cell (i, j, k).
The wire axis is written along x (--wire-axis x, default: the axes are relabelled
(x, y, z) -> (z, x, y), recorded as `atoms.info["wire_axis"]`), so viewers that look down z
(`ase gui`, OVITO) show the wire from the side, horizontal; --wire-axis z keeps the model's axes.

example: ionwire export runs/out/device.h5 -o junction.extxyz --frames ::10 --z-cells 56:116 --xy-cells 6 6
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ._output import claim, write_error

FORMATS = {".traj": "traj", ".extxyz": "extxyz", ".xyz": "extxyz"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trajectory", metavar="TRAJ.h5", help="device-kMC trajectory (H5MD) written by ionwire device")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file; the format follows the suffix: .traj, .extxyz or .xyz")
    parser.add_argument("--frames", default=":", metavar="SLICE",
                        help="frames to export: N, or START:STOP[:STEP] (default ':' = all)")
    parser.add_argument("--vacancies", choices=("omit", "mark"), default="omit",
                        help="omit vacant anion sites (default) or mark them with the dummy element X")
    parser.add_argument("--z-cells", default=None, metavar="START:STOP",
                        help="export only the unit cells START <= k < STOP along the wire (default: all)")
    parser.add_argument("--xy-cells", type=int, nargs=2, default=None, metavar=("NX", "NY"),
                        help="export only the first NX x NY cells of the cross-section (default: all)")
    parser.add_argument("--wire-axis", choices=("x", "z"), default="x",
                        help="write the wire axis along x (default: horizontal in ase gui / OVITO) or keep z")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def crop_ranges(args, lattice):
    """(x, y, z) cell ranges of --xy-cells / --z-cells for ``lattice`` (None: the whole axis), and
    a description; one-line UserError for a range outside the lattice."""
    from ionwire.coupling.cli import UserError
    from ionwire.structures.atoms import parse_cell_range

    x = y = z = None
    parts = []
    if args.z_cells is not None:
        try:
            z = parse_cell_range(args.z_cells, lattice.nz, "z")
        except ValueError as exc:
            raise UserError(f"--z-cells {exc}") from None
        parts.append(f"cells {z[0]}:{z[1]} along z")
    if args.xy_cells is not None:
        nx, ny = args.xy_cells
        for name, n, full in (("x", nx, lattice.nx), ("y", ny, lattice.ny)):
            if not 2 <= n <= full:
                raise UserError(f"--xy-cells: {name} cells 0:{n} must satisfy 0 <= start, start + 2 <= stop <= "
                                f"{full} (this lattice: {lattice.nx}x{lattice.ny}x{lattice.nz} cells)")
        x, y = (0, nx), (0, ny)
        parts.append(f"{nx}x{ny} cells across")
    return (x, y, z), ", ".join(parts)


def open_kmc_trajectory(path: str):
    """Open a kMC trajectory through kmc.h5md, turning its errors into one-line user errors."""
    from ionwire.coupling.cli import UserError

    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        from ionwire.kmc.h5md import open_trajectory
    except ImportError as exc:  # the trajectory reader is part of the device-kMC installation
        raise UserError(f"cannot read kMC trajectories: {exc}") from exc
    try:
        return open_trajectory(path)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc


def output_format(path: str) -> str:
    from ionwire.coupling.cli import UserError

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot tell the output format of {path!r}: use a suffix among {sorted(FORMATS)}")
    return FORMATS[suffix]


def run(args: argparse.Namespace) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.structures.atoms import select_frames, trajectory_atoms

    fmt = output_format(args.output)
    out = Path(args.output)
    if out.parent and not out.parent.is_dir():
        raise UserError(f"output directory {str(out.parent)!r} does not exist")
    if os.path.realpath(out) == os.path.realpath(args.trajectory):
        raise UserError(f"the output {out} is the input trajectory itself: choose another name")
    with claim(out, overwrite=args.overwrite), open_kmc_trajectory(args.trajectory) as traj:
        try:
            frames = select_frames(args.frames, traj.n_frames)
        except ValueError as exc:
            raise UserError(f"--frames: {exc}") from exc
        (x, y, z), cropped = crop_ranges(args, traj.lattice)
        # write next to the target and rename at the end: an interrupted export leaves no
        # truncated file under the requested name
        partial = out.with_name(out.name + ".part")
        try:
            atoms = trajectory_atoms(traj, frames, vacancies=args.vacancies, x=x, y=y, z=z, wire_axis=args.wire_axis)
            n, n_atoms = _write_frames(partial, fmt, atoms)
            os.replace(partial, out)
        except (ValueError, OSError) as exc:  # e.g. a file written without species, an unreadable frame
            raise (write_error(exc, out) or UserError(f"{args.trajectory}: {exc}")) from None
        finally:
            if partial.exists():
                partial.unlink()
    if args.json:
        print(json.dumps({"output": str(out), "format": fmt, "frames": [int(i) for i in frames],
                          "atoms_per_frame": n_atoms, "wire_axis": args.wire_axis,
                          "z_cells": None if z is None else list(z), "xy_cells": None if x is None else [x[1], y[1]],
                          "bytes": out.stat().st_size}))
    else:
        print(f"wrote {n} frame(s) of {args.trajectory} to {out} ({fmt}"
              + (f"; {cropped}" if cropped else "") + f"; {n_atoms} atoms per frame, wire along {args.wire_axis})")
    return 0


def _write_frames(path: Path, fmt: str, frames) -> tuple[int, int]:
    """Stream Atoms to ``path`` one frame at a time (memory of one frame); returns (frames, atoms
    in the last frame)."""
    from ase.io import write

    n = n_atoms = 0
    if fmt == "traj":
        from ase.io import Trajectory

        with Trajectory(path, "w") as writer:
            for atoms in frames:
                writer.write(atoms)
                n, n_atoms = n + 1, len(atoms)
    else:
        with open(path, "w") as fd:
            for atoms in frames:
                write(fd, atoms, format=fmt)
                n, n_atoms = n + 1, len(atoms)
    return n, n_atoms
