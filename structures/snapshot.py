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
  logged warning if it fails, e.g. without its include files: Debian package ``povray-includes``),
  else ``"png"``.

Annotation.  By default the picture has a strip along its bottom with a legend of the elements
present, a scale bar and the simulated time (composed with matplotlib around the writer's image);
pictures of structures too long to resolve atoms are refused (:func:`render_snapshot`).

Exact image size.  Both writers size the picture from a bounding box in the image plane and a
scale (pixels per Angstrom); :func:`render_snapshot` computes the structure's projected bounding
box for the chosen rotation, picks the largest scale at which it fits into the picture area
above the annotation strip and centres it in a box of exactly that aspect ratio, so the PNG has
the requested size.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

# RGB in [0, 1]; chosen to read as the paper's green / blue / red / grey
ELEMENT_COLOURS = {
    "Br": (0.12, 0.70, 0.15),
    "Cl": (0.15, 0.35, 0.95),
    "I": (0.55, 0.15, 0.65),
    "F": (0.70, 0.90, 0.30),
    "Cs": (0.85, 0.10, 0.10),
    "Pb": (0.55, 0.55, 0.55),
    "X": (1.00, 0.90, 0.45),
}
# Display radii (Angstrom): about half the ionic radii, so the lattice stays readable on a
# 5.8 Angstrom cell (ionic radii of Cs+, Br- would overlap the neighbours)
ELEMENT_RADII_A = {"F": 0.7, "Cl": 0.95, "Br": 1.0, "I": 1.1, "Cs": 1.3, "Pb": 0.9, "X": 0.6}
# z horizontal (towards the right), then tilted towards the viewer and turned slightly
JUNCTION_ROTATION = "90y,25x,-10y"
RENDERERS = ("auto", "png", "pov")
DEFAULT_SIZE_PX = (1200, 400)
# pixels per Angstrom below which atoms are not resolved (see render_snapshot)
MIN_PX_PER_A = 2.0

log = logging.getLogger(__name__)


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


def strip_height_px(height_px: int) -> int:
    """Height (px) of the annotation strip at the bottom of a picture ``height_px`` tall."""
    return int(min(60, max(24, round(0.12 * height_px))))


def _bbox_size_A(atoms: Atoms, rotation, radii) -> tuple[float, float]:
    from ase.io.utils import PlottingVariables

    pv = PlottingVariables(atoms, rotation=rotation, radii=radii, show_unit_cell=0, scale=1.0,
                           maxwidth=np.inf)
    xlo, ylo, xhi, yhi = pv.get_bbox()
    return float(xhi - xlo), float(yhi - ylo)


def fit_size(atoms: Atoms, size_px: tuple[int, int] | None = None, *, rotation: str = JUNCTION_ROTATION,
             annotate: bool = True) -> tuple[int, int]:
    """The picture size (width, height) in pixels :func:`render_snapshot` writes.

    ``size_px`` given: that size.  ``None``: 1200 px wide and as tall as the structure needs to
    fill the width (plus the annotation strip), between 48 and 1200 px.
    """
    if size_px is not None:
        return int(size_px[0]), int(size_px[1])
    width = DEFAULT_SIZE_PX[0]
    radii = np.array(_per_atom(atoms, ELEMENT_RADII_A, "radius")) if len(atoms) else np.zeros(0)
    if len(atoms) == 0:
        return DEFAULT_SIZE_PX
    bw, bh = _bbox_size_A(atoms, rotation, radii)
    area_h = math.ceil(width * bh / bw)
    height = area_h
    if annotate:  # the strip's height depends on the picture's: a few fixed-point steps
        for _ in range(5):
            height = area_h + strip_height_px(height)
    return width, int(min(1200, max(48, height)))


def picture_scale_px_per_A(atoms: Atoms, size_px: tuple[int, int] | None = None, *,
                           rotation: str = JUNCTION_ROTATION, annotate: bool = True) -> float:
    """The scale (pixels per Angstrom) :func:`render_snapshot` draws ``atoms`` at."""
    width_px, height_px = fit_size(atoms, size_px, rotation=rotation, annotate=annotate)
    strip = strip_height_px(height_px) if annotate else 0
    radii = np.array(_per_atom(atoms, ELEMENT_RADII_A, "radius"))
    return _fit_bbox(atoms, rotation, radii, (width_px, height_px - strip))[1]


def render_snapshot(atoms: Atoms, path, *, size_px: tuple[int, int] | None = DEFAULT_SIZE_PX,
                    rotation: str = JUNCTION_ROTATION, renderer: str = "auto", annotate: bool = True,
                    label: str | None = None, min_px_per_A: float = MIN_PX_PER_A) -> Path:
    """Write a PNG picture of ``atoms`` of exactly ``size_px = (width, height)`` pixels to ``path``.

    Colours and radii per element from ``ELEMENT_COLOURS`` / ``ELEMENT_RADII_A``; ``rotation`` is an
    ASE rotation string (default: the side view with z horizontal).  ``size_px=None``: the size of
    :func:`fit_size` (1200 px wide, as tall as the structure needs).  The structure is scaled to
    fill the picture (above the annotation strip) in the direction that binds.

    ``annotate`` (default): a strip along the bottom (:func:`strip_height_px`) carries a legend of
    the elements present, a scale bar (in the image plane of the orthographic view) and the time
    ``atoms.info["time_s"]``, with ``label`` (free text, e.g. the frame) after it.

    A structure too long to be drawn with at least ``min_px_per_A`` pixels per Angstrom (2: the
    smallest ion, Pb at 0.9 A, is then 3.6 px across and one 5.8 A cell 12 px) raises ValueError
    saying how many unit cells along the wire fit: such a picture would show a solid band, not
    atoms.  Returns the written path.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    if len(atoms) == 0:
        raise ValueError("nothing to draw: the structure has no atoms")
    width_px, height_px = fit_size(atoms, size_px, rotation=rotation, annotate=annotate)
    if width_px < 16 or height_px < 16 or width_px > 20000 or height_px > 20000:
        raise ValueError(f"image size must be between 16 and 20000 pixels per side, got {width_px}x{height_px}")
    path = Path(path)
    colours = _per_atom(atoms, ELEMENT_COLOURS, "colour")
    radii = np.array(_per_atom(atoms, ELEMENT_RADII_A, "radius"))
    strip = strip_height_px(height_px) if annotate else 0
    if height_px - strip < 8:
        raise ValueError(f"image size {width_px}x{height_px}: too low for the picture and its annotation strip")
    area = (width_px, height_px - strip)
    bbox, scale = _fit_bbox(atoms, rotation, radii, area)
    if scale < min_px_per_A:
        raise ValueError(_too_long_message(atoms, scale, min_px_per_A, width_px))
    log.debug("snapshot: %d atoms, %dx%d px, %.3g px per Angstrom", len(atoms), width_px, height_px, scale)
    if not annotate:
        return _render_atoms(atoms, path, rotation, colours, radii, bbox, scale, area, renderer)
    with tempfile.TemporaryDirectory(prefix="ionwire-snapshot-") as tmp:
        raw = _render_atoms(atoms, Path(tmp) / "atoms.png", rotation, colours, radii, bbox, scale, area, renderer)
        _compose(raw, path, atoms, (width_px, height_px), strip, scale, label)
    return path


def _too_long_message(atoms: Atoms, scale: float, min_px_per_A: float, width_px: int) -> str:
    nz = atoms.info.get("lattice_nxnynz")
    fit = ""
    if nz is not None:
        n_fit = int(np.floor(int(nz[2]) * scale / min_px_per_A))
        fit = (f"; about {n_fit} unit cells along the wire fit in {width_px} px "
               f"(this structure has {int(nz[2])})")
    return (f"too long to resolve atoms: it would be drawn at {scale:.2g} px per Angstrom, at least "
            f"{min_px_per_A:g} are needed{fit}; draw fewer cells or a wider picture")


def _render_atoms(atoms, path: Path, rotation, colours, radii, bbox, scale, size_px, renderer) -> Path:
    """The atoms alone, exactly ``size_px``, through ASE's writers."""
    if renderer == "auto" and povray_available():
        try:
            return _render_povray(atoms, path, rotation, colours, radii, bbox, size_px)
        except RuntimeError as exc:  # e.g. povray without its include files: still give a picture
            log.warning("%s; falling back to the matplotlib PNG writer", exc)
            renderer = "png"
    if renderer in ("auto", "png"):
        from ase.io import write

        write(path, atoms, format="png", rotation=rotation, colors=colours, radii=radii,
              show_unit_cell=0, bbox=bbox, scale=scale)
        return path
    return _render_povray(atoms, path, rotation, colours, radii, bbox, size_px)


SPECIES_ORDER = (("Br", "Br"), ("Cl", "Cl"), ("I", "I"), ("F", "F"), ("Cs", "Cs"), ("Pb", "Pb"), ("X", "vacancy"))


def format_time(t_s: float) -> str:
    """``t`` in seconds as short text with a readable unit: 0 s, 20 ns, 1.5 us, 4 h."""
    t = float(t_s)
    if t == 0 or not math.isfinite(t):
        return f"{t:g} s"
    if abs(t) >= 3600:
        return f"{t / 3600:.3g} h"
    if abs(t) >= 60:
        return f"{t / 60:.3g} min"
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "\u00b5s"), (1e-9, "ns"), (1e-12, "ps")):
        if abs(t) >= factor:
            return f"{t / factor:.3g} {unit}"
    return f"{t:.3g} s"


def scale_bar_length_A(scale_px_per_A: float, width_px: int, fraction: float = 0.15) -> float:
    """A round length (1, 2 or 5 x 10^k Angstrom) about ``fraction`` of the picture width."""
    target = fraction * width_px / scale_px_per_A
    k = math.floor(math.log10(target))
    best = min((m * 10.0**e for e in (k - 1, k, k + 1) for m in (1, 2, 5)), key=lambda v: abs(math.log(v / target)))
    return float(best)


def _length_text(length_A: float) -> str:
    return f"{length_A / 10:g} nm" if length_A >= 10 else f"{length_A:g} \u00c5"


def _compose(raw_png: Path, path: Path, atoms: Atoms, size_px, strip: int, scale: float, label: str | None):
    """The atoms picture above an annotation strip (legend, scale bar, time), exactly ``size_px``."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    width, height = size_px
    img = mpimg.imread(raw_png)
    if img.dtype != np.float32 and img.dtype != np.float64:
        img = img / 255.0
    if img.shape[-1] == 3:
        img = np.concatenate([img, np.ones(img.shape[:2] + (1,), img.dtype)], axis=-1)
    dpi = 100.0
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.figimage(img[: height - strip, :width], xo=0, yo=strip, origin="upper")
    ax = fig.add_axes((0, 0, 1, strip / height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, strip)
    ax.set_axis_off()
    font_px = min(14.0, 0.45 * strip)
    fontsize = font_px * 72.0 / dpi
    y = 0.5 * strip
    r = min(0.3 * strip, 7.0)
    renderer = canvas.get_renderer()

    def text_width(text):
        t = ax.text(0, 0, text, fontsize=fontsize)
        w = t.get_window_extent(renderer=renderer).width
        t.remove()
        return w

    # legend (left): the elements present, in the paper's order
    present = set(atoms.get_chemical_symbols())
    x = 1.0 * font_px
    for symbol, name in SPECIES_ORDER:
        if symbol not in present:
            continue
        ax.add_patch(Circle((x + r, y), r, facecolor=ELEMENT_COLOURS[symbol], edgecolor="black", linewidth=0.8))
        ax.text(x + 2 * r + 0.3 * font_px, y, name, fontsize=fontsize, va="center", ha="left")
        x += 2 * r + 0.3 * font_px + text_width(name) + 0.9 * font_px
    # scale bar (right)
    bar_A = scale_bar_length_A(scale, width)
    bar_px = bar_A * scale
    right = width - 1.0 * font_px
    bar_text = _length_text(bar_A)
    ax.add_patch(Rectangle((right - bar_px, y - 0.12 * strip), bar_px, 0.08 * strip, facecolor="black"))
    ax.text(right - 0.5 * bar_px, y + 0.02 * strip, bar_text, fontsize=fontsize, ha="center", va="bottom")
    free_right = right - max(bar_px, text_width(bar_text)) - 0.9 * font_px
    # time and label (between): as much as fits
    parts = []
    if "time_s" in atoms.info:
        parts.append("t = " + format_time(atoms.info["time_s"]))
    if label:
        parts.append(label)
    text = ",  ".join(parts)
    while text and x + text_width(text) > free_right:
        parts = parts[:-1] if len(parts) > 1 else []
        text = ",  ".join(parts)
    if text:
        ax.text(x, y, text, fontsize=fontsize, va="center", ha="left")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    out = np.full((height, width, 4), 255, dtype=np.uint8)
    h, w = min(height, rgba.shape[0]), min(width, rgba.shape[1])
    out[:h, :w] = rgba[:h, :w]
    mpimg.imsave(path, out, format="png")
    return path


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
