"""HDF5 files of the coupling layer: Onsager tables and atomistic-vs-continuum reports.

All h5py calls of ``coupling/`` live here.  Two schemas, each marked on the root group by the
attributes ``schema`` and ``schema_version``:

``ionwire.onsager_table`` (written by ``ionwire parameterize``)::

    /                      attrs schema, schema_version, complete (bool), units
    /provenance            attrs created_utc, code_version, git_commit, python, numpy, numba,
                           h5py, scipy, command, config_toml
    /tables/<preset>/      attrs preset, x_v (vacancy site fraction of the runs), w_Br_per_s,
                           w_Cl_per_s, f0, material_json, columns ["BrBr","BrCl","ClCl"],
                           normalisation, composition ("x_Cl/(x_Br+x_Cl)")
        x_cl               float64[n]        halide composition of each run
        l_per_s            float64[n, 3]     replica mean of l_BrBr, l_BrCl, l_ClCl (1/s)
        l_err_per_s        float64[n, 3]     standard error of the mean over replicas (1/s)
        l_replicas_per_s   float64[n, R, 3]  every replica's value (1/s)
        seeds              int64[n, R]       the seed of every replica
        events_per_replica int64[n]
        wall_s             float64[n]

``ionwire.comparison_report`` (written by ``ionwire compare``)::

    /                      attrs schema, schema_version, summary_json, config_toml, provenance
    /<direction>/          (forward, reverse, ...) attrs field_V_per_um
        z_nm               float64[b]        bin centres
        times_s            float64[t]
        kmc_mean_<f>       float64[t, b]     replica mean of field f (x_br, x_v, phi_V)
        kmc_sem_<f>        float64[t, b]     its standard error
        kmc_replicas_<f>   float64[R, t, b]
        continuum_<f>      float64[t, b]     the continuum model averaged over the same bins
        chi2_per_dof_<f>   float64[t]
        front_kmc_nm       float64[R, t]     per-replica front positions (x_Br = 0.55)
        front_continuum_nm float64[t]

Files are written to ``<path>.part`` and renamed into place, so a killed writer never leaves a
truncated file under the final name.  Reading a missing, truncated or foreign file raises
:class:`CouplingFileError` naming the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from .cli import UserError

TABLE_SCHEMA = "ionwire.onsager_table"
REPORT_SCHEMA = "ionwire.comparison_report"
SCHEMA_VERSION = 1


class CouplingFileError(UserError, ValueError):
    """A coupling HDF5 file is missing, unreadable, truncated or of another schema."""


def _attr(value: Any) -> Any:
    """HDF5-attribute friendly version of ``value`` (dicts become JSON strings)."""
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return np.array(value, dtype=h5py.string_dtype())
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open_for_reading(path: str | os.PathLike, schema: str) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise CouplingFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CouplingFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    found = _decode(f.attrs.get("schema", ""))
    if found != schema:
        f.close()
        raise CouplingFileError(f"{path}: not an {schema} file (schema attribute {found!r})")
    version = int(f.attrs.get("schema_version", -1))
    if version != SCHEMA_VERSION:
        f.close()
        raise CouplingFileError(f"{path}: {schema} schema_version {version} is not supported "
                                f"(this ionwire reads {SCHEMA_VERSION})")
    return f


def _atomic_write(path: str | os.PathLike, fill) -> Path:
    """Create ``path`` through ``<path>.part`` + rename; ``fill(h5file)`` writes the content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        fill(f)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# Onsager tables
# --------------------------------------------------------------------------------------------
def write_onsager_tables(path, tables: Mapping[str, Any], provenance: Mapping[str, Any],
                         complete: bool = True) -> Path:
    """Write ``tables`` ({preset: OnsagerTable}) and the campaign ``provenance`` to ``path``."""

    def fill(f):
        f.attrs["schema"] = TABLE_SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["complete"] = bool(complete)
        f.attrs["units"] = "l in 1/s; x_cl, x_v site fractions"
        prov = f.create_group("provenance")
        for k, v in provenance.items():
            prov.attrs[k] = _attr(v)
        grp = f.create_group("tables")
        for preset, t in tables.items():
            g = grp.create_group(preset)
            g.attrs["preset"] = t.preset
            g.attrs["x_v"] = t.x_v
            g.attrs["w_Br_per_s"] = t.w_per_s[0]
            g.attrs["w_Cl_per_s"] = t.w_per_s[1]
            g.attrs["f0"] = t.f0
            g.attrs["material_json"] = json.dumps(t.material, sort_keys=True)
            g.attrs["columns"] = _attr(["BrBr", "BrCl", "ClCl"])
            g.attrs["normalisation"] = "L_ab kT = c_s (z s^2/6) x_V l_ab (MODEL.md section 6)"
            g.attrs["composition"] = "x_Cl / (x_Br + x_Cl) of the whole cell"
            g.create_dataset("x_cl", data=np.asarray(t.x_cl, dtype=np.float64))
            g.create_dataset("l_per_s", data=np.asarray(t.l_per_s, dtype=np.float64))
            g.create_dataset("l_err_per_s", data=np.asarray(t.l_err_per_s, dtype=np.float64))
            g.create_dataset("l_replicas_per_s", data=np.asarray(t.l_replicas_per_s, dtype=np.float64))
            g.create_dataset("seeds", data=np.asarray(t.seeds, dtype=np.int64))
            g.create_dataset("events_per_replica", data=np.asarray(t.events_per_replica, dtype=np.int64))
            g.create_dataset("wall_s", data=np.asarray(t.wall_s, dtype=np.float64))

    return _atomic_write(path, fill)


def read_onsager_tables(path, allow_incomplete: bool = False) -> tuple[dict[str, dict], dict]:
    """Read a table file: ({preset: dict of the stored arrays and attributes}, provenance dict).

    Raises :class:`CouplingFileError` for missing/foreign/truncated files and, unless
    ``allow_incomplete``, for a file whose campaign did not finish.
    """
    f = _open_for_reading(path, TABLE_SCHEMA)
    with f:
        if not bool(f.attrs.get("complete", False)) and not allow_incomplete:
            raise CouplingFileError(f"{path}: the parameterisation campaign did not finish "
                                    "(attribute complete = false)")
        try:
            prov = {k: _decode(v) for k, v in f["provenance"].attrs.items()}
            out = {}
            for preset, g in f["tables"].items():
                d = {k: _decode(v) for k, v in g.attrs.items()}
                for name in ("x_cl", "l_per_s", "l_err_per_s", "l_replicas_per_s", "seeds",
                             "events_per_replica", "wall_s"):
                    d[name] = g[name][()]
                d["material"] = json.loads(d.pop("material_json"))
                out[preset] = d
        except (KeyError, OSError) as exc:
            raise CouplingFileError(f"{path}: damaged Onsager table ({exc})") from None
    if not out:
        raise CouplingFileError(f"{path}: contains no tables")
    return out, prov


# --------------------------------------------------------------------------------------------
# comparison reports
# --------------------------------------------------------------------------------------------
def write_report(path, summary: Mapping[str, Any], directions: Mapping[str, Mapping[str, Any]],
                 config_toml: str = "", provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a comparison report: ``directions`` maps a name to {dataset name: array or scalar}."""

    def fill(f):
        f.attrs["schema"] = REPORT_SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["summary_json"] = json.dumps(summary, sort_keys=True, default=float)
        f.attrs["config_toml"] = config_toml
        f.attrs["provenance"] = _attr(dict(provenance or {}))
        for name, data in directions.items():
            g = f.create_group(name)
            for k, v in data.items():
                if np.ndim(v) == 0 and not isinstance(v, np.ndarray):
                    g.attrs[k] = _attr(v)
                else:
                    arr = np.asarray(v)
                    g.create_dataset(k, data=arr, compression="gzip" if arr.size > 4096 else None)

    return _atomic_write(path, fill)


def read_report(path) -> tuple[dict, dict[str, dict]]:
    """Read a report: (summary dict, {direction: {name: array or attribute}})."""
    f = _open_for_reading(path, REPORT_SCHEMA)
    with f:
        try:
            summary = json.loads(_decode(f.attrs["summary_json"]))
            groups = {}
            for name, g in f.items():
                d = {k: _decode(v) for k, v in g.attrs.items()}
                d.update({k: g[k][()] for k in g})
                groups[name] = d
        except (KeyError, OSError, json.JSONDecodeError) as exc:
            raise CouplingFileError(f"{path}: damaged comparison report ({exc})") from None
    return summary, groups
