"""HDF5 (H5MD 1.1) trajectories and checkpoints of the device kMC: every h5py call of kmc/ is here.

Trajectory layout (H5MD 1.1, https://www.nongnu.org/h5md/h5md.html, format version 2)::

    /                          attrs schema = "ionwire.device_trajectory", schema_version = 2,
                               provenance (JSON)                       (structures.hdf5.mark)
    /h5md                      attrs version = int32[2] {1, 1}
        author                 attrs name
        creator                attrs name = "ionwire", version
        modules/units          attrs version = int32[2] {1, 0}, system = "SI"
    /particles/anions
        box                    attrs dimension = 3, boundary = ["periodic", "periodic", "none"]
            edges              {step int64[f], time float64[f] (s), value float64[f, 3] (angstrom)}
        position               {step, time: hard links to box/edges/step, time;
                                value float32[f, n_sites, 3] (angstrom): a virtual dataset, every
                                frame maps to /parameters/site_position (the sites do not move)}
        species                {step, time: hard links; value uint8[f, n_sites]}: atomic numbers,
                               species_z(halides): e.g. 35 Br, 17 Cl, 0 vacancy (ASE's dummy element "X");
                               chunked (1 frame x <= 2^20 sites), gzip
    /observables
        x_<A>, x_<B>, x_V      {step, time, value float64[f, n_planes]}  site fractions per anion plane
                               (A, B the halide pair, e.g. x_Br, x_Cl)
        charge                 {step, time, value float64[f, n_planes]}  e per plane: vacancies - background
        potential              {step, time, value float64[f, n_planes]}  V, laterally averaged Poisson
        counters               {step, time, value int64[f, n_counters]}, attr columns = counter names
        (runs with a [bias] protocol only, PROTOCOL_SERIES; /parameters@series lists them)
        bias_voltage           {step, time, value float64[f]}  V, imposed potential left minus right
        front_position         {step, time, value float64[f]}  angstrom, the x_Br = 0.55 front
        migration_length       {step, time, value float64[f]}  angstrom, front(0) - front(t), signed
        ionic_current          {step, time, value float64[f, 2, 2]}  A, [contact, species]
        charge_passed          {step, time, value float64[f, 2]}  e, [contact]
        halide_exchange        {step, time, value int64[f, 8]}, attr columns = exchange counter names
    /parameters                attrs: config (the ionwire TOML config as JSON), seed, nx, ny, nz,
                               lattice_constant_A, code_version, library versions, format,
                               format_version, halides (JSON list; absent in older files: Br, Cl),
                               frames_complete (frames fully written and flushed)
        site_position          float32[n_sites, 3] (angstrom), the fixed anion sites
        site_position_frames/  hard links 0, 1, ... to site_position, one per frame: the sources
                               of the ``position`` virtual dataset (its printf-style mapping
                               ``site_position_frames/%b`` makes its length follow the frames)
        <name>                 static per-plane arrays of the run (plane_z_A, sites_per_plane, ...)

Unit attributes (``unit``) follow the H5MD units grammar (space-separated symbols with integer
powers; the units module is declared): ``s``, ``angstrom`` (the length unit of ASE and MDAnalysis),
``V``, ``e`` (elementary charge), ``1`` (site fractions).  Every string parses in pint.

The standard readers open the file directly::

    MDAnalysis.Universe.empty(n_sites, trajectory=False).load_new(path, format="H5MD")
    ase.io.read(path, ":")          # with ZnH5MD installed: Br, Cl and X (vacancy), cell, pbc
    pyh5md.File(path, "r")

(MDAnalysis reads positions, box, times and observables but no species, hence the empty
universe; ``ase gui`` opens the file through the same ZnH5MD plugin.)

Every frame is appended (datasets resized along the frame axis, ``maxshape=None``), flushed,
and only then counted in ``/parameters@frames_complete`` (flushed again).  A reader uses
``min(frames_complete, dataset lengths)``, so a run killed with SIGKILL at any moment leaves a file
whose complete frames all read back.  Files of format version 1 (private species codes, one
time-independent ``position``) are still read; they cannot be appended to.

Checkpoints are separate small HDF5 files (``<trajectory>.checkpoint``), written to a temporary
file, fsynced and atomically renamed over the previous one: a kill while checkpointing keeps the
previous checkpoint intact.

Reader API::

    with open_trajectory(path) as traj:
        traj.lattice            # structures.lattice.AnionLattice (z bounded)
        traj.n_frames, traj.times_s, traj.steps
        traj.halides            # the pair, e.g. ("Br", "Cl"); traj.observable_names
        traj.species(i)         # uint8[n_sites] of frame i: the occupancy codes 0, 1 (the pair), 2 vacancy
        traj.observable("x_V")  # float64[n_frames, n_planes]
        traj.counters()         # dict name -> int64[n_frames]
        traj.config, traj.attributes, traj.static(name)

Bad, truncated or foreign files raise :class:`TrajectoryError` (a ValueError) naming the file.
"""
from __future__ import annotations

import contextlib
import json
import os
from importlib import metadata as _metadata

import h5py
import numpy as np

from ionwire.structures.hdf5 import abandon, ensure_space, is_write_failure, mark
from ionwire.structures.lattice import AnionLattice
from ionwire.structures.provenance import provenance

FORMAT = "ionwire-device-h5md"
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
SCHEMA = "ionwire.device_trajectory"
#: the halide pair of a file that does not say (written before the pair was data)
DEFAULT_HALIDES = ("Br", "Cl")


def observable_names(halides: tuple[str, str] = DEFAULT_HALIDES) -> tuple[str, ...]:
    """The per-plane observables of a trajectory of the pair ``halides``: x_<A>, x_<B>, x_V,
    charge, potential (site fractions named by the halides' chemical symbols)."""
    return (f"x_{halides[0]}", f"x_{halides[1]}", "x_V", "charge", "potential")


def observable_unit(name: str) -> str:
    """H5MD units grammar (and pint): site fractions are dimensionless ("1"), charge in elementary charges."""
    return {"charge": "e", "potential": "V"}.get(name, "1")


def observable_description(name: str) -> str:
    if name == "x_V":
        return "vacancy site fraction of each anion plane"
    if name == "charge":
        return "net charge of each anion plane (vacancies minus background), elementary charges per plane"
    if name == "potential":
        return "laterally averaged electrostatic potential of each anion plane"
    return f"{name[2:]} site fraction of each anion plane"


#: the observables of a file of the default pair (Br, Cl)
OBSERVABLES = observable_names(DEFAULT_HALIDES)
OBSERVABLE_UNITS = {n: observable_unit(n) for n in OBSERVABLES}
OBSERVABLE_DESCRIPTIONS = {n: observable_description(n) for n in OBSERVABLES}
LENGTH_UNIT = "angstrom"
#: the time series of a run with a bias protocol: name -> (row shape, dtype, unit, description);
#: written only for such runs (a constant-field run without [bias] writes the files it always did)
PROTOCOL_SERIES = {
    "bias_voltage": ((), np.float64, "V", "imposed potential of the left minus the right imposed plane "
                                          "(the applied field times their distance; > 0 forward)"),
    "front_position": ((), np.float64, LENGTH_UNIT, "z of the Br|Cl front: the crossing of x_Br = 0.55 nearest the "
                                                    "integral front, on bins of FRONT_BIN_CELLS cells "
                                                    "(structures.front.binned_front)"),
    "migration_length": ((), np.float64, LENGTH_UNIT, "front_position(0) - front_position(t): > 0 when the front "
                                                      "moved towards the Br end (the continuum's sign)"),
    "ionic_current": ((2, 2), np.float64, "A", "electric current into the wire carried by each halide species at "
                                               "each contact, [left, right] x [Br, Cl], averaged since the previous "
                                               "frame: e (halides leaving the wire into the electrode - halides "
                                               "entering from it) / dt (a halide is charged -e); 0 at frame 0"),
    "charge_passed": ((2,), np.float64, "e", "charge that entered the wire from each electrode [left, right] "
                                             "since t = 0: halides given to the electrode - halides taken from it"),
    "halide_exchange": ((8,), np.int64, None, "cumulative halide exchange counters (columns)"),
}
TIME_UNIT = "s"
CHECKPOINT_FORMAT = "ionwire-device-checkpoint"
CHECKPOINT_SCHEMA = "ionwire.device_checkpoint"
CHECKPOINT_VERSION = 1
_SPECIES_CHUNK = 1 << 20

# Species on disk are atomic numbers, so that H5MD readers (ZnH5MD, ASE) see elements; the
# occupancy codes of the simulation (0 Br, 1 Cl, 2 vacancy) index this table.  A vacancy is
# stored as 0, the atomic number ASE gives its dummy element "X".
HALOGEN_Z = {"F": 9, "Cl": 17, "Br": 35, "I": 53}
VACANCY_Z = 0


def species_z(halides: tuple[str, str] = DEFAULT_HALIDES) -> np.ndarray:
    """uint8[3]: the atomic numbers stored for the occupancy codes 0, 1 (the pair) and 2 (vacancy)."""
    return np.array([HALOGEN_Z[halides[0]], HALOGEN_Z[halides[1]], VACANCY_Z], dtype=np.uint8)


SPECIES_Z = species_z(DEFAULT_HALIDES)


def species_to_atomic_numbers(occupancy: np.ndarray, halides: tuple[str, str] = DEFAULT_HALIDES) -> np.ndarray:
    """uint8 atomic numbers (e.g. Br 35, Cl 17, vacancy 0) of occupancy codes (0 first halide,
    1 second halide, 2 vacancy)."""
    occ = np.asarray(occupancy)
    if occ.size and int(occ.max()) >= 3:
        raise ValueError(f"occupancy codes must be 0 ({halides[0]}), 1 ({halides[1]}) or 2 (vacancy), "
                         f"found {int(occ.max())}")
    return species_z(halides)[occ]


def atomic_numbers_to_species(numbers: np.ndarray, halides: tuple[str, str] = DEFAULT_HALIDES) -> np.ndarray:
    """Occupancy codes (0 first halide, 1 second halide, 2 vacancy) of stored atomic numbers;
    ValueError for others."""
    z = species_z(halides)
    table = np.full(256, 255, dtype=np.uint8)
    table[z] = np.arange(z.size, dtype=np.uint8)
    codes = table[np.asarray(numbers, dtype=np.uint8)]
    if codes.size and int(codes.max()) == 255:
        bad = np.asarray(numbers)[codes == 255][0]
        raise ValueError(f"atomic number {int(bad)} is not a species of the anion sublattice ({z[0]} {halides[0]}, "
                         f"{z[1]} {halides[1]}, 0 vacancy)")
    return codes


def _file_halides(f) -> tuple[str, str]:
    """The halide pair of a trajectory or checkpoint (/parameters@halides; files written before
    the pair was data: Br, Cl)."""
    raw = f["parameters"].attrs.get("halides") if "parameters" in f else None
    if raw is None:
        return DEFAULT_HALIDES
    pair = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return (str(pair[0]), str(pair[1]))


class TrajectoryError(ValueError):
    """A trajectory or checkpoint file is missing, unreadable, truncated or not an ionwire device file."""


def checkpoint_path(trajectory_path: str | os.PathLike) -> str:
    """The checkpoint file that belongs to a trajectory: ``<trajectory>.checkpoint``."""
    return os.fspath(trajectory_path) + ".checkpoint"


def library_versions() -> dict[str, str]:
    """Versions of ionwire and the libraries a result depends on (stored with every file)."""
    import numba
    out = {"numpy": np.__version__, "numba": numba.__version__, "h5py": h5py.version.version,
           "hdf5": h5py.version.hdf5_version}
    try:
        out["ionwire"] = _metadata.version("ionwire")
    except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        out["ionwire"] = "unknown"
    return out


def _open_h5(path, mode: str, what: str) -> h5py.File:
    path = os.fspath(path)
    if mode == "r" and not os.path.exists(path):
        raise TrajectoryError(f"{what} {path!r} does not exist")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise TrajectoryError(f"{what} {path!r} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None


# ---------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------
class _OpenFile:
    """Holds an open h5py file in ``self._f``; ``close`` and context-manager support."""

    _f = None

    def close(self) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            try:
                f.close()
            except Exception as exc:  # a full disk met by the last flush
                _close_or_abandon(f, exc, str(getattr(self, "path", "")), close=False)
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TrajectoryWriter(_OpenFile):
    """Append frames to an H5MD device trajectory (see the module docstring for the layout).

    Create with :meth:`create` (a new file) or :meth:`reopen` (append to an existing one after
    truncating it to a checkpoint's frame count).  ``write_frame`` flushes before returning.
    """

    def __init__(self, f: h5py.File, path: str, n_sites: int, n_planes: int, counter_names: tuple[str, ...],
                 write_species: bool, cell_A: np.ndarray, series: tuple[str, ...] = (),
                 halides: tuple[str, str] = DEFAULT_HALIDES):
        self._f = f
        self.halides = tuple(halides)
        self.observable_names = observable_names(self.halides)
        self.path = path
        self.n_sites = n_sites
        self.n_planes = n_planes
        self.counter_names = tuple(counter_names)
        self.write_species = write_species
        self.cell_A = np.asarray(cell_A, dtype=np.float64)
        self.series = tuple(series)
        self.n_frames = int(f["parameters"].attrs["frames_complete"])

    # construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path, lattice: AnionLattice, *, config: dict, seed: int | None,
               counter_names: tuple[str, ...], static: dict[str, np.ndarray] | None = None,
               write_species: bool = True, author: str = "ionwire user", series: tuple[str, ...] = (),
               series_columns: dict[str, tuple[str, ...]] | None = None,
               halides: tuple[str, str] = DEFAULT_HALIDES) -> "TrajectoryWriter":
        """A new trajectory file at ``path`` (overwritten) with the static data written once;
        ``series``: names of :data:`PROTOCOL_SERIES` to write every frame too (with their
        ``columns`` attribute from ``series_columns``); ``halides``: the pair, which names the
        observables (x_<A>, x_<B>) and the stored atomic numbers."""
        halides = tuple(halides)
        path = os.fspath(path)
        ensure_space(path, 16.0 * lattice.n_sites + sum(np.asarray(a).nbytes for a in (static or {}).values()),
                     f"the trajectory {os.path.basename(path)}")
        f = h5py.File(path, "w")
        try:
            versions = library_versions()
            mark(f, SCHEMA, FORMAT_VERSION, provenance=provenance())
            h = f.create_group("h5md")
            h.attrs["version"] = np.array([1, 1], dtype=np.int32)
            h.create_group("author").attrs["name"] = author
            cr = h.create_group("creator")
            cr.attrs["name"] = "ionwire"
            cr.attrs["version"] = versions["ionwire"]
            units = h.create_group("modules/units")
            units.attrs["version"] = np.array([1, 0], dtype=np.int32)
            units.attrs["system"] = "SI"
            par = f.create_group("parameters")
            n = lattice.n_sites
            sites = par.create_dataset("site_position", shape=(n, 3), dtype=np.float32,
                                       chunks=(min(n, _SPECIES_CHUNK), 3), compression="gzip", compression_opts=1)
            sites.attrs["unit"] = LENGTH_UNIT
            _write_positions(sites, lattice)
            par.create_group("site_position_frames")
            anions = f.create_group("particles/anions")
            box = anions.create_group("box")
            box.attrs["dimension"] = np.int32(3)
            box.attrs["boundary"] = np.array(["periodic", "periodic", "none"], dtype=h5py.string_dtype())
            edges = _time_series(box, "edges", (3,), np.float64, chunk_row=3, compress=False, unit=LENGTH_UNIT,
                                 frames_per_chunk=64)
            pos = anions.create_group("position")
            _link_step_time(pos, edges)
            _position_vds(pos, n)
            if write_species:
                sp = anions.create_group("species")
                _link_step_time(sp, edges)
                sp.create_dataset("value", shape=(0, n), maxshape=(None, n), dtype=np.uint8,
                                  chunks=(1, min(n, _SPECIES_CHUNK)), compression="gzip", compression_opts=1)
                z = species_z(halides)
                sp["value"].attrs["codes"] = f"atomic numbers: {z[0]} {halides[0]}, {z[1]} {halides[1]}, 0 vacancy"
            obs = f.create_group("observables")
            for name in observable_names(halides):
                g = _time_series(obs, name, (2 * lattice.nz,), np.float64, chunk_row=2 * lattice.nz,
                                 compress=False, unit=observable_unit(name), frames_per_chunk=16)
                g["value"].attrs["description"] = observable_description(name)
            c = _time_series(obs, "counters", (len(counter_names),), np.int64, chunk_row=len(counter_names),
                             compress=False, unit=None, frames_per_chunk=64)
            c.attrs["columns"] = np.array([s.encode() for s in counter_names])
            for name in series:
                shape, dtype, unit, desc = PROTOCOL_SERIES[name]
                g = _time_series(obs, name, shape, dtype, chunk_row=None, compress=False, unit=unit,
                                 frames_per_chunk=64)
                g["value"].attrs["description"] = desc
                if series_columns and name in series_columns:
                    g.attrs["columns"] = np.array([s.encode() for s in series_columns[name]])
            if series:
                f["parameters"].attrs["series"] = json.dumps(list(series))
            par.attrs["format"] = FORMAT
            par.attrs["format_version"] = FORMAT_VERSION
            par.attrs["halides"] = json.dumps(list(halides))
            par.attrs["config"] = json.dumps(config, sort_keys=True)
            par.attrs["seed"] = -1 if seed is None else int(seed)
            par.attrs["nx"] = lattice.nx
            par.attrs["ny"] = lattice.ny
            par.attrs["nz"] = lattice.nz
            par.attrs["lattice_constant_A"] = lattice.lattice_constant_A
            par.attrs["code_version"] = versions["ionwire"]
            par.attrs["library_versions"] = json.dumps(versions, sort_keys=True)
            par.attrs["species_written"] = bool(write_species)
            for name, arr in (static or {}).items():
                if name in par:
                    raise ValueError(f"static array name {name!r} is reserved in /parameters")
                par.create_dataset(name, data=np.asarray(arr))
            par.attrs["frames_complete"] = 0
            f.flush()
        except BaseException as exc:
            _close_or_abandon(f, exc, path)
            raise
        return cls(f, path, n, 2 * lattice.nz, counter_names, write_species, lattice.cell_A, tuple(series), halides)

    @classmethod
    def reopen(cls, path, n_frames_keep: int) -> "TrajectoryWriter":
        """Open an existing trajectory for appending, dropping frames beyond ``n_frames_keep``.

        Validate the file with :func:`open_trajectory` first: this opens it for writing.
        """
        path = os.fspath(path)
        f = _open_h5(path, "r+", "trajectory")
        try:
            par = f["parameters"]
            version = int(par.attrs.get("format_version", 1))
            if version != FORMAT_VERSION:
                raise TrajectoryError(f"trajectory {path!r} has format version {version}; this ionwire appends "
                                      f"only to version {FORMAT_VERSION} files (start a new run with --overwrite)")
            have = int(par.attrs["frames_complete"])
            if n_frames_keep > have:
                raise TrajectoryError(f"trajectory {path!r} holds {have} complete frames, the checkpoint "
                                      f"expects at least {n_frames_keep}")
            for g in _frame_groups(f):
                for ds in ("step", "time", "value"):
                    d = g[ds]
                    if d.shape[0] > n_frames_keep:
                        d.resize(n_frames_keep, axis=0)
            links = par["site_position_frames"]
            for name in [k for k in links if int(k) >= n_frames_keep]:
                del links[name]
            par.attrs["frames_complete"] = int(n_frames_keep)
            f.flush()
            n_sites = int(par["site_position"].shape[0])
            n_planes = int(f["observables/x_V/value"].shape[1])
            names = tuple(s.decode() for s in f["observables/counters"].attrs["columns"])
            species = bool(par.attrs["species_written"])
            series = _series_names(f)
            lattice = AnionLattice(int(par.attrs["nx"]), int(par.attrs["ny"]), int(par.attrs["nz"]),
                                   periodic_z=False, lattice_constant_A=float(par.attrs["lattice_constant_A"]))
        except BaseException:
            f.close()
            raise
        return cls(f, path, n_sites, n_planes, names, species, lattice.cell_A, series, _file_halides(f))

    # frames ----------------------------------------------------------------------------------
    def write_frame(self, step: int, time_s: float, species: np.ndarray | None,
                    observables: dict[str, np.ndarray], counters: np.ndarray,
                    series: dict[str, np.ndarray] | None = None) -> int:
        """Append one frame and flush it to disk; returns the new number of frames.

        species: uint8[n_sites] occupancy codes 0, 1 (the halides), 2 vacancy (ignored when the file
        was created without species; stored as atomic numbers); observables: name -> float64[n_planes]
        for every name in ``self.observable_names``; counters: int64[n_counters] in the order of ``columns``;
        series: name -> value for every series the file was created with.
        """
        f = self._f
        i = self.n_frames
        box = f["particles/anions/box/edges"]
        groups = [(box, self.cell_A)]
        if self.write_species:
            sp = np.asarray(species)
            if sp.shape != (self.n_sites,):
                raise ValueError(f"species must have shape ({self.n_sites},), got {sp.shape}")
            groups.append((f["particles/anions/species"], species_to_atomic_numbers(sp, self.halides)))
        for name in self.observable_names:
            v = np.asarray(observables[name], dtype=np.float64)
            if v.shape != (self.n_planes,):
                raise ValueError(f"observable {name} must have shape ({self.n_planes},), got {v.shape}")
            groups.append((f["observables"][name], v))
        c = np.asarray(counters, dtype=np.int64)
        if c.shape != (len(self.counter_names),):
            raise ValueError(f"counters must have shape ({len(self.counter_names)},), got {c.shape}")
        groups.append((f["observables/counters"], c))
        for name in self.series:
            shape, dtype, _, _ = PROTOCOL_SERIES[name]
            v = np.asarray((series or {})[name], dtype=dtype)
            if v.shape != shape:
                raise ValueError(f"series {name} must have shape {shape}, got {v.shape}")
            groups.append((f["observables"][name], v))
        ensure_space(self.path, sum(np.asarray(v).nbytes + 16 for _, v in groups),
                     f"frame {i} of {os.path.basename(self.path)}")
        try:
            self._append(f, i, groups, step, time_s)
        except BaseException as exc:
            if is_write_failure(exc):
                self._f = None  # never closed again (see structures.hdf5.abandon)
            _close_or_abandon(f, exc, self.path, close=False)
            raise
        self.n_frames = i + 1
        return self.n_frames

    @staticmethod
    def _append(f, i, groups, step, time_s) -> None:
        # data first, step and time after, the frame count last (after a flush): a kill at any
        # point leaves every frame counted in frames_complete fully on disk
        for g, value in groups:
            d = g["value"]
            d.resize(i + 1, axis=0)
            d[i] = value
        links = f["parameters/site_position_frames"]
        if str(i) not in links:
            links[str(i)] = f["parameters/site_position"]  # frame i of the position virtual dataset
        for g, _ in groups:  # (position and species share box/edges' step and time)
            for ds, val in (("step", int(step)), ("time", float(time_s))):
                d = g[ds]
                d.resize(i + 1, axis=0)
                d[i] = val
        f.flush()
        f["parameters"].attrs["frames_complete"] = i + 1
        f.flush()


def _close_or_abandon(f, exc: BaseException, path: str, close: bool = True) -> None:
    """After ``exc`` in a write to ``f``: a failed disk write abandons the file (closing it would
    crash HDF5) and becomes OSError(ENOSPC) naming ``path``; anything else closes it if ``close``."""
    if is_write_failure(exc):
        abandon(f)
        import errno

        code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.ENOSPC
        raise OSError(code, f"{os.strerror(code)} (writing {os.path.basename(path)})",
                      path) from None
    if close:
        f.close()


def _time_series(parent, name, row_shape, dtype, *, chunk_row, compress, unit, frames_per_chunk=1):
    g = parent.create_group(name)
    kw = {"compression": "gzip", "compression_opts": 1} if compress else {}
    # chunk_row None: a chunk holds frames_per_chunk whole rows
    chunks = (frames_per_chunk,) + (tuple(row_shape) if chunk_row is None else (max(1, chunk_row),))
    v = g.create_dataset("value", shape=(0,) + tuple(row_shape), maxshape=(None,) + tuple(row_shape), dtype=dtype,
                         chunks=chunks, **kw)
    if unit:
        v.attrs["unit"] = unit
    g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
    t = g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,))
    t.attrs["unit"] = TIME_UNIT
    return g


def _link_step_time(group, source) -> None:
    """H5MD shares step and time between elements sampled together through hard links."""
    group["step"] = source["step"]
    group["time"] = source["time"]


def _position_vds(group, n_sites: int) -> None:
    """``value`` float32[f, n_sites, 3] (angstrom): a virtual dataset whose frame b is the dataset
    /parameters/site_position_frames/<b> (a hard link to the fixed sites), so it costs a link per
    frame, not 12 bytes per site and frame, and its length is the number of links."""
    from h5py import h5d, h5p, h5s, h5t

    vspace = h5s.create_simple((0, n_sites, 3), (h5s.UNLIMITED, n_sites, 3))
    vspace.select_hyperslab((0, 0, 0), (h5s.UNLIMITED, 1, 1), stride=(1, 1, 1), block=(1, n_sites, 3))
    source = h5s.create_simple((n_sites, 3))
    source.select_all()
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_virtual(vspace, b".", b"/parameters/site_position_frames/%b", source)
    h5d.create(group.id, b"value", h5t.NATIVE_FLOAT, vspace, dcpl=dcpl).close()
    group["value"].attrs["unit"] = LENGTH_UNIT


def _write_positions(ds, lattice: AnionLattice) -> None:
    """Write site positions slab by slab (a 1e8-site wire never holds them all in memory)."""
    per_k = 3 * lattice.nx * lattice.ny
    k_block = max(1, _SPECIES_CHUNK // per_k)
    slab = AnionLattice(lattice.nx, lattice.ny, min(k_block, lattice.nz), periodic_z=False,
                        lattice_constant_A=lattice.lattice_constant_A)
    base = slab.positions_A()
    for k0 in range(0, lattice.nz, k_block):
        nk = min(k_block, lattice.nz - k0)
        block = base[: nk * per_k].copy()
        block[:, 2] += k0 * lattice.lattice_constant_A
        ds[k0 * per_k:(k0 + nk) * per_k] = block.astype(np.float32)


def _frame_groups(f):
    """The time-dependent groups with their own (resizable) value, step and time."""
    out = []
    if "particles/anions/box/edges" in f:
        out.append(f["particles/anions/box/edges"])
    if "particles/anions/species" in f:
        out.append(f["particles/anions/species"])
    for name in list(observable_names(_file_halides(f))) + ["counters"] + list(_series_names(f)):
        out.append(f["observables"][name])
    return out


def _series_names(f) -> tuple[str, ...]:
    """The PROTOCOL_SERIES names a trajectory holds (/parameters@series; none in older files)."""
    raw = f["parameters"].attrs.get("series")
    if raw is None:
        return ()
    names = tuple(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
    unknown = [n for n in names if n not in PROTOCOL_SERIES]
    if unknown:
        raise TrajectoryError(f"unknown time series {unknown[0]!r} in /parameters@series")
    return names


# ---------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------
class Trajectory(_OpenFile):
    """Read access to a device trajectory (see :func:`open_trajectory`)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._f = _open_h5(self.path, "r", "trajectory")
        try:
            self._validate()
        except TrajectoryError:
            self._f.close()
            raise
        except RuntimeError as exc:  # HDF5 structures that point past the end of the file
            self._f.close()
            raise TrajectoryError(f"trajectory {self.path!r} is truncated (a write that did not complete, e.g. on "
                                  f"a full disk): {exc}") from None
        except (KeyError, OSError, ValueError, TypeError) as exc:
            self._f.close()
            raise TrajectoryError(f"trajectory {self.path!r} is damaged or not an ionwire device trajectory: "
                                  f"{exc}") from None

    def _validate(self) -> None:
        f = self._f
        for required in ("h5md", "parameters", "observables/counters"):
            if required not in f:
                raise TrajectoryError(f"{self.path!r} is not an ionwire device trajectory (no /{required})")
        par = f["parameters"]
        if par.attrs.get("format") != FORMAT:
            raise TrajectoryError(f"{self.path!r} is not an ionwire device trajectory "
                                  f"(/parameters@format = {par.attrs.get('format')!r})")
        self.format_version = int(par.attrs.get("format_version", 1))
        if self.format_version not in READABLE_FORMAT_VERSIONS:
            raise TrajectoryError(f"{self.path!r}: device trajectory format version {self.format_version} is not "
                                  f"supported (this ionwire reads {READABLE_FORMAT_VERSIONS})")
        self._positions = "parameters/site_position" if self.format_version >= 2 else "particles/anions/position"
        if self._positions not in f:
            raise TrajectoryError(f"{self.path!r} is not an ionwire device trajectory (no /{self._positions})")
        self.attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in par.attrs.items()}
        #: the halide pair (first, second) and the names of the per-plane observables
        self.halides = _file_halides(f)
        self.observable_names = observable_names(self.halides)
        self.config = json.loads(self.attributes["config"])
        self.lattice = AnionLattice(int(par.attrs["nx"]), int(par.attrs["ny"]), int(par.attrs["nz"]),
                                    periodic_z=False, lattice_constant_A=float(par.attrs["lattice_constant_A"]))
        if f[self._positions].shape != (self.lattice.n_sites, 3):
            raise TrajectoryError(f"{self.path!r}: /{self._positions} does not match the lattice")
        lengths = [int(par.attrs["frames_complete"])]
        for g in _frame_groups(f):
            lengths += [g["step"].shape[0], g["time"].shape[0], g["value"].shape[0]]
        if self.format_version >= 2:
            lengths.append(len(par["site_position_frames"]))
        self.n_frames = int(min(lengths))
        self._time_group = f["observables/counters"]
        self.times_s = np.asarray(self._time_group["time"][: self.n_frames], dtype=np.float64)
        self.steps = np.asarray(self._time_group["step"][: self.n_frames], dtype=np.int64)
        self.has_species = "particles/anions/species" in f
        self.series_names = _series_names(f)

    # frames ----------------------------------------------------------------------------------
    def species(self, i: int) -> np.ndarray:
        """uint8[n_sites]: occupancy (0 first, 1 second halide, 2 vacancy) of frame i (negative i from the end)."""
        if not self.has_species:
            raise TrajectoryError(f"{self.path!r} was written without per-site species")
        n = self.n_frames
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range: {self.path!r} has {n} frames")
        try:
            raw = np.asarray(self._f["particles/anions/species/value"][i % n], dtype=np.uint8)
        except OSError as exc:
            raise TrajectoryError(f"{self.path!r}: frame {i} is unreadable: {exc}") from None
        if self.format_version == 1:
            return raw
        try:
            return atomic_numbers_to_species(raw, self.halides)
        except ValueError as exc:
            raise TrajectoryError(f"{self.path!r}: frame {i}: {exc}") from None

    def observable(self, name: str) -> np.ndarray:
        """float64[n_frames, n_planes] time series of a per-plane observable (``observable_names``:
        x_<A>, x_<B> for the halides A, B of the file, x_V, charge, potential)."""
        if name not in self.observable_names:
            raise KeyError(f"unknown observable {name!r}; available: {', '.join(self.observable_names)}")
        return np.asarray(self._f["observables"][name]["value"][: self.n_frames], dtype=np.float64)

    def series(self, name: str) -> np.ndarray:
        """The time series ``name`` of a run with a bias protocol (:data:`PROTOCOL_SERIES`):
        value[n_frames, ...] in its unit."""
        if name not in self.series_names:
            raise KeyError(f"{self.path!r} has no time series {name!r}; it has: "
                           f"{', '.join(self.series_names) or 'none (a run without [bias])'}")
        return np.asarray(self._f["observables"][name]["value"][: self.n_frames])

    def counters(self) -> dict[str, np.ndarray]:
        """Counter name -> int64[n_frames] (events, hops, reactions, displacements)."""
        g = self._f["observables/counters"]
        names = [s.decode() for s in g.attrs["columns"]]
        v = np.asarray(g["value"][: self.n_frames], dtype=np.int64)
        return {n: v[:, j] for j, n in enumerate(names)}

    def static(self, name: str) -> np.ndarray:
        """A static per-run array stored under /parameters (e.g. plane_z_A, background)."""
        return np.asarray(self._f["parameters"][name])

    def positions_A(self) -> np.ndarray:
        """float64[n_sites, 3]: the anion site positions (angstrom, stored as float32)."""
        return np.asarray(self._f[self._positions], dtype=np.float64)

    def __len__(self):
        return self.n_frames

    def __repr__(self) -> str:
        lat = self.lattice
        span = f", t = {self.times_s[0]:g}-{self.times_s[-1]:g} s" if self.n_frames else ""
        return (f"Trajectory({self.path!r}, {self.n_frames} frames{span}, {lat.nx}x{lat.ny}x{lat.nz} cells, "
                f"{lat.n_sites} anion sites{'' if self.has_species else ', no species'})")


def open_trajectory(path) -> Trajectory:
    """Open a device trajectory for reading; raises :class:`TrajectoryError` for bad files."""
    return Trajectory(path)


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def write_checkpoint(path, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    """Atomically replace the checkpoint at ``path`` by ``arrays`` (exact dtypes) and ``attrs``."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    ensure_space(tmp, sum(np.asarray(v).nbytes for v in arrays.values()), f"the checkpoint {os.path.basename(path)}")
    f = h5py.File(tmp, "w")
    try:
        mark(f, CHECKPOINT_SCHEMA, CHECKPOINT_VERSION)
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["format_version"] = CHECKPOINT_VERSION
        for k, v in attrs.items():
            f.attrs[k] = v
        g = f.create_group("state")
        for k, v in arrays.items():
            v = np.asarray(v)
            if v.size > 4096:
                g.create_dataset(k, data=v, compression="gzip", compression_opts=1)
            else:
                g.create_dataset(k, data=v)
        f.attrs["file_complete"] = True
        f.close()
    except BaseException as exc:
        if is_write_failure(exc):
            with contextlib.suppress(OSError):
                os.remove(tmp)  # the previous checkpoint stays in place
        _close_or_abandon(f, exc, path)
        raise
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, attrs) of a checkpoint written by :func:`write_checkpoint`; TrajectoryError if bad."""
    path = os.fspath(path)
    f = _open_h5(path, "r", "checkpoint")
    try:
        if f.attrs.get("format") != CHECKPOINT_FORMAT or not f.attrs.get("file_complete", False) or "state" not in f:
            raise TrajectoryError(f"{path!r} is not a complete ionwire device checkpoint")
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        arrays = {k: np.asarray(d[()]) for k, d in f["state"].items()}
    except (KeyError, OSError) as exc:
        raise TrajectoryError(f"checkpoint {path!r} is damaged: {exc}") from None
    finally:
        f.close()
    return arrays, attrs
