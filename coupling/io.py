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

from ionwire.structures.errors import FileFormatError
from ionwire.structures.hdf5 import atomic_write as _atomic_write, decode as _decode, open_for_reading, to_attr as _attr

REPORT_SCHEMA = "ionwire.comparison_report"
SCHEMA_VERSION = 1


CouplingFileError = FileFormatError  # a coupling HDF5 file is missing, unreadable or foreign


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
    f = open_for_reading(path, REPORT_SCHEMA, SCHEMA_VERSION)
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
