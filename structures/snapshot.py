"""Fig. 1c-style pictures of a CsPbX3 wire, rendered by ASE's writers (no renderer of our own).

Look (Kong et al., Nano Lett. 2020, Fig. 1c): Br green, Cl blue, Cs red, Pb grey (vacancies marked
as ``X`` in light yellow when the Atoms carry them), seen from the side with the wire axis z
horizontal and increasing to the right, tilted (``JUNCTION_ROTATION``) so the three-dimensional
lattice and the junction along z are both visible.

Renderers:
- ``"png"``: ``ase.io.write(path, atoms, format="png", ...)`` (matplotlib Agg backend: flat discs
  with black outlines, painted back to front);
- ``"pov"``: ``ase.io.write(path.pov, atoms, format="pov", ...)`` then POV-Ray (ray traced), when
  a ``povray`` executable is on PATH;
- ``"auto"`` (default): ``"pov"`` when POV-Ray is installed (falling back to ``"png"`` with a
  warning if it fails, e.g. without its include files: Debian package ``povray-includes``),
  else ``"png"``.

Exact image size.  Both writers size the picture from a bounding box in the image plane and a
scale (pixels per Angstrom); :func:`render_snapshot` computes the structure's projected bounding
box for the chosen rotation, picks the largest scale at which it fits into ``size_px = (width,
height)`` and centres it in a box of exactly that aspect ratio, so the PNG has the requested size.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

# RGB in [0, 1]; chosen to read as the paper's green / blue / red / grey
ELEMENT_COLOURS = {
    "Br": (0.12, 0.70, 0.15),
    "Cl": (0.15, 0.35, 0.95),
    "Cs": (0.85, 0.10, 0.10),
    "Pb": (0.55, 0.55, 0.55),
    "X": (1.00, 0.90, 0.45),
}
# Display radii (Angstrom): about half the ionic radii, so the lattice stays readable on a
# 5.8 Angstrom cell (ionic radii of Cs+, Br- would overlap the neighbours)
ELEMENT_RADII_A = {"Br": 1.0, "Cl": 0.95, "Cs": 1.3, "Pb": 0.9, "X": 0.6}
# z horizontal (towards the right), then tilted towards the viewer and turned slightly
JUNCTION_ROTATION = "90y,25x,-10y"
RENDERERS = ("auto", "png", "pov")
DEFAULT_SIZE_PX = (1200, 400)


def povray_available() -> bool:
    """True when a ``povray`` executable is on PATH."""
    return shutil.which("povray") is not None


def _per_atom(atoms: Atoms, table: dict, name: str) -> list:
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(table))
    if missing:
        raise ValueError(f"no snapshot {name} for element(s) {missing}")
    return [table[s] for s in symbols]


def _fit_bbox(atoms: Atoms, rotation, radii, size_px) -> tuple[np.ndarray, float]:
    """Image-plane bounding box (Angstrom, (xlo, ylo, xhi, yhi)) with the aspect ratio of ``size_px``
    and the scale (pixels per Angstrom) that maps it onto ``size_px``."""
    from ase.io.utils import PlottingVariables

    pv = PlottingVariables(atoms, rotation=rotation, radii=radii, show_unit_cell=0, scale=1.0,
                           maxwidth=np.inf)
    xlo, ylo, xhi, yhi = pv.get_bbox()
    width_px, height_px = size_px
    scale = min(width_px / (xhi - xlo), height_px / (yhi - ylo))
    cx, cy = 0.5 * (xlo + xhi), 0.5 * (ylo + yhi)
    # the writers truncate width * scale to an int: a relative 1e-9 margin keeps e.g. 1199.9999999
    # from becoming 1199
    half_w = 0.5 * width_px / scale * (1 + 1e-9)
    half_h = 0.5 * height_px / scale * (1 + 1e-9)
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h]), scale


def render_snapshot(atoms: Atoms, path, *, size_px: tuple[int, int] = DEFAULT_SIZE_PX,
                    rotation: str = JUNCTION_ROTATION, renderer: str = "auto") -> Path:
    """Write a PNG picture of ``atoms`` of exactly ``size_px = (width, height)`` pixels to ``path``.

    Colours and radii per element from ``ELEMENT_COLOURS`` / ``ELEMENT_RADII_A``; ``rotation`` is an
    ASE rotation string (default: the side view with z horizontal).  Returns the written path.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    width_px, height_px = (int(v) for v in size_px)
    if width_px < 16 or height_px < 16 or width_px > 20000 or height_px > 20000:
        raise ValueError(f"image size must be between 16 and 20000 pixels per side, got {width_px}x{height_px}")
    if len(atoms) == 0:
        raise ValueError("nothing to draw: the structure has no atoms")
    path = Path(path)
    colours = _per_atom(atoms, ELEMENT_COLOURS, "colour")
    radii = np.array(_per_atom(atoms, ELEMENT_RADII_A, "radius"))
    bbox, scale = _fit_bbox(atoms, rotation, radii, (width_px, height_px))
    if renderer == "auto" and povray_available():
        try:
            return _render_povray(atoms, path, rotation, colours, radii, bbox, (width_px, height_px))
        except RuntimeError as exc:  # e.g. povray without its include files: still give a picture
            warnings.warn(f"{exc}; falling back to the matplotlib PNG writer", RuntimeWarning, stacklevel=2)
            renderer = "png"
    if renderer in ("auto", "png"):
        from ase.io import write

        write(path, atoms, format="png", rotation=rotation, colors=colours, radii=radii,
              show_unit_cell=0, bbox=bbox, scale=scale)
        return path
    return _render_povray(atoms, path, rotation, colours, radii, bbox, (width_px, height_px))


def _render_povray(atoms, path: Path, rotation, colours, radii, bbox, size_px) -> Path:
    if not povray_available():
        raise RuntimeError("renderer 'pov' needs the povray executable on PATH (e.g. apt-get install povray)")
    from ase.io import write

    with tempfile.TemporaryDirectory(prefix="ionwire-pov-") as tmp:
        pov_path = Path(tmp) / "snapshot.pov"
        inputs = write(pov_path, atoms, format="pov", rotation=rotation, colors=colours, radii=radii,
                       show_unit_cell=0, bbox=bbox,
                       povray_settings=dict(canvas_width=int(size_px[0]), transparent=False,
                                            background="White", camera_type="orthographic"))
        ini = Path(inputs.path)
        _fix_canvas_height(ini, size_px)
        # ASE's .ini names the .pov relative to the directory it is in: run POV-Ray there
        proc = subprocess.run(["povray", ini.name], cwd=tmp, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        png = ini.with_suffix(".png")
        if proc.returncode != 0 or not png.is_file():
            last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-3:]
            raise RuntimeError(f"povray failed with exit status {proc.returncode}: " + " | ".join(last))
        shutil.move(os.fspath(png), os.fspath(path))
    return path


def _fix_canvas_height(ini_path: Path, size_px) -> None:
    # ASE derives the canvas height from width / aspect ratio as a float; POV-Ray wants the exact
    # integer we asked for
    lines = ini_path.read_text().splitlines()
    out = [f"Height={int(size_px[1])}" if ln.startswith("Height=") else
           f"Width={int(size_px[0])}" if ln.startswith("Width=") else ln for ln in lines]
    ini_path.write_text("\n".join(out) + "\n")
