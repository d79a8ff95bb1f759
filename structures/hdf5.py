"""The one HDF5 convention of every ionwire file: schema marks, safe attributes, atomic writes,
named dimensions.

Every file ionwire writes carries, on its root group, the attributes ``schema`` (a name such as
``ionwire.onsager_table``) and ``schema_version``; readers refuse a missing, truncated or foreign
file with one :class:`~ionwire.structures.errors.FileFormatError` naming it.  Files are written to
``<path>.part`` and renamed into place, so a killed writer never leaves a truncated file under the
final name.

Arrays are netCDF-4 / CF-style variables: their axes are HDF5 dimension scales
(:func:`dimension`), and each carries ``units`` (a string pint and UDUNITS parse: ``um``, ``s``,
``1/s``, ``V/um``, ``1`` for dimensionless) and ``long_name`` (:func:`variable`), so
``xarray.open_dataset(path, engine="h5netcdf", group=...)`` names every axis.  Trajectories
follow H5MD instead (``unit`` attributes in the H5MD units grammar, see ``ionwire.kmc.h5md``).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from .errors import FileFormatError

# --------------------------------------------------------------------------------------------
# a full disk: HDF5 (2.0) crashes the process (SIGSEGV) when it closes a file after a write
# failed with ENOSPC, so writers check the free space before each write and, should a write
# still fail (another process filled the disk meanwhile), never close that file again
# --------------------------------------------------------------------------------------------
SPACE_MARGIN_BYTES = 1 << 18  # HDF5 metadata written on flush and close, on top of the data
ABANDONED: list = []  # h5py files whose write failed; kept open (never closed) until the process exits


def _size_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TiB"  # pragma: no cover


def ensure_space(path: str | os.PathLike, nbytes: float, what: str) -> None:
    """OSError(ENOSPC) naming ``what`` and ``path`` unless the file system holding ``path`` has
    ``nbytes`` plus :data:`SPACE_MARGIN_BYTES` free (checked before HDF5 writes anything)."""
    import errno

    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        st = os.statvfs(folder)
    except OSError:  # the write itself reports a missing folder
        return
    free = st.f_bavail * st.f_frsize
    need = int(nbytes) + SPACE_MARGIN_BYTES
    if free < need:
        raise OSError(errno.ENOSPC, f"No space left on device: {what} needs about {_size_text(need)}, "
                                    f"{_size_text(free)} free", os.fspath(path))


def abandon(f: h5py.File) -> None:
    """Keep ``f`` open for the rest of the process: a write to it failed, and closing it would
    crash HDF5 (the command line exits without tearing HDF5 down when ABANDONED is not empty)."""
    ABANDONED.append(f)


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (from h5py) reports a failed write to the disk (ENOSPC, EIO, EDQUOT, EFBIG)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc)
    return "file write failed" in text or "errno = 28" in text or "No space left" in text

def to_attr(value: Any) -> Any:
    """HDF5-attribute friendly version of ``value`` (dicts become JSON strings)."""
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return np.array(value, dtype=h5py.string_dtype())
    return value


def decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def open_hdf5(path: str | os.PathLike, error: type[Exception] = FileFormatError) -> h5py.File:
    """``path`` opened read-only; a missing or unreadable file raises one ``error`` naming it."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: not a readable HDF5 file ({exc})") from None


def open_for_reading(path: str | os.PathLike, schema: str, version: int | tuple[int, ...]) -> h5py.File:
    """``path`` opened read-only after checking its schema and schema_version (one of ``version``)."""
    versions = (version,) if isinstance(version, int) else tuple(version)
    path = Path(path)
    f = open_hdf5(path)
    found = decode(f.attrs.get("schema", ""))
    if found != schema:
        f.close()
        raise FileFormatError(f"{path}: not an {schema} file (schema attribute {found!r})")
    found_version = int(f.attrs.get("schema_version", -1))
    if found_version not in versions:
        f.close()
        raise FileFormatError(f"{path}: {schema} schema_version {found_version} is not supported "
                              f"(this ionwire reads {', '.join(map(str, versions))})")
    return f


def atomic_write(path: str | os.PathLike, fill) -> Path:
    """Create ``path`` through ``<path>.part`` + rename; ``fill(h5file)`` writes the content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    f = h5py.File(tmp, "w")
    try:
        fill(f)
    except BaseException as exc:
        if is_write_failure(exc):
            abandon(f)
            with contextlib.suppress(OSError):
                os.remove(tmp)  # the name goes; HDF5 keeps the open file until the process exits
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.ENOSPC
            raise OSError(code, f"{os.strerror(code)} (writing {path.name}; nothing was written under that "
                                "name)", os.fspath(path)) from None
        f.close()
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    f.close()
    os.replace(tmp, path)
    return path


def mark(f: h5py.File, schema: str, version: int, provenance: Mapping[str, Any] | None = None) -> None:
    """Stamp the root of ``f`` with its schema, version and (optionally) provenance attributes."""
    f.attrs["schema"] = schema
    f.attrs["schema_version"] = int(version)
    if provenance is not None:
        f.attrs["provenance"] = to_attr(dict(provenance))


def dimension(group: h5py.Group, name: str, values, units: str | None = None, long_name: str | None = None,
              maxshape=None) -> h5py.Dataset:
    """A coordinate variable: dataset ``name`` holding the coordinate values, made the dimension
    scale ``name`` (netCDF-4 reads it as the dimension and its coordinate)."""
    values = np.asarray(values)
    if values.dtype.kind == "U":
        ds = group.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
    else:
        ds = group.create_dataset(name, data=values, maxshape=maxshape)
    ds.make_scale(name)
    _describe(ds, units, long_name)
    return ds


def variable(group: h5py.Group, name: str, data, dims: tuple[h5py.Dataset, ...] = (), units: str | None = None,
             long_name: str | None = None, **create_kw) -> h5py.Dataset:
    """A data variable ``name`` whose axes are the dimension scales ``dims`` (in order)."""
    data = np.asarray(data)
    if data.ndim != len(dims) or any(data.shape[i] != d.shape[0] for i, d in enumerate(dims)):
        raise ValueError(f"{name}: shape {data.shape} does not match its dimensions "
                         f"{[(d.name.rsplit('/', 1)[-1], d.shape[0]) for d in dims]}")
    ds = group.create_dataset(name, data=data, **create_kw)
    for i, d in enumerate(dims):
        ds.dims[i].attach_scale(d)
    _describe(ds, units, long_name)
    return ds


def _describe(ds: h5py.Dataset, units: str | None, long_name: str | None) -> None:
    if units is not None:
        ds.attrs["units"] = units
    if long_name is not None:
        ds.attrs["long_name"] = long_name
