"""Atomistic CsPbX3 structures as :class:`ase.Atoms` (pure factories: no file I/O, like ``ase.build``).

The full pseudo-cubic perovskite supercell of an :class:`~structures.lattice.AnionLattice`
(docs/model.md section 2), a = ``lattice.lattice_constant_A`` (5.8 Angstrom by default):

- Pb at the cell corners ``a (i, j, k)``, Cs at the cell centres ``a (i+1/2, j+1/2, k+1/2)``,
  one of each per cell;
- halides on the anion sites, at exactly ``lattice.positions_A()``; the species of each site comes
  from an occupancy array ``uint8[n_sites]`` with the codes used everywhere in ionwire:
  0 = Br, 1 = Cl, 2 = vacancy.

Atom order: the ``n_cells`` Pb (cell order), then the ``n_cells`` Cs (cell order), then the
halides in site order (``site = ((k ny + j) nx + i) 3 + s``).  Cell vectors are the orthorhombic
box ``lattice.cell_A``; ``pbc = (True, True, lattice.periodic_z)``.

Vacancies.  ``vacancies="omit"`` (default) leaves vacant sites empty: the file then holds a real
crystal, which any viewer shows correctly.  ``vacancies="mark"`` puts ASE's dummy element ``X``
(atomic number 0, what ``ase gui`` shows as a ghost atom and extxyz writes as ``X``) on every vacant
site, so vacancies can be seen and counted.  In both cases the per-atom array ``anion_site``
(int64) holds the anion-site index of every halide/``X`` and -1 for Pb and Cs; it is written to
extxyz files.  Formats that drop custom arrays (ASE ``.traj``) lose nothing: the site of a halide
follows from its position (:func:`occupancy_from_atoms`).

Metadata in ``atoms.info``: ``time_s`` (simulated time, s) when given, ``lattice_nxnynz`` and
``lattice_constant_A``.

Viewer orientation.  :func:`wire_along_x` relabels the axes cyclically, (x, y, z) -> (z, x, y)
(a proper rotation), so the wire axis becomes x: viewers that look down z by default (``ase gui``,
OVITO) then show the wire from the side, horizontal, instead of its end face; ``info["wire_axis"]
= "x"`` records it and :func:`occupancy_from_atoms` undoes it.  A block cut out of a larger
lattice (:func:`crop_cells`) starts at the origin; ``info["origin_cells"]`` holds the cell indices
(i, j, k) of its first cell in the original lattice.

Heterojunctions and continuum profiles.  :func:`occupancy_from_profile` samples an occupancy
consistent with per-plane site fractions x_Br(z), x_V(z) (x_Cl = 1 - x_Br - x_V) by stratified
sampling per anion plane (see there); :func:`heterojunction` builds a CsPbBr3 | CsPbCl3 wire with
a step profile; :func:`sample_continuum_window` builds a thin atomistic wire in a z-window of a
continuum profile x_Br(z), x_V(z) given in micrometres.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Union

import numpy as np
from ase import Atoms

from .lattice import AnionLattice

BR, CL, VACANCY = 0, 1, 2
HALIDE_SYMBOLS = ("Br", "Cl")  # the default pair: occupancy codes 0, 1 (first, second halide)
HALOGEN_NUMBERS = {"F": 9, "Cl": 17, "Br": 35, "I": 53}


def _check_pair(halides) -> tuple[str, str]:
    halides = tuple(halides)
    if len(halides) != 2 or halides[0] == halides[1] or not all(h in HALOGEN_NUMBERS for h in halides):
        raise ValueError(f"halides must be two different symbols of {', '.join(HALOGEN_NUMBERS)}, got {halides!r}")
    return halides
VACANCY_SYMBOL = "X"  # ASE's dummy element (atomic number 0)
VACANCY_MODES = ("omit", "mark")
ANGSTROM_PER_UM = 1.0e4

Profile = Union[float, np.ndarray, Callable[[np.ndarray], np.ndarray]]


def check_occupancy(lattice: AnionLattice, occupancy) -> np.ndarray:
    """Return ``occupancy`` as a uint8[n_sites] array after checking its shape and codes (0, 1, 2)."""
    occ = np.asarray(occupancy)
    if occ.shape != (lattice.n_sites,):
        raise ValueError(f"occupancy must have shape ({lattice.n_sites},) for a {lattice.nx}x{lattice.ny}x"
                         f"{lattice.nz} lattice, got {occ.shape}")
    if occ.dtype.kind not in "iu":
        raise ValueError(f"occupancy must be an integer array (0 Br, 1 Cl, 2 vacancy), got dtype {occ.dtype}")
    if occ.size and (occ.min() < 0 or occ.max() > VACANCY):
        raise ValueError(f"occupancy codes must be 0 (Br), 1 (Cl) or 2 (vacancy); found {int(occ.min())}.."
                         f"{int(occ.max())}")
    return occ.astype(np.uint8, copy=False)


def cation_positions_A(lattice: AnionLattice) -> tuple[np.ndarray, np.ndarray]:
    """(Pb, Cs) positions in Angstrom, each float64[n_cells, 3], in cell order."""
    a = lattice.lattice_constant_A
    c = np.arange(lattice.n_cells)
    ijk = np.stack([c % lattice.nx, (c // lattice.nx) % lattice.ny, c // (lattice.nx * lattice.ny)], axis=1)
    pb = a * ijk.astype(float)
    return pb, pb + 0.5 * a


def perovskite_atoms(lattice: AnionLattice, occupancy, *, vacancies: str = "omit",
                     time_s: float | None = None, halides: tuple[str, str] = HALIDE_SYMBOLS) -> Atoms:
    """The CsPbX3 supercell of ``lattice`` with halides from ``occupancy`` (uint8[n_sites]),
    occupancy code 0 the chemical element ``halides[0]``, 1 ``halides[1]``.

    Returns an :class:`ase.Atoms` with ``2 n_cells + n_halides`` atoms (``+ n_vacancies`` dummy
    ``X`` atoms with ``vacancies="mark"``); see the module docstring for order, cell and metadata.
    """
    if vacancies not in VACANCY_MODES:
        raise ValueError(f"vacancies must be one of {VACANCY_MODES}, got {vacancies!r}")
    occ = check_occupancy(lattice, occupancy)
    pb, cs = cation_positions_A(lattice)
    sites = np.arange(lattice.n_sites, dtype=np.int64)
    if vacancies == "omit":
        sites = sites[occ != VACANCY]
    # atomic numbers of the pair (e.g. Br 35, Cl 17) and X 0, looked up by occupancy code
    a, b = _check_pair(halides)
    anion_numbers = np.array([HALOGEN_NUMBERS[a], HALOGEN_NUMBERS[b], 0], dtype=np.int64)[occ[sites]]
    n_cells = lattice.n_cells
    numbers = np.concatenate([np.full(n_cells, 82), np.full(n_cells, 55), anion_numbers])
    positions = np.concatenate([pb, cs, lattice.positions_A()[sites]])
    atoms = Atoms(numbers=numbers, positions=positions, cell=np.diag(lattice.cell_A),
                  pbc=(True, True, bool(lattice.periodic_z)))
    atoms.set_array("anion_site", np.concatenate([np.full(2 * n_cells, -1, dtype=np.int64), sites]))
    atoms.info["lattice_nxnynz"] = np.array([lattice.nx, lattice.ny, lattice.nz])
    atoms.info["lattice_constant_A"] = float(lattice.lattice_constant_A)
    if time_s is not None:
        atoms.info["time_s"] = float(time_s)
    return atoms


def crop_cells(lattice: AnionLattice, occupancy, *, x: tuple[int, int] | None = None,
               y: tuple[int, int] | None = None, z: tuple[int, int] | None = None) -> tuple[AnionLattice, np.ndarray]:
    """A block of unit cells of a state: (sub-lattice, its occupancy uint8[sub.n_sites]).

    ``x``, ``y``, ``z`` are half-open cell ranges ``(start, stop)`` (default: the whole axis); at
    least 2 cells across (x, y) and 1 along z.  The sub-lattice starts at the origin (add
    ``start * a`` for the original coordinates); it stays periodic along an axis only when that
    axis is kept whole (z: only if the lattice was periodic).
    """
    occ = check_occupancy(lattice, occupancy)
    ranges = []
    for name, r, n, minimum in (("x", x, lattice.nx, 2), ("y", y, lattice.ny, 2), ("z", z, lattice.nz, 1)):
        lo, hi = (0, n) if r is None else (int(r[0]), int(r[1]))
        if not (0 <= lo and lo + minimum <= hi <= n):
            raise ValueError(f"{name} cells {lo}:{hi} must satisfy 0 <= start, start + {minimum} <= stop <= {n}")
        ranges.append((lo, hi))
    (x0, x1), (y0, y1), (z0, z1) = ranges
    keep_z_periodic = lattice.periodic_z and (z0, z1) == (0, lattice.nz)
    sub = AnionLattice(x1 - x0, y1 - y0, z1 - z0, periodic_z=keep_z_periodic,
                       lattice_constant_A=lattice.lattice_constant_A)
    # site = ((k ny + j) nx + i) 3 + s: a 4-D view [k, j, i, s] slices the block directly
    block = occ.reshape(lattice.nz, lattice.ny, lattice.nx, 3)[z0:z1, y0:y1, x0:x1]
    return sub, np.ascontiguousarray(block).reshape(-1)


def parse_cell_range(text: str, n: int, name: str = "z") -> tuple[int, int]:
    """``"START:STOP"`` (either part may be empty: 0 / n) as a half-open cell range within ``n``
    cells; ValueError naming the problem otherwise."""
    try:
        lo, hi = (int(v) if v.strip() else d for v, d in zip(str(text).split(":"), (0, n), strict=True))
    except ValueError:
        raise ValueError(f"expected START:STOP (integers), got {text!r}") from None
    if not 0 <= lo < hi <= n:
        raise ValueError(f"{text}: need 0 <= START < STOP <= {n} (cells along {name} of this lattice)")
    return lo, hi


def wire_along_x(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` with the axes relabelled (x, y, z) -> (z, x, y): the wire axis z becomes
    x (horizontal in viewers that look down z).  Positions, cell and pbc are permuted alike (a
    proper rotation: distances and handedness are kept); ``info["wire_axis"] = "x"``."""
    if atoms.info.get("wire_axis", "z") != "z":
        raise ValueError(f"the wire axis is already {atoms.info['wire_axis']!r}")
    out = atoms.copy()
    order = [2, 0, 1]
    out.set_cell(np.asarray(atoms.cell)[np.ix_(order, order)])
    out.positions = atoms.positions[:, order]
    out.pbc = np.asarray(atoms.pbc)[order]
    out.info["wire_axis"] = "x"
    return out


def _positions_wire_along_z(atoms: Atoms) -> np.ndarray:
    axis = atoms.info.get("wire_axis", "z")
    if axis == "z":
        return atoms.positions
    if axis == "x":  # undo wire_along_x: (X, Y, Z) = (z, x, y)
        return atoms.positions[:, [1, 2, 0]]
    raise ValueError(f"unknown wire_axis {axis!r} in atoms.info (expected 'z' or 'x')")


def occupancy_from_atoms(atoms: Atoms, lattice: AnionLattice, *, tolerance_A: float = 0.05,
                         halides: tuple[str, str] = HALIDE_SYMBOLS) -> np.ndarray:
    """Inverse of :func:`perovskite_atoms`: uint8[n_sites] occupancy read from halide positions
    (``halides``: the elements of the occupancy codes 0 and 1).

    Every halide (of the pair) / X atom must sit within ``tolerance_A`` of an anion site of ``lattice``
    (positions are wrapped along periodic axes); sites without a halide are vacancies (2),
    sites with an ``X`` too.  Atoms turned by :func:`wire_along_x` are turned back first.
    Raises ValueError for an atom off the lattice or two on one site.
    """
    symbols = np.array(atoms.get_chemical_symbols())
    halides = _check_pair(halides)
    mask = np.isin(symbols, halides + (VACANCY_SYMBOL,))
    half = 0.5 * lattice.lattice_constant_A
    u = _positions_wire_along_z(atoms)[mask] / half
    h = np.rint(u).astype(np.int64)
    off = np.abs(u - h).max(axis=1) * half if len(u) else np.zeros(0)
    n_half = 2 * np.array([lattice.nx, lattice.ny, lattice.nz])
    h[:, 0] %= n_half[0]
    h[:, 1] %= n_half[1]
    if lattice.periodic_z:
        h[:, 2] %= n_half[2]
    odd = h % 2
    bad = (off > tolerance_A) | (odd.sum(axis=1) != 1) | (h[:, 2] < 0) | (h[:, 2] >= n_half[2])
    if np.any(bad):
        first = np.flatnonzero(mask)[np.flatnonzero(bad)[0]]
        raise ValueError(f"atom {first} ({symbols[first]} at {_positions_wire_along_z(atoms)[first].round(3).tolist()} A) "
                         f"is not on an anion site of the {lattice.nx}x{lattice.ny}x{lattice.nz} lattice "
                         f"(a = {lattice.lattice_constant_A} A)")
    s = np.argmax(odd, axis=1)
    ijk = (h - odd) // 2
    site = ((ijk[:, 2] * lattice.ny + ijk[:, 1]) * lattice.nx + ijk[:, 0]) * 3 + s
    if len(np.unique(site)) != len(site):
        raise ValueError("two halides sit on the same anion site")
    occ = np.full(lattice.n_sites, VACANCY, dtype=np.uint8)
    code = {halides[0]: BR, halides[1]: CL, VACANCY_SYMBOL: VACANCY}
    occ[site] = np.array([code[x] for x in symbols[mask]], dtype=np.uint8)
    return occ


# ---------------------------------------------------------------------------------------------
# sampling from composition profiles

def _per_plane(lattice: AnionLattice, profile: Profile, name: str) -> np.ndarray:
    z = lattice.plane_z_A()
    if callable(profile):
        values = np.asarray(profile(z), dtype=float)
    else:
        values = np.asarray(profile, dtype=float)
    values = np.broadcast_to(values, z.shape) if values.ndim == 0 else values
    if values.shape != z.shape:
        raise ValueError(f"{name} must be a scalar, a float[{lattice.n_planes}] per anion plane or a "
                         f"function of z (Angstrom); got shape {values.shape}")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"{name} must be site fractions in [0, 1]")
    return values


def occupancy_from_profile(lattice: AnionLattice, x_br: Profile, x_v: Profile = 0.0, *,
                           rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Sample a uint8[n_sites] occupancy with per-plane site fractions x_Br, x_V (x_Cl = rest).

    ``x_br`` and ``x_v`` are scalars, float64[n_planes] (anion plane p at z = p a/2) or functions
    of z in Angstrom evaluated at the plane positions; x_Br + x_V <= 1.

    Stratified sampling per plane of n sites: with one uniform u per plane,
    n_V = floor(x_V n + u) and n_V + n_Br = floor((x_V + x_Br) n + u), so each count is the floor or
    the ceiling of its target, its expectation is exactly x n, and n_Br, n_Cl >= 0; the species are
    then put on a uniformly random permutation of the plane's sites.  Every plane therefore matches
    the profile to within one site, unlike independent per-site draws.
    """
    rng = np.random.default_rng(rng)
    xb = _per_plane(lattice, x_br, "x_br")
    xv = _per_plane(lattice, x_v, "x_v")
    if np.any(xb + xv > 1 + 1e-12):
        raise ValueError("x_br + x_v must not exceed 1 (site fractions)")
    plane = lattice.plane_index()
    order = np.argsort(plane, kind="stable")
    counts = lattice.sites_per_plane()
    starts = np.concatenate([[0], np.cumsum(counts)])
    occ = np.full(lattice.n_sites, CL, dtype=np.uint8)
    u = rng.random(lattice.n_planes)
    n_v = np.floor(xv * counts + u).astype(np.int64)
    n_vbr = np.minimum(np.floor((xv + xb) * counts + u).astype(np.int64), counts)
    for p in range(lattice.n_planes):
        sites = rng.permutation(order[starts[p]:starts[p + 1]])
        occ[sites[:n_v[p]]] = VACANCY
        occ[sites[n_v[p]:n_vbr[p]]] = BR
    return occ


def heterojunction(nx: int, ny: int, nz_br: int, nz_cl: int, *, x_v_br: float = 0.0, x_v_cl: float = 0.0,
                   periodic_z: bool = False, lattice_constant_A: float = 5.8, vacancies: str = "omit",
                   rng: np.random.Generator | int | None = None) -> Atoms:
    """A CsPbBr3 | CsPbCl3 wire along z: ``nz_br`` cells of Br, then ``nz_cl`` cells of Cl.

    Vacancy site fractions ``x_v_br`` / ``x_v_cl`` in each segment are sampled as in
    :func:`occupancy_from_profile`.  Anion planes 0 .. 2 nz_br - 1 (z <= (nz_br - 1/2) a) are Br,
    the rest Cl: the first Cl plane is the PbX2 plane at z = nz_br a, so the Pb layer there has
    Br apices below and Cl in its plane and above.
    Returns the Atoms of :func:`perovskite_atoms` (:func:`occupancy_from_atoms` recovers the
    occupancy).
    """
    lattice = AnionLattice(nx, ny, nz_br + nz_cl, periodic_z=periodic_z, lattice_constant_A=lattice_constant_A)
    p = np.arange(lattice.n_planes)
    in_br = p < 2 * nz_br
    x_v = np.where(in_br, x_v_br, x_v_cl)
    x_br = np.where(in_br, 1.0 - x_v, 0.0)
    occ = occupancy_from_profile(lattice, x_br, x_v, rng=rng)
    return perovskite_atoms(lattice, occ, vacancies=vacancies)


def front_position_um(z_um: np.ndarray, x_br: np.ndarray, level: float = 0.55) -> float:
    """z (um) where x_Br(z) first crosses ``level`` (linear interpolation); the middle of the
    profile if it never does (:func:`ionwire.structures.front.front_near` from the first point)."""
    from .front import front_near

    z = np.asarray(z_um, dtype=float)
    return float(front_near(z, x_br, z[0], level, no_crossing=float(0.5 * (z[0] + z[-1]))))


def sample_continuum_window(z_um, x_br, x_v, *, z_window_um: tuple[float, float] | None = None,
                            n_cells_z: int = 40, cross_section: tuple[int, int] = (4, 4),
                            lattice_constant_A: float = 5.8, vacancies: str = "omit", time_s: float | None = None,
                            interpolation: str = "linear", rng: np.random.Generator | int | None = None,
                            halides: tuple[str, str] = HALIDE_SYMBOLS) -> Atoms:
    """Atomistic thin wire consistent with a continuum profile x_Br(z), x_V(z) in a z-window
    (``x_br``: the first halide's fraction; ``halides``: the elements of the pair).

    ``z_um``: float64[nz] grid (um); ``x_br``, ``x_v``: float64[nz] site fractions on it.
    The wire has ``cross_section = (nx, ny)`` cells (periodic x, y) and spans
    ``z_window_um = (z0, z1)``: nz = round((z1 - z0) / a) cells (at least 1), bounded along z,
    with cell 0 starting at z0.  Without a window, ``n_cells_z`` cells centred on the composition
    front (x_Br = 0.55, :func:`front_position_um`) are used, clipped to the grid.  The profile is
    evaluated at each anion plane (z = z0 + p a/2) and sampled by :func:`occupancy_from_profile`;
    ``interpolation="linear"`` (default) interpolates linearly between grid nodes,
    ``"nearest"`` takes the value of the nearest node (piecewise constant over finite-volume control
    volumes: keeps a step sharp where linear interpolation spreads it over one grid spacing).  Note the scales: 1 um is about 1724 cells, so a continuum
    front a few 10 nm wide looks like a mixed alloy in a 40-cell window.

    ``atoms.info`` gets ``z0_um`` (the wire origin on the continuum axis) and ``time_s``.
    """
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    z = np.asarray(z_um, dtype=float)
    xb = np.asarray(x_br, dtype=float)
    xv = np.asarray(x_v, dtype=float)
    if z.ndim != 1 or z.shape != xb.shape or z.shape != xv.shape or len(z) < 2:
        raise ValueError(f"z_um, x_br, x_v must be 1-D arrays of one length >= 2, got {z.shape}, {xb.shape}, "
                         f"{xv.shape}")
    if np.any(np.diff(z) <= 0):
        raise ValueError("z_um must be strictly increasing")
    a_um = lattice_constant_A / ANGSTROM_PER_UM
    if z_window_um is None:
        if n_cells_z < 1:
            raise ValueError(f"n_cells_z must be >= 1, got {n_cells_z}")
        width = n_cells_z * a_um
        z0 = front_position_um(z, xb) - 0.5 * width
        z0 = min(max(z0, z[0]), max(z[-1] - width, z[0]))
        nz = n_cells_z
    else:
        z0, z1 = (float(v) for v in z_window_um)
        if not (z[0] <= z0 < z1 <= z[-1]):
            raise ValueError(f"z window ({z0}, {z1}) um must be increasing and inside the profile's "
                             f"range [{z[0]}, {z[-1]}] um")
        nz = max(1, int(round((z1 - z0) / a_um)))
    nx, ny = (int(v) for v in cross_section)
    lattice = AnionLattice(nx, ny, nz, periodic_z=False, lattice_constant_A=lattice_constant_A)
    z_planes_um = z0 + lattice.plane_z_A() / ANGSTROM_PER_UM
    if interpolation == "linear":
        xv_p, xb_p = np.interp(z_planes_um, z, xv), np.interp(z_planes_um, z, xb)
    else:
        # nearest node: midpoints between nodes are the control-volume faces
        node = np.searchsorted(0.5 * (z[1:] + z[:-1]), z_planes_um)
        xv_p, xb_p = xv[node], xb[node]
    xv_p = np.clip(xv_p, 0.0, 1.0)
    xb_p = np.clip(xb_p, 0.0, 1.0 - xv_p)
    occ = occupancy_from_profile(lattice, xb_p, xv_p, rng=rng)
    atoms = perovskite_atoms(lattice, occ, vacancies=vacancies, time_s=time_s, halides=halides)
    atoms.info["z0_um"] = float(z0)
    return atoms


# ---------------------------------------------------------------------------------------------
# trajectories (duck-typed on kmc.h5md.Trajectory: .lattice, .n_frames, .times_s, .species(i))

def select_frames(spec: str | int | None, n_frames: int) -> np.ndarray:
    """Frame indices (int64[m], m >= 1) chosen by ``spec`` among ``n_frames`` frames.

    ``spec``: None or ":" (all), an integer N (negative counts from the end, -1 = last) or a
    Python slice ``START:STOP[:STEP]`` (each part optional, integers).  Raises ValueError naming
    the problem for malformed text, an out-of-range integer or a slice that selects nothing.
    """
    if n_frames < 1:
        raise ValueError("the trajectory has no frames")
    if spec is None:
        return np.arange(n_frames)
    text = str(spec).strip()
    if ":" not in text:
        try:
            i = int(text)
        except ValueError:
            raise ValueError(f"bad frame selection {text!r}: expected an integer N or a slice START:STOP[:STEP]") \
                from None
        if not -n_frames <= i < n_frames:
            raise ValueError(f"frame {i} is out of range: the trajectory has {n_frames} frames "
                             f"(0..{n_frames - 1}, or -{n_frames}..-1 from the end)")
        return np.array([i % n_frames])
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"bad frame slice {text!r}: expected START:STOP[:STEP]")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise ValueError(f"bad frame slice {text!r}: START, STOP and STEP must be integers") from None
    if len(values) == 3 and values[2] == 0:
        raise ValueError(f"bad frame slice {text!r}: STEP must not be zero")
    chosen = np.arange(n_frames)[slice(*values)]
    if len(chosen) == 0:
        raise ValueError(f"frame slice {text!r} selects no frames of the {n_frames} in the trajectory")
    return chosen


def crop_atoms(lattice: AnionLattice, occupancy, *, x: tuple[int, int] | None = None,
               y: tuple[int, int] | None = None, z: tuple[int, int] | None = None, vacancies: str = "omit",
               time_s: float | None = None, halides: tuple[str, str] = HALIDE_SYMBOLS) -> Atoms:
    """:func:`perovskite_atoms` of the block of cells :func:`crop_cells` cuts out (the whole
    lattice without ranges), with ``info["origin_cells"]`` = its first cell (i, j, k)."""
    if (x, y, z) != (None, None, None):
        sub, occ = crop_cells(lattice, occupancy, x=x, y=y, z=z)
    else:
        sub, occ = lattice, occupancy
    atoms = perovskite_atoms(sub, occ, vacancies=vacancies, time_s=time_s, halides=halides)
    atoms.info["origin_cells"] = np.array([0 if r is None else int(r[0]) for r in (x, y, z)])
    return atoms


def trajectory_atoms(trajectory, frames=None, *, vacancies: str = "omit", x: tuple[int, int] | None = None,
                     y: tuple[int, int] | None = None, z: tuple[int, int] | None = None,
                     wire_axis: str = "z"):
    """Yield one :class:`ase.Atoms` per selected frame of a kMC trajectory (lazily, frame by frame).

    ``trajectory`` is a :class:`ionwire.kmc.h5md.Trajectory` (or anything with ``.lattice``, ``.n_frames``,
    ``.times_s`` and ``.species(i)``); ``frames`` an iterable of frame indices (default: all).
    ``x``, ``y``, ``z``: half-open cell ranges of a block to keep (:func:`crop_cells`; default the
    whole lattice); ``wire_axis="x"`` turns every frame with :func:`wire_along_x`.
    Each Atoms carries ``info["time_s"]`` (simulated time of the frame, s) and ``info["frame"]``;
    its halides are the trajectory's pair (``trajectory.halides``, default Br, Cl).
    """
    if wire_axis not in ("z", "x"):
        raise ValueError(f"wire_axis must be 'z' or 'x', got {wire_axis!r}")
    lattice = trajectory.lattice
    times = np.asarray(trajectory.times_s, dtype=float)
    for i in (range(trajectory.n_frames) if frames is None else frames):
        atoms = crop_atoms(lattice, trajectory.species(int(i)), x=x, y=y, z=z, vacancies=vacancies,
                           time_s=times[int(i)], halides=getattr(trajectory, "halides", HALIDE_SYMBOLS))
        atoms.info["frame"] = int(i)
        yield wire_along_x(atoms) if wire_axis == "x" else atoms
