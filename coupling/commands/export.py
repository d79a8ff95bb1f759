"""Export frames of a device-kMC trajectory (H5MD) as atomistic CsPbX3 structures for ASE / OVITO / VMD.

Writes the full supercell (Pb, Cs, Br, Cl) of each selected frame with ase.io: `.traj` (ASE
trajectory) or `.extxyz` / `.xyz` (extended XYZ).  Both open with `ase gui OUT` and
`ase.io.read(OUT, index=":")`; each frame's simulated time is in `atoms.info["time_s"]` and its
frame number in `atoms.info["frame"]`.  Vacancies are omitted unless `--vacancies mark`, which puts
the dummy element X on vacant sites.  --frames takes an integer N (negative counts from the end)
or a Python slice START:STOP[:STEP], e.g. `::10` for every tenth frame.

example: ionwire export runs/out/device.h5 -o device.extxyz --frames ::10
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ._output import claim

FORMATS = {".traj": "traj", ".extxyz": "extxyz", ".xyz": "extxyz"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trajectory", metavar="TRAJ.h5", help="device-kMC trajectory (H5MD) written by ionwire device")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file; the format follows the suffix: .traj, .extxyz or .xyz")
    parser.add_argument("--frames", default=":", metavar="SLICE",
                        help="frames to export: N, or START:STOP[:STEP] (default ':' = all)")
    parser.add_argument("--vacancies", choices=("omit", "mark"), default="omit",
                        help="omit vacant anion sites (default) or mark them with the dummy element X")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


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
        # write next to the target and rename at the end: an interrupted export leaves no
        # truncated file under the requested name
        partial = out.with_name(out.name + ".part")
        try:
            n = _write_frames(partial, fmt, trajectory_atoms(traj, frames, vacancies=args.vacancies))
            os.replace(partial, out)
        except (ValueError, OSError) as exc:  # e.g. a file written without species, an unreadable frame
            raise UserError(f"{args.trajectory}: {exc}") from exc
        finally:
            if partial.exists():
                partial.unlink()
    print(f"wrote {n} frame(s) of {args.trajectory} to {out} ({fmt})")
    return 0


def _write_frames(path: Path, fmt: str, frames) -> int:
    """Stream Atoms to ``path`` one frame at a time (memory of one frame); returns the count."""
    from ase.io import write

    n = 0
    if fmt == "traj":
        from ase.io import Trajectory

        with Trajectory(path, "w") as writer:
            for atoms in frames:
                writer.write(atoms)
                n += 1
    else:
        with open(path, "w") as fd:
            for atoms in frames:
                write(fd, atoms, format=fmt)
                n += 1
    return n
