"""HDF5 results of the continuum model (all h5py calls of continuum/ live here).

Layout (schema "ionwire-continuum", version 1)::

    /                 attrs: schema, version, creator, config (JSON of the run configuration),
                      calibrated (JSON of the calibration record, "{}" if none), units (JSON)
    /runs/<k>         one group per field, k = 0, 1, ... in the order written; attrs:
                      field_V_per_um, migration_length_um, cl_uptake, junction_um, summary (JSON)
        z_um          float64[nz]     node positions (um)
        volume_um     float64[nz]     control-volume lengths (um)
        times_s       float64[nt]     output times (s), t = 0 first
        x_br, x_cl, x_v   float64[nt, nz]  site fractions
        phi_V         float64[nt, nz] electrostatic potential (V)
        j_v, j_br     float64[nt, nz-1] face currents (site fractions * um / s)
        q_v, q_br     float64[nt]     time integral of the integrated electrode sources
        front_um, migration_length_um  float64[nt]

Each run group is written completely and the file flushed before the next one starts, so a
killed sweep keeps every finished field (a group without its "complete" attribute is ignored).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "ionwire-continuum"
VERSION = 1
UNITS = {"z_um": "um", "times_s": "s", "x_br": "site fraction", "x_cl": "site fraction",
         "x_v": "site fraction", "phi_V": "V", "j_v": "site fraction um/s", "j_br": "site fraction um/s",
         "q_v": "site fraction um", "q_br": "site fraction um", "front_um": "um",
         "migration_length_um": "um", "volume_um": "um"}
_ARRAYS = ("z_um", "volume_um", "times_s", "x_br", "x_cl", "x_v", "phi_V", "j_v", "j_br", "q_v", "q_br",
           "front_um", "migration_length_um")


class ResultFileError(ValueError):
    """A continuum result file is missing, unreadable, truncated or not an ionwire continuum file."""


@dataclass
class ContinuumResult:
    """One field's profiles (interface 5): z_um float64[nz], times_s float64[nt], x_br, x_cl, x_v,
    phi_V float64[nt, nz], plus j_v, j_br, q_v, q_br, front_um, migration_length_um, volume_um and
    metadata (field_V_per_um, migration_length_um, cl_uptake, junction_um, summary dict, config
    dict, calibrated dict, path)."""

    z_um: np.ndarray
    times_s: np.ndarray
    x_br: np.ndarray
    x_cl: np.ndarray
    x_v: np.ndarray
    phi_V: np.ndarray
    arrays: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @property
    def field_V_per_um(self) -> float:
        return float(self.metadata["field_V_per_um"])

    def __getattr__(self, name: str) -> Any:  # j_v, j_br, q_v, ... from arrays
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)


def create(path, config: dict, calibrated: dict | None = None) -> None:
    """Create (truncate) a result file with the root attributes."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = SCHEMA
        f.attrs["version"] = VERSION
        f.attrs["creator"] = "ionwire continuum"
        f.attrs["config"] = json.dumps(config)
        f.attrs["calibrated"] = json.dumps(calibrated or {})
        f.attrs["units"] = json.dumps(UNITS)
        f.create_group("runs")


def append_run(path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
    """Append one field's arrays (names in the module docstring) and scalar attrs; flushes.

    Returns the group name."""
    import h5py

    with h5py.File(path, "a") as f:
        runs = f.require_group("runs")
        name = str(len(runs))
        g = runs.create_group(name)
        for k in _ARRAYS:
            if k in arrays:
                g.create_dataset(k, data=np.asarray(arrays[k], dtype=np.float64),
                                 compression="gzip" if np.ndim(arrays[k]) == 2 else None)
        for k, v in attrs.items():
            g.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        g.attrs["complete"] = True
        f.flush()
    return name


def _open(path):
    import h5py

    p = Path(path)
    if not p.exists():
        raise ResultFileError(f"{p}: no such file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ResultFileError(f"{p}: not a readable HDF5 file ({exc})") from None
    schema = f.attrs.get("schema")
    if schema != SCHEMA:
        f.close()
        raise ResultFileError(f"{p}: not an ionwire continuum result (schema {schema!r})")
    return f


def _complete(f):
    runs = f.get("runs")
    if runs is None:
        return []
    return [(k, runs[k]) for k in sorted(runs, key=int) if runs[k].attrs.get("complete", False)]


def read_results(path) -> list[ContinuumResult]:
    """Every complete field in the file, in file order."""
    out = []
    with _open(path) as f:
        cfg = json.loads(f.attrs.get("config", "{}"))
        cal = json.loads(f.attrs.get("calibrated", "{}"))
        try:
            for _, g in _complete(f):
                arrays = {k: g[k][()] for k in _ARRAYS if k in g}
                meta = {k: (json.loads(v) if k == "summary" else
                            (v.item() if hasattr(v, "item") else v)) for k, v in g.attrs.items()}
                meta.update(config=cfg, calibrated=cal, path=str(path))
                out.append(ContinuumResult(arrays.pop("z_um"), arrays.pop("times_s"), arrays.pop("x_br"),
                                           arrays.pop("x_cl"), arrays.pop("x_v"), arrays.pop("phi_V"),
                                           arrays, meta))
        except (KeyError, OSError, ValueError) as exc:
            raise ResultFileError(f"{path}: truncated or malformed run group ({exc})") from None
    return out


def read_result(path, field_V_per_um: float | None = None) -> ContinuumResult:
    """One field of a result file: the one at field_V_per_um, or the first one in the file.

    Raises ResultFileError (a ValueError) naming the file if it is missing, unreadable, not an
    ionwire continuum file, holds no complete run or not the requested field.
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
