"""The one HDF5 convention of every ionwire file: schema marks, safe attributes, atomic writes.

Every file ionwire writes carries, on its root group, the attributes ``schema`` (a name such as
``ionwire.onsager_table``) and ``schema_version``; readers refuse a missing, truncated or foreign
file with one :class:`~ionwire.structures.errors.FileFormatError` naming it.  Files are written to
``<path>.part`` and renamed into place, so a killed writer never leaves a truncated file under the
final name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from .errors import FileFormatError

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


def open_for_reading(path: str | os.PathLike, schema: str, version: int) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    found = decode(f.attrs.get("schema", ""))
    if found != schema:
        f.close()
        raise FileFormatError(f"{path}: not an {schema} file (schema attribute {found!r})")
    found_version = int(f.attrs.get("schema_version", -1))
    if found_version != version:
        f.close()
        raise FileFormatError(f"{path}: {schema} schema_version {found_version} is not supported "
                              f"(this ionwire reads {version})")
    return f


def atomic_write(path: str | os.PathLike, fill) -> Path:
    """Create ``path`` through ``<path>.part`` + rename; ``fill(h5file)`` writes the content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        fill(f)
    os.replace(tmp, path)
    return path


def mark(f: h5py.File, schema: str, version: int, provenance: Mapping[str, Any] | None = None) -> None:
    """Stamp the root of ``f`` with its schema, version and (optionally) provenance attributes."""
    f.attrs["schema"] = schema
    f.attrs["schema_version"] = int(version)
    if provenance is not None:
        f.attrs["provenance"] = to_attr(dict(provenance))
