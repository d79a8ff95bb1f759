"""HDF5 files of the coupling layer: Onsager tables and atomistic-vs-continuum reports.

All h5py calls of ``coupling/`` live here.  Each schema is marked on the root group by the
attributes ``schema`` and ``schema_version`` (``ionwire.structures.hdf5``).

``ionwire.onsager_table`` (written by ``ionwire parameterize``): the layout is documented, written
and read in ``ionwire.structures.onsager_table`` (``write_onsager_tables``), below both models.

``ionwire.comparison_report`` (written by ``ionwire compare``; version 2, netCDF-4/CF style: one
group per direction, ``xarray.open_dataset(path, engine="h5netcdf", group="forward")``)::

    /                      attrs schema, schema_version, summary_json, config_toml, provenance
    /<direction>/          (forward, reverse, ...) attrs field_V_per_um, br_side
        z                  float64[z]        dimension: bin centres (nm)
        z_edge             float64[z_edge]   dimension: bin edges (nm)
        time               float64[time]     dimension: comparison times (s)
        replica            int64[replica]    dimension: kMC replica index
        sites_per_bin      float64[z]
        kmc_mean_<f>       float64[time, z]  replica mean of field f (x_br, x_v: "1"; phi_V: V)
        kmc_sem_<f>        float64[time, z]  its standard error
        kmc_replicas_<f>   float64[replica, time, z]
        continuum_<f>      float64[time, z]  the continuum model averaged over the same bins
        chi2_per_dof_<f>   float64[time]
        front_kmc_nm       float64[replica, time]  per-replica front positions (x_Br = 0.55)
        front_continuum_nm float64[time]
        kmc_events, kmc_wall_s  [replica]

:func:`read_report` returns the arrays under the names :func:`write_report` was given
(``z_nm``, ``z_edges_nm``, ``times_s`` for the coordinates); it also reads version 1 files.

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

from ionwire.structures.errors import FileFormatError
from ionwire.structures.hdf5 import atomic_write as _atomic_write, decode as _decode, open_for_reading, to_attr as _attr

REPORT_SCHEMA = "ionwire.comparison_report"
SCHEMA_VERSION = 2


CouplingFileError = FileFormatError  # a coupling HDF5 file is missing, unreadable or foreign

# coordinates: name given to write_report -> (dimension name, units, long_name)
_COORDINATES = {"z_nm": ("z", "nm", "bin centre position along the wire"),
                "z_edges_nm": ("z_edge", "nm", "bin edge position along the wire"),
                "times_s": ("time", "s", "time since the bias was applied")}
_FIELD_UNITS = {"x_br": ("1", "Br site fraction"), "x_v": ("1", "vacancy site fraction"),
                "phi_V": ("V", "electrostatic potential")}


def _field_units(field: str) -> tuple[str, str] | None:
    """(units, long_name) of a compared field: x_br, x_v, phi_V and the first halide's fraction of
    another pair (x_i: "I site fraction")."""
    if field in _FIELD_UNITS:
        return _FIELD_UNITS[field]
    from ionwire.structures.parameters import HALOGENS

    for h in HALOGENS:
        if field == f"x_{h.lower()}":
            return "1", f"{h} site fraction"
    return None


def _describe(name: str) -> tuple[tuple[str, ...], str | None, str] | None:
    """(dimensions, units, long_name) of a report array, None for an array of unknown name."""
    for prefix, dims, what in (("kmc_replicas_", ("replica", "time", "z"), "kMC replicas"),
                               ("kmc_mean_", ("time", "z"), "kMC replica mean"),
                               ("kmc_sem_", ("time", "z"), "standard error of the kMC replica mean"),
                               ("continuum_", ("time", "z"), "continuum model averaged over the bins")):
        if name.startswith(prefix) and _field_units(name[len(prefix):]) is not None:
            units, long_name = _field_units(name[len(prefix):])
            return dims, units, f"{long_name}, {what}"
    if name.startswith("chi2_per_dof_") and _field_units(name[len("chi2_per_dof_"):]) is not None:
        return ("time",), "1", f"reduced chi^2 of {name[len('chi2_per_dof_'):]} per time"
    table = {"sites_per_bin": (("z",), "1", "anion sites per bin (all replicas of one bin alike)"),
             "front_kmc_nm": (("replica", "time"), "nm", "x_Br = 0.55 front position of each kMC replica"),
             "front_continuum_nm": (("time",), "nm", "x_Br = 0.55 front position of the continuum model"),
             "kmc_events": (("replica",), "1", "kMC events of each replica"),
             "kmc_wall_s": (("replica",), "s", "wall time of each kMC replica")}
    return table.get(name)


# --------------------------------------------------------------------------------------------
# comparison reports
# --------------------------------------------------------------------------------------------
def write_report(path, summary: Mapping[str, Any], directions: Mapping[str, Mapping[str, Any]],
                 config_toml: str = "", provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a comparison report: ``directions`` maps a name to {dataset name: array or scalar}
    (names as ``coupling.report.analyse_direction`` gives them; see the module docstring)."""
    from ionwire.structures.hdf5 import dimension, mark, variable

    def fill(f):
        mark(f, REPORT_SCHEMA, SCHEMA_VERSION, provenance=dict(provenance or {}))
        f.attrs["Conventions"] = "CF-1.10"
        f.attrs["summary_json"] = json.dumps(summary, sort_keys=True, default=float)
        f.attrs["config_toml"] = config_toml
        for name, data in directions.items():
            g = f.create_group(name)
            arrays = {k: np.asarray(v) for k, v in data.items()
                      if not (np.ndim(v) == 0 and not isinstance(v, np.ndarray))}
            for k, v in data.items():
                if k not in arrays:
                    g.attrs[k] = _attr(v)
            dims = {}
            for key, (dim, units, long_name) in _COORDINATES.items():
                if key in arrays:
                    dims[dim] = dimension(g, dim, arrays.pop(key).astype(np.float64), units, long_name)
            n_rep = next((arrays[k].shape[0] for k in arrays if (_describe(k) or ((),))[0][:1] == ("replica",)), None)
            if n_rep is not None:
                dims["replica"] = dimension(g, "replica", np.arange(n_rep, dtype=np.int64), None,
                                            "kMC replica index")
            for k, arr in arrays.items():
                kw = {"compression": "gzip"} if arr.size > 4096 else {}
                desc = _describe(k)
                if desc is not None and all(d in dims for d in desc[0]) and \
                        arr.shape == tuple(dims[d].shape[0] for d in desc[0]):
                    variable(g, k, arr, tuple(dims[d] for d in desc[0]), desc[1], desc[2], **kw)
                else:
                    g.create_dataset(k, data=arr, **kw)

    return _atomic_write(path, fill)


def read_report(path) -> tuple[dict, dict[str, dict]]:
    """Read a report: (summary dict, {direction: {name: array or attribute}})."""
    f = open_for_reading(path, REPORT_SCHEMA, (1, SCHEMA_VERSION))
    names = {dim: key for key, (dim, _, _) in _COORDINATES.items()}
    with f:
        try:
            version = int(f.attrs["schema_version"])
            summary = json.loads(_decode(f.attrs["summary_json"]))
            groups = {}
            for name, g in f.items():
                d = {k: _decode(v) for k, v in g.attrs.items() if k not in ("units", "long_name")}
                for k in g:
                    if version >= 2 and k == "replica":
                        continue
                    d[names.get(k, k) if version >= 2 else k] = g[k][()]
                groups[name] = d
        except (KeyError, OSError, json.JSONDecodeError) as exc:
            raise CouplingFileError(f"{path}: damaged comparison report ({exc})") from None
    return summary, groups
