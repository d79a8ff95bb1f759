"""Onsager coefficients l_ab(x_Cl) measured by bulk kMC, as a table the continuum model reads.

What is stored (docs/model.md section 6): for each halide composition x_Cl = n_Cl / (n_Br + n_Cl)
of a bulk kMC run at vacancy site fraction x_V, the replica mean and standard error of
l_BrBr, l_BrCl, l_ClCl (1/s, normalisation L_ab kT = c_s (z s^2/6) x_V l_ab), every replica's
value and seed, and the campaign's provenance (:func:`write_onsager_tables` has the HDF5 layout).

Interpolation (:meth:`OnsagerTable.interpolator`).  The 2x2 Onsager matrix must stay symmetric
and positive (semi-)definite at every composition the continuum model asks for, and it has exact
end-member limits (no Cl: l_ClCl = l_BrCl = 0).  The table is therefore interpolated in the
normalised coordinates

    a = l_BrBr / (1 - x),   b = l_BrCl / (x (1 - x)),   d = l_ClCl / x        (x = x_Cl)

which are smooth and finite on [0, 1] (in the Moleko-Allnatt-Allnatt theory they are rational in
x), with a shape-preserving monotone cubic (PCHIP) through the measured points and constant
extrapolation outside them, so the end-member limits are exact.  Symmetry holds by construction
(one l_BrCl), and positive definiteness is enforced by clipping: a, d >= 0 and
b^2 x (1 - x) <= (1 - 1e-9) a d, i.e. l_BrCl^2 < l_BrBr l_ClCl, strictly positive definite for
0 < x < 1 whenever a, d > 0 there (semi-definite at the end members, where it is singular by
physics).  Measured points that violate the bound by noise are clipped the same way (reported by
:meth:`OnsagerTable.clipped_points`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import json
from typing import Any, Callable, Mapping

import numpy as np
from scipy.interpolate import PchipInterpolator

from .errors import FileFormatError
from .hdf5 import atomic_write as _atomic_write, decode as _decode, open_for_reading, to_attr as _attr
from .onsager import onsager_coefficients
from .parameters import ParameterError

TABLE_SCHEMA = "ionwire.onsager_table"
SCHEMA_VERSION = 2

#: the coefficient names of the default pair Br, Cl (a table of another pair: :func:`columns`)
COLUMNS = ("BrBr", "BrCl", "ClCl")
DEFAULT_HALIDES = ("Br", "Cl")


def columns(halides=DEFAULT_HALIDES) -> tuple[str, str, str]:
    """The names of the three coefficients of the pair (first a, second b): aa, ab, bb."""
    a, b = halides
    return (a + a, a + b, b + b)
# relative margin that makes the clipped matrices strictly positive definite
_PD_MARGIN = 1e-9
_END_TOL = 1e-6


@dataclass(frozen=True)
class OnsagerTable:
    """l_ab(x_Cl) of one barrier preset, measured by bulk kMC.

    x_cl: float64[n] strictly increasing halide compositions in [0, 1];
    l_per_s, l_err_per_s: float64[n, 3] mean and standard error (columns BrBr, BrCl, ClCl; 1/s);
    l_replicas_per_s: float64[n, R, 3]; seeds: int64[n, R]; events_per_replica: int64[n];
    wall_s: float64[n]; x_v: vacancy site fraction of the runs; w_per_s: (w_Br, w_Cl) pure-
    environment jump frequencies; f0: tracer correlation factor used by the theory comparison;
    material: the structures.parameters.Material of the runs as a plain mapping; halides: the
    pair (first, second) that names the columns, the w and the composition (x is the second
    halide's fraction); by default the material's ``halides``, else Br, Cl (a table written before
    the pair was data).
    """

    preset: str
    x_cl: np.ndarray
    l_per_s: np.ndarray
    l_err_per_s: np.ndarray
    x_v: float
    w_per_s: tuple[float, float]
    f0: float
    material: dict = field(default_factory=dict)
    l_replicas_per_s: np.ndarray | None = None
    seeds: np.ndarray | None = None
    events_per_replica: np.ndarray | None = None
    wall_s: np.ndarray | None = None
    halides: tuple[str, str] | None = None

    def __post_init__(self):
        if self.halides is None:
            object.__setattr__(self, "halides", tuple(self.material.get("halides", DEFAULT_HALIDES)))
        object.__setattr__(self, "halides", (str(self.halides[0]), str(self.halides[1])))
        x = np.asarray(self.x_cl, dtype=np.float64)
        l = np.asarray(self.l_per_s, dtype=np.float64)
        e = np.asarray(self.l_err_per_s, dtype=np.float64)
        n = x.size
        if x.ndim != 1 or n < 2:
            raise ParameterError(f"Onsager table: need at least 2 compositions, got x_cl shape {x.shape}")
        if not (np.all(np.isfinite(x)) and np.all(x >= 0) and np.all(x <= 1) and np.all(np.diff(x) > 0)):
            raise ParameterError("Onsager table: x_cl must be strictly increasing within [0, 1]")
        if l.shape != (n, 3) or e.shape != (n, 3):
            raise ParameterError(f"Onsager table: l_per_s and l_err_per_s must have shape ({n}, 3), "
                                 f"got {l.shape} and {e.shape}")
        if not (np.all(np.isfinite(l)) and np.all(np.isfinite(e)) and np.all(e >= 0)):
            raise ParameterError("Onsager table: l_per_s / l_err_per_s must be finite, errors >= 0")
        if not (0.0 <= self.x_v < 1.0):
            raise ParameterError(f"Onsager table: x_v must be in [0, 1), got {self.x_v!r}")
        object.__setattr__(self, "x_cl", x)
        object.__setattr__(self, "l_per_s", l)
        object.__setattr__(self, "l_err_per_s", e)
        if self.l_replicas_per_s is None:
            object.__setattr__(self, "l_replicas_per_s", l[:, None, :].copy())
        if self.seeds is None:
            object.__setattr__(self, "seeds", np.zeros((n, 1), dtype=np.int64))
        if self.events_per_replica is None:
            object.__setattr__(self, "events_per_replica", np.zeros(n, dtype=np.int64))
        if self.wall_s is None:
            object.__setattr__(self, "wall_s", np.zeros(n))
        object.__setattr__(self, "w_per_s", tuple(float(w) for w in self.w_per_s))

    # ---------------------------------------------------------------------------------------
    @classmethod
    def from_replicas(cls, preset: str, x_cl, l_replicas_per_s, x_v: float, w_per_s, f0: float,
                      material: dict | None = None, seeds=None, events_per_replica=None,
                      wall_s=None, halides=None) -> "OnsagerTable":
        """Table from every replica's l_ab: float64[n, R, 3] (R >= 2); mean and standard error."""
        reps = np.asarray(l_replicas_per_s, dtype=np.float64)
        if reps.ndim != 3 or reps.shape[2] != 3 or reps.shape[1] < 2:
            raise ParameterError(f"Onsager table: replicas must have shape (n, R>=2, 3), got {reps.shape}")
        from .statistics import replica_mean_sem

        mean, sem = replica_mean_sem(reps, axis=1)
        return cls(preset=preset, x_cl=np.asarray(x_cl, dtype=float), l_per_s=mean, l_err_per_s=sem,
                   x_v=float(x_v), w_per_s=tuple(w_per_s), f0=float(f0), material=dict(material or {}),
                   l_replicas_per_s=reps, seeds=seeds, events_per_replica=events_per_replica,
                   wall_s=wall_s, halides=halides)

    @property
    def columns(self) -> tuple[str, str, str]:
        """The coefficient names of the table's pair (BrBr, BrCl, ClCl for Br, Cl)."""
        return columns(self.halides)

    @property
    def n_replicas(self) -> int:
        return int(self.l_replicas_per_s.shape[1])

    # ---------------------------------------------------------------------------------------
    def normalised(self) -> np.ndarray:
        """float64[n, 3]: (a, b, d) = (l_BrBr/(1-x), l_BrCl/(x(1-x)), l_ClCl/x) at the table points.

        At an end member the 0/0 entries are taken from the nearest interior point (their limit).
        """
        return _normalise(self.x_cl, self.l_per_s)

    def clipped_points(self) -> np.ndarray:
        """int indices of table points whose measured l_BrCl^2 > l_BrBr l_ClCl (clipped on use)."""
        l = self.l_per_s
        return np.nonzero(l[:, 1] ** 2 > l[:, 0] * l[:, 2] * (1 - _PD_MARGIN))[0]

    def interpolator(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A function x_Cl (any shape, clipped to [0, 1]) -> (l_BrBr, l_BrCl, l_ClCl) in 1/s.

        Symmetric and positive semi-definite for every x_Cl in [0, 1], positive definite inside
        (0, 1) (see the module docstring); passes through every table point that satisfies the
        bound.  The continuum model accepts this callable as its l_ab.
        """
        return make_interpolator(self.x_cl, self.l_per_s)

    def error_interpolator(self) -> Callable[[np.ndarray], np.ndarray]:
        """x_Cl -> float64[..., 3]: standard errors interpolated linearly (for plots/bands)."""
        x, e = self.x_cl, self.l_err_per_s

        def err(xq):
            xq = np.clip(np.asarray(xq, dtype=float), x[0], x[-1])
            return np.stack([np.interp(xq, x, e[:, k]) for k in range(3)], axis=-1)

        return err

    def theory(self, x_cl=None, f0: float | None = None) -> np.ndarray:
        """Moleko-Allnatt-Allnatt l_ab (float64[n, 3], 1/s) at the table's x_V and w.

        Valid for the random_alloy preset; for host it is the random-alloy reference that the
        measured table departs from.  Fractions: c_V = x_v, c_Cl = (1 - x_v) x_Cl.
        """
        x = self.x_cl if x_cl is None else np.asarray(x_cl, dtype=float)
        f0 = self.f0 if f0 is None else f0
        c_v = self.x_v
        c_cl = (1.0 - c_v) * x
        c_br = (1.0 - c_v) * (1.0 - x)
        l = onsager_coefficients(c_br, c_cl, c_v, self.w_per_s[0], self.w_per_s[1], f0)
        return np.stack([np.asarray(v, dtype=float) for v in l], axis=-1)

    def deviation_from_theory(self, f0: float | None = None) -> dict[str, Any]:
        """Measured minus theory, per point and column: z = (l - l_MAA)/sigma and relative error.

        Returns {"z": float64[n, 3], "relative": float64[n, 3], "max_abs_z": float,
        "chi2_per_dof": float (sum z^2 / (3 n))} -- theory uncertainty not included.
        """
        th = self.theory(f0=f0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(self.l_err_per_s > 0, (self.l_per_s - th) / self.l_err_per_s, 0.0)
            rel = np.where(th != 0, (self.l_per_s - th) / np.abs(th), 0.0)
        return {"z": z, "relative": rel, "max_abs_z": float(np.max(np.abs(z))),
                "chi2_per_dof": float(np.sum(z**2) / z.size)}

    def check_material(self, material) -> None:
        """Raise ParameterError unless ``material`` (structures.parameters.Material) has the
        barriers, attempt frequency, temperature and lattice constant the table was measured with."""
        if not self.material:
            return
        from ionwire.structures.parameters import to_mapping

        mine = dict(self.material)
        if "barriers" in mine and "barriers_eV" not in mine:  # a table written before the halide pair was data
            mine["barriers_eV"] = {k.removesuffix("_eV"): v for k, v in mine.pop("barriers").items()}
        theirs = to_mapping(material)
        for key in ("halides", "lattice_constant_A", "attempt_frequency_per_s", "temperature_K", "barriers_eV"):
            if key in mine and mine[key] != theirs.get(key):
                raise ParameterError(
                    f"Onsager table ({self.preset}) was measured with material.{key} = {mine[key]!r}, "
                    f"the run uses {theirs.get(key)!r}")

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_cl, l_BrBr, l_BrCl, l_ClCl) at the table points, the matrices clipped to PSD."""
        f = self.interpolator()
        lbb, lbc, lcc = f(self.x_cl)
        return self.x_cl.copy(), lbb, lbc, lcc

    def __repr__(self) -> str:
        x = self.x_cl
        return (f"OnsagerTable({self.preset!r}, {x.size} compositions x_{self.halides[1]} = {x[0]:g}-{x[-1]:g}, "
                f"{self.n_replicas} replicas, x_V = {self.x_v:g}, w = ({self.w_per_s[0]:g}, {self.w_per_s[1]:g}) 1/s)")

    def to_xarray(self):
        """``xarray.Dataset`` of the table with the names and units of its file group
        (dimensions composition, replica, coefficient); see :func:`table_to_xarray`."""
        return table_to_xarray(self)

    def summary(self) -> dict:
        dev = self.deviation_from_theory()
        return {"preset": self.preset, "x_cl": self.x_cl.tolist(), "x_v": self.x_v,
                "replicas": self.n_replicas, "l_per_s": self.l_per_s.tolist(),
                "l_err_per_s": self.l_err_per_s.tolist(),
                "theory_per_s": self.theory().tolist(), "max_abs_z_vs_theory": dev["max_abs_z"],
                "chi2_per_dof_vs_theory": dev["chi2_per_dof"],
                "max_relative_deviation_vs_theory": float(np.max(np.abs(dev["relative"]))),
                "clipped_points": self.clipped_points().tolist()}


# --------------------------------------------------------------------------------------------
# interpolation that keeps symmetry and positive definiteness
# --------------------------------------------------------------------------------------------
def _normalise(x: np.ndarray, l: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    l = np.asarray(l, dtype=float)
    out = np.empty_like(l)
    # compositions within _END_TOL of an end member count as that end member (their normalised
    # values are limits, taken from the neighbours)
    has_br = (1.0 - x) > _END_TOL
    has_cl = x > _END_TOL
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out[:, 0] = np.where(has_br, l[:, 0] / (1 - x), np.nan)
        out[:, 1] = np.where(has_br & has_cl, l[:, 1] / (x * (1 - x)), np.nan)
        out[:, 2] = np.where(has_cl, l[:, 2] / x, np.nan)
    # end members: the normalised quantity is a limit -> take the nearest defined neighbour
    for k in range(3):
        good = np.isfinite(out[:, k])
        if not good.any():
            raise ParameterError("Onsager table: need at least one composition strictly inside (0, 1)")
        idx = np.nonzero(good)[0]
        for i in np.nonzero(~good)[0]:
            out[i, k] = out[idx[np.argmin(np.abs(idx - i))], k]
    return out


def clip_positive_definite(x, a, b, d):
    """Clip normalised (a, b, d) at compositions x so that the 2x2 matrix is PSD (PD inside (0,1)).

    Returns (l_BrBr, l_BrCl, l_ClCl) = ((1-x) a, x(1-x) b, x d) with a, d >= 0 and
    l_BrCl^2 <= (1 - 1e-9) l_BrBr l_ClCl.
    """
    a = np.maximum(a, 0.0)
    d = np.maximum(d, 0.0)
    lbb = (1.0 - x) * a
    lcc = x * d
    lbc = x * (1.0 - x) * b
    bound = np.sqrt((1.0 - _PD_MARGIN) * lbb * lcc)
    lbc = np.clip(lbc, -bound, bound)
    return lbb, lbc, lcc


def make_interpolator(x_cl, l_per_s):
    """PSD-preserving interpolator through (x_cl float64[n], l_per_s float64[n, 3]); see module doc."""
    x = np.asarray(x_cl, dtype=float)
    norm = _normalise(x, l_per_s)
    if x.size >= 3:
        splines = [PchipInterpolator(x, norm[:, k], extrapolate=False) for k in range(3)]
    else:
        splines = [lambda q, k=k: np.interp(q, x, norm[:, k]) for k in range(3)]

    def onsager_of_composition(x_q):
        xq = np.clip(np.asarray(x_q, dtype=float), 0.0, 1.0)
        # constant extrapolation of the normalised quantities keeps the end-member limits exact
        xe = np.clip(xq, x[0], x[-1])
        a, b, d = (np.asarray(s(xe), dtype=float) for s in splines)
        return clip_positive_definite(xq, a, b, d)

    return onsager_of_composition


def tables_from_file(path, allow_incomplete: bool = False) -> tuple[dict[str, OnsagerTable], dict]:
    """Read an ``ionwire parameterize`` file: ({preset: OnsagerTable}, provenance)."""

    raw, prov = read_onsager_tables(path, allow_incomplete=allow_incomplete)
    tables = {}
    for preset, d in raw.items():
        a, b = d["halides"]
        tables[preset] = OnsagerTable(
            preset=d["preset"], x_cl=d["x_cl"], l_per_s=d["l_per_s"], l_err_per_s=d["l_err_per_s"],
            x_v=float(d["x_v"]), w_per_s=(float(d[f"w_{a}_per_s"]), float(d[f"w_{b}_per_s"])),
            f0=float(d["f0"]), material=d["material"], l_replicas_per_s=d["l_replicas_per_s"],
            seeds=d["seeds"], events_per_replica=d["events_per_replica"], wall_s=d["wall_s"], halides=(a, b))
    return tables, prov


def load_table(path, preset: str) -> OnsagerTable:
    """The table of ``preset`` in the file ``path`` (ParameterError if the file lacks it)."""
    tables, _ = tables_from_file(path)
    if preset not in tables:
        raise ParameterError(f"{path}: no Onsager table for preset {preset!r} "
                             f"(has {', '.join(sorted(tables))})")
    return tables[preset]


def plot_tables(tables: dict[str, OnsagerTable], path=None, ax=None):
    """kMC l_ab(x_Cl)/w_Br with error bars against the MAA theory, one panel per preset.

    ``ax``: a matplotlib Axes (one table) or a sequence of Axes (one per table) to draw into;
    None makes a new figure.  ``path``: if given, the figure is saved there as PNG (and closed
    when this function made it).  Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    n = len(tables)
    own = ax is None
    if own:
        fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    else:
        flat = list(np.atleast_1d(ax).ravel())
        if len(flat) != n:
            raise ValueError(f"plot_tables: {n} tables need {n} axes, got {len(flat)}")
        axes = np.array([flat], dtype=object)
        fig = flat[0].figure
    xs = np.linspace(0.0, 1.0, 201)
    colours = ("tab:blue", "tab:green", "tab:red")
    for panel, (preset, t) in zip(axes[0], tables.items()):
        scale = t.w_per_s[0]
        th = t.theory(xs)
        interp = np.stack(t.interpolator()(xs), axis=-1)
        for k, name in enumerate(t.columns):
            panel.errorbar(t.x_cl, t.l_per_s[:, k] / scale, yerr=2 * t.l_err_per_s[:, k] / scale, fmt="o",
                        ms=4, capsize=2, color=colours[k], label=f"kMC $l_{{{name}}}$ (±2σ)")
            panel.plot(xs, th[:, k] / scale, "-", color=colours[k], lw=1, alpha=0.7,
                    label="MAA theory" if k == 0 else None)
            panel.plot(xs, interp[:, k] / scale, ":", color=colours[k], lw=1,
                    label="table interpolation" if k == 0 else None)
        panel.set_xlabel(f"x_{t.halides[1]}")
        panel.set_ylabel(f"l_ab / w_{t.halides[0]}")
        panel.set_title(f"{preset}: x_V = {t.x_v:.3g}, {t.n_replicas} replicas")
        panel.legend(fontsize=7)
    if own:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        if own:
            plt.close(fig)
    return fig


# --------------------------------------------------------------------------------------------
# Onsager tables
# --------------------------------------------------------------------------------------------
def write_onsager_tables(path, tables: Mapping[str, Any], provenance: Mapping[str, Any],
                         complete: bool = True) -> Path:
    """Write ``tables`` ({preset: OnsagerTable}) and the campaign ``provenance`` to ``path``.

    Layout (schema ``ionwire.onsager_table`` version 2, netCDF-4/CF style; one group per preset,
    ``xarray.open_dataset(path, engine="h5netcdf", group="tables/<preset>")``)::

        /                      attrs schema, schema_version, complete (bool), Conventions
        /provenance            attrs created_utc, code_version, git_commit, ..., command, config_toml
        /tables/<preset>/      attrs preset, halides (JSON list, e.g. ["Br", "Cl"]), x_v (vacancy
                               site fraction of the runs), w_Br_per_s, w_Cl_per_s (named from the
                               pair), f0, material_json, columns, normalisation, composition
            composition        float64[composition]  dimension: x_Cl / (x_Br + x_Cl) of each run ("1")
            replica            int64[replica]        dimension: replica index
            coefficient        str[coefficient]      dimension: "BrBr", "BrCl", "ClCl" (from the pair)

    A file without the ``halides`` attribute (written before the pair was data) reads as Br, Cl.
            l_per_s            float64[composition, coefficient]          replica mean (1/s)
            l_err_per_s        float64[composition, coefficient]          standard error of the mean (1/s)
            l_replicas_per_s   float64[composition, replica, coefficient] every replica (1/s)
            seeds              int64[composition, replica]                the seed of every replica
            events_per_replica int64[composition]
            wall_s             float64[composition] (s)
    """
    from .hdf5 import dimension, mark, variable

    def fill(f):
        mark(f, TABLE_SCHEMA, SCHEMA_VERSION)
        f.attrs["complete"] = bool(complete)
        f.attrs["Conventions"] = "CF-1.10"
        prov = f.create_group("provenance")
        for k, v in provenance.items():
            prov.attrs[k] = _attr(v)
        grp = f.create_group("tables")
        for preset, t in tables.items():
            g = grp.create_group(preset)
            a, b = t.halides
            g.attrs["preset"] = t.preset
            g.attrs["halides"] = json.dumps(list(t.halides))
            g.attrs["x_v"] = t.x_v
            g.attrs[f"w_{a}_per_s"] = t.w_per_s[0]
            g.attrs[f"w_{b}_per_s"] = t.w_per_s[1]
            g.attrs["f0"] = t.f0
            g.attrs["material_json"] = json.dumps(t.material, sort_keys=True)
            g.attrs["columns"] = _attr(list(t.columns))
            g.attrs["normalisation"] = "L_ab kT = c_s (z s^2/6) x_V l_ab"
            g.attrs["composition"] = f"x_{b} / (x_{a} + x_{b}) of the whole cell"
            reps = np.asarray(t.l_replicas_per_s, dtype=np.float64)
            comp = dimension(g, "composition", np.asarray(t.x_cl, dtype=np.float64), "1", _composition_name(t))
            rep = dimension(g, "replica", np.arange(reps.shape[1], dtype=np.int64), None, "replica index")
            coef = dimension(g, "coefficient", np.array(t.columns), None, "Onsager coefficient l_ab, a b")
            variable(g, "l_per_s", np.asarray(t.l_per_s, dtype=np.float64), (comp, coef), "1/s",
                     "Onsager coefficient l_ab, replica mean")
            variable(g, "l_err_per_s", np.asarray(t.l_err_per_s, dtype=np.float64), (comp, coef), "1/s",
                     "standard error of the replica mean of l_ab")
            variable(g, "l_replicas_per_s", reps, (comp, rep, coef), "1/s", "l_ab of every replica")
            variable(g, "seeds", _seeds(t), (comp, rep), None, "seed of every replica (0: not recorded)")
            variable(g, "events_per_replica", np.asarray(t.events_per_replica, dtype=np.int64), (comp,), "1",
                     "kMC events per replica")
            variable(g, "wall_s", np.asarray(t.wall_s, dtype=np.float64), (comp,), "s",
                     "wall time of the composition's replicas")

    return _atomic_write(path, fill)


def _composition_name(t: "OnsagerTable") -> str:
    a, b = t.halides
    return f"{b} fraction of the halides, x_{b} / (x_{a} + x_{b})"


def _seeds(t: "OnsagerTable") -> np.ndarray:
    """int64[n, R] seeds; a table built without seeds records zeros for every replica."""
    seeds = np.asarray(t.seeds, dtype=np.int64)
    n, r = np.asarray(t.l_replicas_per_s).shape[:2]
    if seeds.shape != (n, r) and seeds.size and not np.any(seeds):
        seeds = np.zeros((n, r), dtype=np.int64)
    return seeds


def table_to_xarray(t: "OnsagerTable"):
    """The variables of one preset's file group as an ``xarray.Dataset``."""
    import xarray as xr

    reps = np.asarray(t.l_replicas_per_s, dtype=np.float64)
    coords = {"composition": ("composition", np.asarray(t.x_cl, dtype=np.float64),
                              {"units": "1", "long_name": _composition_name(t)}),
              "replica": ("replica", np.arange(reps.shape[1]), {"long_name": "replica index"}),
              "coefficient": ("coefficient", list(t.columns), {"long_name": "Onsager coefficient l_ab, a b"})}
    data = {"l_per_s": (("composition", "coefficient"), t.l_per_s,
                        {"units": "1/s", "long_name": "Onsager coefficient l_ab, replica mean"}),
            "l_err_per_s": (("composition", "coefficient"), t.l_err_per_s,
                            {"units": "1/s", "long_name": "standard error of the replica mean of l_ab"}),
            "l_replicas_per_s": (("composition", "replica", "coefficient"), reps,
                                 {"units": "1/s", "long_name": "l_ab of every replica"}),
            "seeds": (("composition", "replica"), _seeds(t), {"long_name": "seed of every replica (0: not recorded)"}),
            "events_per_replica": (("composition",), np.asarray(t.events_per_replica, dtype=np.int64),
                                   {"units": "1", "long_name": "kMC events per replica"}),
            "wall_s": (("composition",), np.asarray(t.wall_s, dtype=np.float64),
                       {"units": "s", "long_name": "wall time of the composition's replicas"})}
    a, b = t.halides
    attrs = {"preset": t.preset, "halides": json.dumps(list(t.halides)), "x_v": t.x_v,
             f"w_{a}_per_s": t.w_per_s[0], f"w_{b}_per_s": t.w_per_s[1], "f0": t.f0, "material_json": json.dumps(t.material, sort_keys=True)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def read_onsager_tables(path, allow_incomplete: bool = False) -> tuple[dict[str, dict], dict]:
    """Read a table file: ({preset: dict of the stored arrays and attributes}, provenance dict).

    Reads schema versions 1 (x_cl, unnamed axes) and 2 (see :func:`write_onsager_tables`).
    Raises :class:`FileFormatError` for missing/foreign/truncated files and, unless
    ``allow_incomplete``, for a file whose campaign did not finish.
    """
    f = open_for_reading(path, TABLE_SCHEMA, (1, SCHEMA_VERSION))
    with f:
        version = int(f.attrs["schema_version"])
        if not bool(f.attrs.get("complete", False)) and not allow_incomplete:
            raise FileFormatError(f"{path}: the parameterisation campaign did not finish "
                                    "(attribute complete = false)")
        try:
            prov = {k: _decode(v) for k, v in f["provenance"].attrs.items()}
            out = {}
            for preset, g in f["tables"].items():
                d = {k: _decode(v) for k, v in g.attrs.items()}
                # a file written before the pair was data has no halides: Br, Cl
                d["halides"] = tuple(json.loads(d["halides"])) if "halides" in d else DEFAULT_HALIDES
                d["x_cl"] = g["x_cl" if version == 1 else "composition"][()]
                for name in ("l_per_s", "l_err_per_s", "l_replicas_per_s", "seeds",
                             "events_per_replica", "wall_s"):
                    d[name] = g[name][()]
                d["material"] = json.loads(d.pop("material_json"))
                out[preset] = d
        except (KeyError, OSError) as exc:
            raise FileFormatError(f"{path}: damaged Onsager table ({exc})") from None
    if not out:
        raise FileFormatError(f"{path}: contains no tables")
    return out, prov
