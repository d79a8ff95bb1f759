"""Results of the continuum model in memory (:class:`ContinuumResult`) and on disk (all h5py
calls of continuum/ live here).

One class holds one field's profiles, whether it was just simulated
(``continuum.model.solution_to_result``) or read back (:func:`read_result`); the file stores
exactly its arrays, and ``to_xarray()`` gives the same variables, names and units as the file.

File layout: netCDF-4 / CF-style HDF5 (schema ``ionwire.continuum_result``, schema_version 2),
one group per field so a sweep can be written field by field::

    /                 attrs: schema, schema_version, provenance (structures.hdf5.mark),
                      Conventions = "CF-1.10", title, creator, config (JSON of the run
                      configuration), calibrated (JSON of the calibration record, "{}" if none)
        run           int64[n_runs]    dimension scale: the complete runs, in file order
        field         float64[run]     applied field of each run (V/um)
    /runs/<k>         one group per field, k = 0, 1, ...; attrs field_V_per_um,
                      migration_length_um, cl_uptake, junction_um, label, summary (JSON), complete
        z             float64[z]       dimension scale: node positions (um)
        time          float64[time]    dimension scale: output times (s), t = 0 first
        z_face        float64[z_face]  dimension scale: control-volume faces, the node midpoints (um)
        field         scalar           applied field (V/um), a coordinate of every variable
        x_br, x_cl, x_v   float64[time, z]      site fractions ("1")
        phi_V         float64[time, z]          electrostatic potential (V)
        j_v, j_br     float64[time, z_face]     face currents, site fraction times velocity (um/s)
        q_v, q_br     float64[time]             time integral of the integrated electrode sources (um)
        front_um, migration_length_um  float64[time]  x_Br = 0.55 front and its displacement (um)
        volume_um     float64[z]                control-volume lengths (um)
        applied_field, applied_voltage, current_br_left, current_cl_left, current_br_right,
        current_cl_right, current_gap, charge_passed   float64[time]   (bias protocols only;
                      V/um, V, A/m2, C/m2; continuum.protocol)

Every variable carries ``units`` (UDUNITS/pint syntax) and ``long_name``; the coordinates are
HDF5 dimension scales, so xarray names them::

    xarray.open_dataset(path, engine="h5netcdf")                     # the index: field per run
    xarray.open_dataset(path, engine="h5netcdf", group="runs/0")     # one field: z, time, field
    xarray.open_datatree(path, engine="h5netcdf")                    # everything
    ionwire.continuum.io.open_dataset(path)                          # all runs along "run"

Each run group is written completely and the file flushed before the next one starts, so a
killed sweep keeps every finished field (a group without its "complete" attribute is ignored).
Files of the first layout (schema "ionwire-continuum", version 1: z_um, times_s, no dimension
scales) are still read.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ionwire.structures.errors import FileFormatError

SCHEMA = "ionwire.continuum_result"
VERSION = 2
_OLD_SCHEMA = "ionwire-continuum"  # schema attribute of version 1 files (attribute "version")

# name -> (dimensions, units, long_name): the one table of the file, the class and to_xarray()
COORDINATES = {
    "z": (("z",), "um", "position along the wire"),
    "time": (("time",), "s", "time since the bias was applied"),
    "z_face": (("z_face",), "um", "position of the control-volume faces (node midpoints)"),
}
VARIABLES = {
    "x_br": (("time", "z"), "1", "Br site fraction"),
    "x_cl": (("time", "z"), "1", "Cl site fraction"),
    "x_v": (("time", "z"), "1", "vacancy site fraction"),
    "phi_V": (("time", "z"), "V", "electrostatic potential"),
    "j_v": (("time", "z_face"), "um/s", "vacancy current at the faces (site fraction times velocity)"),
    "j_br": (("time", "z_face"), "um/s", "Br current at the faces (site fraction times velocity)"),
    "q_v": (("time",), "um", "time integral of the vacancy electrode sources (site fraction times length)"),
    "q_br": (("time",), "um", "time integral of the Br electrode sources (site fraction times length)"),
    "front_um": (("time",), "um", "position of the x_Br = 0.55 front"),
    "migration_length_um": (("time",), "um", "front displacement since t = 0 (halide migration length)"),
    "volume_um": (("z",), "um", "control-volume lengths"),
    # time series of a bias protocol (continuum.protocol; absent for a constant-field run)
    "applied_field": (("time",), "V/um", "applied field (at a switch: the field before it)"),
    "applied_voltage": (("time",), "V", "applied voltage phi(left) - phi(right) (at a switch: before it)"),
    "current_br_left": (("time",), "A/m2", "Br ionic charge current density at the left contact's gap edge (+z)"),
    "current_cl_left": (("time",), "A/m2", "Cl ionic charge current density at the left contact's gap edge (+z)"),
    "current_br_right": (("time",), "A/m2", "Br ionic charge current density at the right contact's gap edge (+z)"),
    "current_cl_right": (("time",), "A/m2", "Cl ionic charge current density at the right contact's gap edge (+z)"),
    "current_gap": (("time",), "A/m2", "total ionic charge current density at the gap centre (+z)"),
    "charge_passed": (("time",), "C/m2", "ionic charge passed through the gap centre since t = 0 (+z)"),
}
FIELD = ("field", (), "V/um", "applied field")
# the array attributes of ContinuumResult and their names in the file
_ATTR_OF_COORD = {"z": "z_um", "time": "times_s"}
TIME_SERIES = ("applied_field", "applied_voltage", "current_br_left", "current_cl_left", "current_br_right",
               "current_cl_right", "current_gap", "charge_passed")
_OPTIONAL = ("j_v", "j_br", "q_v", "q_br", "volume_um", "front_um", "migration_length_um") + TIME_SERIES
#: the halide pair of a file that does not say (written before the pair was data); the names
#: above are those of this pair
DEFAULT_HALIDES = ("Br", "Cl")


def _relabel_name(name: str, halides) -> str:
    import re

    return re.sub(r"(?<=_)(br|cl)(?=_|$)", lambda m: halides[0 if m[1] == "br" else 1].lower(), name)


def _relabel_text(text: str, halides) -> str:
    import re

    return re.sub(r"\b(Br|Cl)\b", lambda m: halides[0 if m[1] == "Br" else 1], text)


def variables(halides=DEFAULT_HALIDES) -> dict[str, tuple[str, tuple, str, str]]:
    """The variables of a result of the pair ``halides``: file (and xarray) name -> (attribute
    of ContinuumResult, dimensions, units, long_name).  Names carry the halides' symbols in lower
    case (x_br, x_cl for Br, Cl; x_br, x_i for Br, I); the attributes are positional (x_br: the
    first halide, x_cl: the second)."""
    return {_relabel_name(k, halides): (k, dims, u, _relabel_text(ln, halides)) for k, (dims, u, ln) in VARIABLES.items()}


def file_names(arrays: dict, halides=DEFAULT_HALIDES) -> dict:
    """``arrays`` keyed by ContinuumResult attribute names (z_um, times_s, x_br, ...) re-keyed by
    the file names of the pair ``halides``."""
    return {_relabel_name(k, halides) if k in VARIABLES else k: v for k, v in arrays.items()}


def _halides_of_config(config) -> tuple[str, str]:
    mat = config.get("material") if isinstance(config, dict) else None
    pair = mat.get("halides") if isinstance(mat, dict) else None
    return tuple(pair) if pair else DEFAULT_HALIDES


def _file_halides(f) -> tuple[str, str]:
    raw = f.attrs.get("halides")
    if raw is None:
        return DEFAULT_HALIDES
    pair = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return (str(pair[0]), str(pair[1]))


_V1_ARRAYS = ("z_um", "volume_um", "times_s", "x_br", "x_cl", "x_v", "phi_V", "j_v", "j_br", "q_v", "q_br",
              "front_um", "migration_length_um")


class ResultFileError(FileFormatError):
    """A continuum result file is missing, unreadable, truncated or not an ionwire continuum file."""


@dataclass(eq=False, repr=False)
class ContinuumResult:
    """One field's profiles: z_um float64[nz]; times_s float64[nt]; x_br, x_cl, x_v, phi_V
    float64[nt, nz]; face currents j_v, j_br float64[nt, nz-1] (site fractions * um / s); q_v, q_br
    float64[nt] integrated electrode sources (site fractions * um); volume_um float64[nz];
    front_um, migration_length_um float64[nt] (um, once computed); the time series of a bias
    protocol (TIME_SERIES: applied field and voltage, ionic currents, charge passed) float64[nt]
    or None; metadata dict (field_V_per_um,
    solver statistics, summary, config, calibrated, path, ...).  Arrays not computed are None.
    """

    z_um: np.ndarray
    times_s: np.ndarray
    x_br: np.ndarray
    x_cl: np.ndarray
    x_v: np.ndarray
    phi_V: np.ndarray
    j_v: np.ndarray | None = None
    j_br: np.ndarray | None = None
    q_v: np.ndarray | None = None
    q_br: np.ndarray | None = None
    volume_um: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    front_um: np.ndarray | None = None
    migration_length_um: np.ndarray | None = None
    applied_field: np.ndarray | None = None
    applied_voltage: np.ndarray | None = None
    current_br_left: np.ndarray | None = None
    current_cl_left: np.ndarray | None = None
    current_br_right: np.ndarray | None = None
    current_cl_right: np.ndarray | None = None
    current_gap: np.ndarray | None = None
    charge_passed: np.ndarray | None = None
    #: the halide pair (first, second): names the variables (x_br, x_cl for Br, Cl)
    halides: tuple = DEFAULT_HALIDES

    @property
    def field_V_per_um(self) -> float:
        return float(self.metadata["field_V_per_um"])

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the result by its file name (z_um and times_s included; the names of
        :func:`variables` for the result's halides)."""
        out = {"z_um": self.z_um, "times_s": self.times_s}
        for name, (attr, _, _, _) in variables(self.halides).items():
            value = getattr(self, attr)
            if value is not None:
                out[name] = value
        return out

    def __repr__(self) -> str:
        meta = self.metadata
        parts = []
        if "field_V_per_um" in meta:
            parts.append(f"field {float(meta['field_V_per_um']):g} V/um")
        if "label" in meta:
            parts.append(repr(meta["label"]))
        z, t = np.asarray(self.z_um), np.asarray(self.times_s)
        parts.append(f"{z.size} nodes on {z[0]:g}-{z[-1]:g} um" if z.size else "no nodes")
        parts.append(f"{t.size} times {t[0]:g}-{t[-1]:g} s" if t.size else "no times")
        if self.migration_length_um is not None and np.size(self.migration_length_um):
            parts.append(f"migration length {float(np.asarray(self.migration_length_um)[-1]):.4g} um")
        elif isinstance(meta.get("migration_length_um"), (int, float)):
            parts.append(f"migration length {float(meta['migration_length_um']):.4g} um")
        if "path" in meta:
            parts.append(f"from {meta['path']}")
        return f"ContinuumResult({', '.join(parts)})"

    def to_xarray(self):
        """An ``xarray.Dataset`` with the variables, names, units and long names of the file:
        coordinates z (um), time (s), z_face (um) and the scalar field (V/um)."""
        xr = _xarray()
        coords = {name: (dims, _coordinate_values(self, name), {"units": u, "long_name": ln})
                  for name, (dims, u, ln) in COORDINATES.items()
                  if name != "z_face" or self.j_v is not None}
        if "field_V_per_um" in self.metadata:
            coords["field"] = ((), self.field_V_per_um, {"units": FIELD[2], "long_name": FIELD[3]})
        data = {name: (dims, np.asarray(getattr(self, attr)), {"units": u, "long_name": ln})
                for name, (attr, dims, u, ln) in variables(self.halides).items() if getattr(self, attr) is not None}
        attrs = {k: (v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=_json_default))
                 for k, v in self.metadata.items()
                 if isinstance(v, (str, int, float, bool, dict, list)) and k not in ("field_V_per_um",)}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def plot(self, quantity: str | None = None, times_s=None, ax=None):
        """Profiles of ``quantity`` (a file name of :func:`variables` on the nodes; default the
        first halide's fraction, e.g. x_br) against z at the output times closest to ``times_s``
        (default: first, middle, last); draws into ``ax`` (a new figure if None) and returns the figure."""
        table = variables(self.halides)
        quantity = f"x_{self.halides[0].lower()}" if quantity is None else quantity
        if quantity not in table or table[quantity][1] != ("time", "z"):
            raise ValueError(f"quantity must be one of {[k for k, v in table.items() if v[1] == ('time', 'z')]}, "
                             f"got {quantity!r}")
        if ax is None:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 3.5))
        else:
            fig = ax.figure
        t = np.asarray(self.times_s)
        if times_s is None:
            idx = sorted({0, t.size // 2, t.size - 1})
        else:
            idx = [int(np.argmin(np.abs(t - float(ts)))) for ts in np.atleast_1d(times_s)]
        attr, _, units, long_name = table[quantity]
        values = getattr(self, attr)
        for i in idx:
            ax.plot(self.z_um, values[i], label=f"t = {t[i]:.3g} s")
        ax.set_xlabel("z (um)")
        ax.set_ylabel(f"{long_name} ({units})" if units != "1" else long_name)
        ax.legend(fontsize=7)
        return fig


def _coordinate_values(res: ContinuumResult, name: str) -> np.ndarray:
    if name == "z_face":
        z = np.asarray(res.z_um, dtype=np.float64)
        return 0.5 * (z[:-1] + z[1:])
    return np.asarray(getattr(res, _ATTR_OF_COORD[name]), dtype=np.float64)


def _json_default(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _xarray():
    try:
        import xarray as xr
    except ImportError as exc:  # pragma: no cover - xarray is optional
        raise ImportError("to_xarray() needs xarray (pip install xarray h5netcdf)") from exc
    return xr


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _guarded(f, path):
    """``with h5py.File(...)`` that, after a failed disk write (a full disk), abandons the file
    instead of closing it (HDF5 would crash) and raises OSError(ENOSPC) naming ``path``."""
    from ionwire.structures.hdf5 import abandon, is_write_failure

    try:
        yield f
        f.close()
    except BaseException as exc:
        if is_write_failure(exc):
            abandon(f)
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.ENOSPC
            raise OSError(code, f"{os.strerror(code)} (writing {Path(path).name})", str(path)) from None
        with contextlib.suppress(Exception):
            f.close()
        raise


def create(path, config: dict, calibrated: dict | None = None, halides=None) -> None:
    """Create (truncate) a result file with the root attributes and an empty run index;
    ``halides``: the pair that names the variables (default: config's material.halides, else Br, Cl),
    stored as the root attribute ``halides``."""
    halides = tuple(halides) if halides is not None else _halides_of_config(config)
    import h5py

    from ionwire.structures.hdf5 import dimension, ensure_space, mark
    from ionwire.structures.provenance import provenance

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_space(path, len(json.dumps(config)) + 4096, f"the result file {path.name}")
    with _guarded(h5py.File(path, "w"), path) as f:
        mark(f, SCHEMA, VERSION, provenance())
        f.attrs["Conventions"] = "CF-1.10"
        f.attrs["title"] = "ionwire continuum model: profiles of a biased halide heterojunction wire"
        f.attrs["creator"] = "ionwire continuum"
        f.attrs["config"] = json.dumps(config)
        f.attrs["halides"] = json.dumps(list(halides))
        f.attrs["calibrated"] = json.dumps(calibrated or {})
        run = dimension(f, "run", np.zeros(0, dtype=np.int64), None, "run group index (/runs/<run>)",
                        maxshape=(None,))
        fld = f.create_dataset("field", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(64,))
        fld.dims[0].attach_scale(run)
        fld.attrs["units"] = FIELD[2]
        fld.attrs["long_name"] = "applied field of each run"
        f.create_group("runs")


def append_run(path, arrays: dict[str, np.ndarray] | ContinuumResult, attrs: dict[str, Any]) -> str:
    """Append one field (a :class:`ContinuumResult` or its arrays by file name: z_um, times_s,
    x_br, ... as in the module docstring, named for the file's halides) with scalar attrs;
    flushes.  Returns the group name."""
    import h5py

    from ionwire.structures.hdf5 import dimension, ensure_space, variable

    with _guarded(h5py.File(path, "r"), path) as f:
        halides = _file_halides(f)
    if isinstance(arrays, ContinuumResult):
        if tuple(arrays.halides) != halides:
            raise ValueError(f"a result of the halides {arrays.halides} cannot go into {Path(path).name}, "
                             f"a file of {halides}")
        arrays = arrays.arrays
    table = variables(halides)
    z = np.asarray(arrays["z_um"], dtype=np.float64)
    t = np.asarray(arrays["times_s"], dtype=np.float64)
    sizes = {"z": z.size, "time": t.size, "z_face": z.size - 1}
    for k, (_, dims, _, _) in table.items():
        if k in arrays and np.shape(arrays[k]) != tuple(sizes[d] for d in dims):
            raise ValueError(f"{k} must have shape {tuple(sizes[d] for d in dims)} ({', '.join(dims)}), "
                             f"got {np.shape(arrays[k])}")
    ensure_space(path, sum(np.asarray(v).nbytes for v in arrays.values()) + 2 * z.nbytes,
                 f"the run at E = {attrs.get('field_V_per_um')} V/um in {Path(path).name}")
    with _guarded(h5py.File(path, "a"), path) as f:
        runs = f.require_group("runs")
        name = str(len(runs))
        g = runs.create_group(name)
        scales = {}
        for cname, values in (("z", z), ("time", t), ("z_face", 0.5 * (z[:-1] + z[1:]))):
            if cname != "z_face" or any(k in arrays for k, v in table.items() if v[1] == ("time", "z_face")):
                scales[cname] = dimension(g, cname, values, *COORDINATES[cname][1:])
        variable(g, "field", float(attrs.get("field_V_per_um", np.nan)), (), *FIELD[2:])
        for k, (_, dims, units, long_name) in table.items():
            if k in arrays:
                value = np.asarray(arrays[k], dtype=np.float64)
                ds = variable(g, k, value, tuple(scales[d] for d in dims), units, long_name,
                              **({"compression": "gzip"} if value.ndim == 2 else {}))
                ds.attrs["coordinates"] = "field"
        for k, v in attrs.items():
            g.attrs[k] = json.dumps(v, default=_json_default) if isinstance(v, (dict, list)) else v
        g.attrs["complete"] = True
        f.flush()
        if "run" in f:  # the root index lists complete runs
            n = f["run"].shape[0]
            for ds, v in ((f["run"], int(name)), (f["field"], float(attrs.get("field_V_per_um", np.nan)))):
                ds.resize(n + 1, axis=0)
                ds[n] = v
        f.flush()
    return name


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _open(path):
    from ionwire.structures.hdf5 import open_hdf5

    p = Path(path)
    f = open_hdf5(p, ResultFileError)
    schema = f.attrs.get("schema")
    schema = schema.decode() if isinstance(schema, bytes) else schema
    if schema == SCHEMA:
        version = int(f.attrs.get("schema_version", -1))
    elif schema == _OLD_SCHEMA:
        version = int(f.attrs.get("version", 1))
    else:
        f.close()
        raise ResultFileError(f"{p}: not an ionwire continuum result (schema {schema!r})")
    if version not in (1, VERSION):
        f.close()
        raise ResultFileError(f"{p}: continuum result version {version} is not supported (this ionwire reads 1, "
                              f"{VERSION})")
    return f, version


def _complete(f):
    runs = f.get("runs")
    if runs is None:
        return []
    return [(k, runs[k]) for k in sorted(runs, key=int) if runs[k].attrs.get("complete", False)]


def _read_group(g, version: int, halides=DEFAULT_HALIDES) -> dict[str, np.ndarray]:
    """The arrays of a run group by ContinuumResult attribute name."""
    if version == 1:
        return {k: g[k][()] for k in _V1_ARRAYS if k in g}
    out = {"z_um": g["z"][()], "times_s": g["time"][()]}
    out.update({attr: g[k][()] for k, (attr, _, _, _) in variables(halides).items() if k in g})
    return out


def read_results(path) -> list[ContinuumResult]:
    """Every complete field in the file, in file order."""
    out = []
    f, version = _open(path)
    with f:
        cfg = json.loads(f.attrs.get("config", "{}"))
        cal = json.loads(f.attrs.get("calibrated", "{}"))
        halides = _file_halides(f)
        try:
            for _, g in _complete(f):
                arrays = _read_group(g, version, halides)
                meta = {k: (json.loads(v) if k == "summary" else
                            (v.item() if hasattr(v, "item") else v)) for k, v in g.attrs.items()}
                meta.update(config=cfg, calibrated=cal, path=str(path))
                out.append(ContinuumResult(
                    arrays.pop("z_um"), arrays.pop("times_s"), arrays.pop("x_br"), arrays.pop("x_cl"),
                    arrays.pop("x_v"), arrays.pop("phi_V"), metadata=meta, halides=halides,
                    **{k: arrays.get(k) for k in _OPTIONAL}))
        except (KeyError, OSError, ValueError) as exc:
            raise ResultFileError(f"{path}: truncated or malformed run group ({exc})") from None
    return out


def read_result(path, field_V_per_um: float | None = None) -> ContinuumResult:
    """One field of a result file: the one at field_V_per_um, or the first one in the file.

    Raises ResultFileError (a FileFormatError, so a ValueError) naming the file if it is missing,
    unreadable, not an ionwire continuum file, holds no complete run or not the requested field.
    """
    results = read_results(path)
    if not results:
        raise ResultFileError(f"{path}: holds no complete run")
    if field_V_per_um is None:
        return results[0]
    for r in results:
        if abs(r.field_V_per_um - field_V_per_um) < 1e-9:
            return r
    raise ResultFileError(f"{path}: no run at field {field_V_per_um} V/um "
                          f"(has {', '.join(f'{r.field_V_per_um:g}' for r in results)})")


def open_dataset(path):
    """Every complete run of a result file as one ``xarray.Dataset`` along a ``run`` dimension
    (coordinate ``field`` per run; needs all runs on the same z and time grid)."""
    xr = _xarray()
    results = read_results(path)
    if not results:
        raise ResultFileError(f"{path}: holds no complete run")
    z0, t0 = results[0].z_um, results[0].times_s
    for r in results[1:]:
        if r.z_um.shape != z0.shape or r.times_s.shape != t0.shape or not (
                np.array_equal(r.z_um, z0) and np.array_equal(r.times_s, t0)):
            raise ResultFileError(f"{path}: runs on different z or time grids; open them one by one "
                                  f"(xarray.open_dataset(path, engine='h5netcdf', group='runs/<k>'))")
    sets = []
    for r in results:
        one = r.to_xarray()
        one.attrs = {}
        sets.append(one)
    ds = xr.concat(sets, dim="run", coords="different", compat="equals")
    ds = ds.assign_coords(run=np.arange(len(results)))
    labels = [str(r.metadata.get("label", "")) for r in results]
    if any(labels):
        ds = ds.assign_coords(label=("run", labels))
    return ds
