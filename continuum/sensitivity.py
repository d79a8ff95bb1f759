"""What controls the rectification: a global sensitivity study of the continuum model.

With the paper's electrode rates (alpha_Br, alpha_Cl of its Fig. 3 caption, the defaults of
structures.parameters.Electrodes) held fixed, the study varies what the paper leaves open and
reports, per sample, L(+E_max), the signed L(-E_max) (> 0 towards the Br segment), the
rectification ratio L(+E_max)/|L(-E_max)|, the slope and R^2 of L against the forward fields,
the 10-90 % front width after the run at +E_max and at the smallest forward field, and the
mean vacancy level in the gap at +E_max (x_V / x_V^eq of pure Br, volume-weighted over the gap).

Design: the Morris method (elementary effects, SALib; trajectories x (k + 1) samples) separately
for each electrode law (``laws``: the r_d forms of structures.parameters.Electrodes), plus a
one-at-a-time scan of each factor over its range from the default parameter set (``scan_levels``
values per factor) that says how far each factor alone moves the ratio.  Factors (``[factors]``,
each [low, high]; only the ones listed are varied, the rest keep the config's value):

    overhang_um               wire beyond each contact (wire length = gap + 2 contact + 2 overhang)
    junction_fraction         initial junction position as a fraction of the gap (0.5: centre)
    gap_um, contact_width_um  the geometry between and of the contacts
    log10_xv_eq_Br            log10 of the equilibrium vacancy site fraction of pure CsPbBr3
    formation_energy_gap_eV   E_f(Cl) - E_f(Br) (the paper's 0.12 eV)
    log10_nu0                 log10 of the attempt frequency (1/s)
    barrier_Br_eV, barrier_Cl_eV   the hop barriers of Br and Cl
    host_weight               composition dependence of the rates: barrier of species X in a
                              Y-rich octahedron = (1 - w) E_X + w E_Y (0: "random_alloy", 1: "host")
    log10_negative_factor     the other (vacancy-accumulating) electrode: log10 of its rate factor

Library API::

    cfg = load_config(mapping)                 # TOML mapping -> SensitivityConfig
    design = make_design(cfg)                  # samples: law, factor values (reproducible: seed)
    out = run_study(cfg, outdir, mapper=map)   # all runs, table (CSV + HDF5), indices, bar chart

A run is one continuum simulation at one field for duration_s; a sample takes len(fields) runs.
Failed runs (the solver's SolverError: e.g. the dilute-vacancy model breaking down) are kept in
the table with their message; the Morris indices use only complete trajectories.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .model import Numerics, SolverError, simulate_wire
from .observables import front_positions_um, front_width_um, linear_fit
from ionwire.structures.parameters import (Barriers, DeviceParameters, HoldsDeviceParameters, ParameterError,
                                           R_D_FORMS, from_mapping, inline_field, require, to_mapping)

#: factor name -> (default range, unit / meaning)
FACTORS: dict[str, tuple[tuple[float, float], str]] = {
    "overhang_um": ((0.0, 2.0), "um beyond each contact"),
    "junction_fraction": ((0.2, 0.8), "initial junction position / gap"),
    "gap_um": ((3.0, 7.0), "um"),
    "contact_width_um": ((0.5, 2.5), "um"),
    "log10_xv_eq_Br": ((-8.5, -6.5), "log10 site fraction"),
    "formation_energy_gap_eV": ((0.0, 0.24), "eV"),
    "log10_nu0": ((12.0, 14.0), "log10 (1/s)"),
    "barrier_Br_eV": ((0.20, 0.30), "eV"),
    "barrier_Cl_eV": ((0.24, 0.34), "eV"),
    "host_weight": ((0.0, 1.0), "0 random_alloy .. 1 host"),
    "log10_negative_factor": ((-2.0, 1.0), "log10 rate factor"),
}

#: the per-sample outputs (name -> unit)
OUTPUTS = {
    "L_forward_um": "um", "L_reverse_um": "um", "rectification_ratio": "1", "reverse_sign": "1",
    "forward_slope_um_per_V_per_um": "um/(V/um)", "forward_r_squared": "1",
    "front_width_forward_um": "um", "front_width_low_field_um": "um", "xv_gap_over_eq_forward": "1",
}
#: the outputs the Morris indices are computed for
ANALYSED = ("L_forward_um", "L_reverse_um", "rectification_ratio", "front_width_forward_um")


@dataclass(frozen=True)
class SensitivityConfig(HoldsDeviceParameters):
    """``run = "sensitivity"`` (runs/sensitivity.toml; see the module docstring).

    fields_V_per_um: the fields of every sample; it must hold +E and -E for the ratio (the
    largest forward and the largest reverse field) and >= 3 forward fields for the slope.
    """

    params: DeviceParameters = inline_field(DeviceParameters)
    duration_s: float = 14400.0
    workers: int = 2
    numerics: Numerics = field(default_factory=Numerics)
    fields_V_per_um: tuple[float, ...] = (-4.0, 1.5, 2.5, 4.0)
    laws: tuple[str, ...] = ("irreversible_at_positive", "detailed_balance", "equal_rates")
    method: str = "morris"
    trajectories: int = 4
    levels: int = 4
    scan_levels: int = 5
    seed: int = 2020
    factors: dict | None = None
    ratio_near: tuple[float, float] = (10.0, 40.0)

    def __post_init__(self):
        require(math.isfinite(self.duration_s) and self.duration_s > 0, "duration_s must be a positive number")
        require(isinstance(self.workers, int) and 1 <= self.workers <= 64, "workers must be an integer in [1, 64]")
        require(self.method == "morris", f"method must be 'morris', got {self.method!r}")
        require(self.trajectories >= 2, f"trajectories must be >= 2, got {self.trajectories!r}")
        require(self.levels >= 2 and self.levels % 2 == 0, f"levels must be an even integer >= 2, got {self.levels!r}")
        require(self.scan_levels == 0 or self.scan_levels >= 2, "scan_levels must be 0 (no scan) or >= 2")
        require(len(self.laws) >= 1, "laws must list at least one electrode law")
        for law in self.laws:
            require(law in R_D_FORMS, f"laws: {law!r} is not one of {', '.join(map(repr, R_D_FORMS))}")
        e = np.asarray(self.fields_V_per_um, dtype=float)
        require(e.size == len(set(e.tolist())), "fields_V_per_um has duplicates")
        require(np.all(np.isfinite(e)) and np.all(np.abs(e) <= 50), "fields_V_per_um must be in [-50, 50]")
        require(e.min() < 0 < e.max(), "fields_V_per_um must hold a reverse (< 0) and a forward (> 0) field")
        require(np.isclose(-e.min(), e.max()), "fields_V_per_um: the largest reverse field must be minus the "
                f"largest forward one (for the ratio), got {e.min():g} and {e.max():g}")
        require((e > 0).sum() >= 3, "fields_V_per_um must hold at least 3 forward fields (for the slope)")
        lo, hi = self.ratio_near
        require(0 < lo < hi, "ratio_near must be [low, high] with 0 < low < high")
        ranges = self.factor_ranges()
        require(len(ranges) >= 1, "factors: at least one factor must be varied")
        from ionwire.structures import materials

        # the factors (barrier_Br_eV, log10_xv_eq_Br, ...) and their ranges are those of the paper's wire
        require(self.params.material.set == materials.DEFAULT_SET.name,
                f"material.set: the sensitivity factors and their ranges are those of {materials.DEFAULT_SET.name}; "
                f"this config's set is {self.params.material.set!r}")

    def factor_ranges(self) -> dict[str, tuple[float, float]]:
        """{name: (low, high)} of the varied factors, in FACTORS order; ParameterError naming a bad one."""
        given = FACTORS if self.factors is None else self.factors
        out = {}
        for name in given:
            if name not in FACTORS:
                raise ParameterError(f"factors: unknown factor {name!r} (known: {', '.join(FACTORS)})")
        for name in FACTORS:
            if name not in given:
                continue
            rng = FACTORS[name][0] if self.factors is None else self.factors[name]
            if (not isinstance(rng, (list, tuple)) or len(rng) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)):
                raise ParameterError(f"factors.{name}: expected [low, high], got {rng!r}")
            lo, hi = float(rng[0]), float(rng[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ParameterError(f"factors.{name}: expected low < high, got {rng!r}")
            out[name] = (lo, hi)
        return out


def load_config(mapping: Mapping[str, Any]) -> SensitivityConfig:
    """Validate a TOML mapping (with or without its top-level ``run = "sensitivity"``)."""
    data = dict(mapping)
    run = data.pop("run", "sensitivity")
    if run != "sensitivity":
        raise ParameterError(f"run: this config is for {run!r}, not 'sensitivity'")
    factors = data.pop("factors", None)
    if factors is not None and not isinstance(factors, Mapping):
        raise ParameterError(f"factors: expected a table of [low, high] ranges, got {factors!r}")
    cfg = from_mapping(SensitivityConfig, data)
    return dataclasses.replace(cfg, factors=None if factors is None else dict(factors))


# --------------------------------------------------------------------------------------------
# the parameter set of one sample
# --------------------------------------------------------------------------------------------
def apply_factors(params: DeviceParameters, values: Mapping[str, float], law: str) -> DeviceParameters:
    """``params`` with the factor values and the electrode law r_d_form = ``law`` applied."""
    geo, mat, vac, el = params.geometry, params.material, params.vacancies, params.electrodes
    gap = float(values.get("gap_um", geo.gap_um))
    contact = float(values.get("contact_width_um", geo.contact_width_um))
    overhang = float(values.get("overhang_um", geo.overhang_um))
    length = gap + 2.0 * contact + 2.0 * max(overhang, 0.0)
    if "junction_fraction" in values:
        junction = 0.5 * length - 0.5 * gap + float(values["junction_fraction"]) * gap
    elif geo.junction_position_um is None:
        junction = None
    else:  # keep its offset from the gap centre
        junction = 0.5 * length + (geo.junction_position_um - 0.5 * geo.wire_length_um)
    geo = dataclasses.replace(geo, wire_length_um=length, gap_um=gap, contact_width_um=contact,
                              junction_position_um=junction)
    b = mat.barriers
    e_br = float(values.get("barrier_Br_eV", b.first_in_first_eV))
    e_cl = float(values.get("barrier_Cl_eV", b.second_in_second_eV))
    if {"barrier_Br_eV", "barrier_Cl_eV", "host_weight"} & set(values):
        w = float(values.get("host_weight", 0.0 if mat.preset == "random_alloy" else 1.0))
        b = Barriers(first_in_first_eV=e_br, first_in_second_eV=(1 - w) * e_br + w * e_cl,
                     second_in_first_eV=(1 - w) * e_cl + w * e_br, second_in_second_eV=e_cl)
    mat = dataclasses.replace(
        mat, barriers=b,
        attempt_frequency_per_s=10.0 ** float(values["log10_nu0"]) if "log10_nu0" in values else mat.attempt_frequency_per_s,
        formation_energy_eV=(mat.formation_energy_eV[0],
                             mat.formation_energy_eV[0] + float(values["formation_energy_gap_eV"])
                             if "formation_energy_gap_eV" in values else mat.formation_energy_eV[1]))
    if "log10_xv_eq_Br" in values:
        vac = dataclasses.replace(vac, reference_fraction=10.0 ** float(values["log10_xv_eq_Br"]))
    el = dataclasses.replace(el, r_d_form=law, **({"negative_electrode_factor": 10.0 ** float(values["log10_negative_factor"])}
                                                   if "log10_negative_factor" in values else {}))
    return DeviceParameters(material=mat, vacancies=vac, geometry=geo, electrodes=el)


def default_values(cfg: SensitivityConfig) -> dict[str, float]:
    """The factor values of the config's own parameter set (the centre of the one-at-a-time scan)."""
    p = cfg.params
    g, m = p.geometry, p.material
    gap0, gap1 = g.gap_um_interval
    b = m.barriers
    host = (b.first_in_second_eV - b.first_in_first_eV) / (b.second_in_second_eV - b.first_in_first_eV) if b.second_in_second_eV != b.first_in_first_eV else 0.0
    return {"overhang_um": g.overhang_um, "junction_fraction": (g.junction_um - gap0) / (gap1 - gap0),
            "gap_um": g.gap_um, "contact_width_um": g.contact_width_um,
            "log10_xv_eq_Br": math.log10(p.vacancies.reference_fraction),
            "formation_energy_gap_eV": m.formation_energy_eV[1] - m.formation_energy_eV[0],
            "log10_nu0": math.log10(m.attempt_frequency_per_s), "barrier_Br_eV": b.first_in_first_eV,
            "barrier_Cl_eV": b.second_in_second_eV, "host_weight": host,
            "log10_negative_factor": math.log10(max(p.electrodes.negative_electrode_factor, 1e-300))}


# --------------------------------------------------------------------------------------------
# the design
# --------------------------------------------------------------------------------------------
def salib_problem(cfg: SensitivityConfig) -> dict:
    ranges = cfg.factor_ranges()
    return {"num_vars": len(ranges), "names": list(ranges), "bounds": [list(v) for v in ranges.values()]}


def make_design(cfg: SensitivityConfig) -> list[dict]:
    """The samples, each {"part": "morris" | "scan", "law", "trajectory" (morris) or "factor"
    (scan), "values": {factor: value}}; Morris samples by SALib (seeded by cfg.seed, one seed per
    law), the scan over np.linspace(low, high, scan_levels) per factor from default_values."""
    from SALib.sample import morris as morris_sample

    problem = salib_problem(cfg)
    names = problem["names"]
    k = len(names)
    samples = []
    for il, law in enumerate(cfg.laws):
        x = morris_sample.sample(problem, cfg.trajectories, num_levels=cfg.levels, seed=cfg.seed + il)
        for i, row in enumerate(x):
            samples.append({"part": "morris", "law": law, "trajectory": i // (k + 1),
                            "values": {n: float(v) for n, v in zip(names, row)}})
    if cfg.scan_levels:
        base = default_values(cfg)
        for law in cfg.laws:
            for name, (lo, hi) in cfg.factor_ranges().items():
                for v in np.linspace(lo, hi, cfg.scan_levels):
                    vals = {n: base[n] for n in names}
                    vals[name] = float(v)
                    samples.append({"part": "scan", "law": law, "factor": name, "values": vals})
            samples.append({"part": "scan", "law": law, "factor": "default", "values": {n: base[n] for n in names}})
    return samples


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------
def _gap_mean(z, x, g0, g1):
    m = (z > g0) & (z < g1)
    return float(np.mean(x[m])) if m.any() else float("nan")


def run_one(args) -> dict:
    """One run (params, field, duration_s, numerics) -> small dict (picklable; for a mapper)."""
    params, e, duration_s, numerics = args
    t0 = time.process_time()
    try:
        res = simulate_wire(params, float(e), duration_s, numerics)
    except SolverError as exc:
        return {"ok": False, "error": str(exc), "cpu_s": time.process_time() - t0}
    zj = params.geometry.junction_um
    front = front_positions_um(res.z_um, res.x_br, zj)
    g0, g1 = params.geometry.gap_um_interval
    return {"ok": bool(np.isfinite(front[-1])), "error": "" if np.isfinite(front[-1]) else "no front",
            "L_um": float(front[0] - front[-1]),
            "front_width_um": front_width_um(res.z_um, res.x_br[-1], front[-1]),
            "xv_gap_over_eq": _gap_mean(res.z_um, res.x_v[-1], g0, g1) / params.vacancies.reference_fraction,
            "steps": int(res.metadata["solver_steps"]), "cpu_s": time.process_time() - t0}


def sample_outputs(fields, runs: list[dict]) -> dict:
    """The per-sample outputs (OUTPUTS) from its runs in ``fields`` order (nan where a run failed)."""
    e = np.asarray(fields, dtype=float)
    nan = float("nan")
    out = {k: nan for k in OUTPUTS}
    ok = all(r["ok"] for r in runs)
    out["ok"] = ok
    out["error"] = next((r["error"] for r in runs if not r["ok"]), "")
    if not ok:
        return out
    lengths = np.array([r["L_um"] for r in runs])
    i_f, i_r = int(np.argmax(e)), int(np.argmin(e))
    fwd = e > 0
    i_low = int(np.where(fwd)[0][np.argmin(e[fwd])])
    out["L_forward_um"] = float(lengths[i_f])
    out["L_reverse_um"] = float(lengths[i_r])
    out["rectification_ratio"] = float(lengths[i_f] / abs(lengths[i_r])) if lengths[i_r] != 0 else float("inf")
    out["reverse_sign"] = float(np.sign(lengths[i_r]))
    fit = linear_fit(e[fwd], lengths[fwd])
    out["forward_slope_um_per_V_per_um"] = float(fit["slope"])
    out["forward_r_squared"] = float(fit["r_squared"])
    out["front_width_forward_um"] = float(runs[i_f]["front_width_um"])
    out["front_width_low_field_um"] = float(runs[i_low]["front_width_um"])
    out["xv_gap_over_eq_forward"] = float(runs[i_f]["xv_gap_over_eq"])
    return out


def morris_indices(cfg: SensitivityConfig, samples: list[dict], law: str) -> dict:
    """SALib Morris indices of the ANALYSED outputs for one law, from the complete trajectories:
    {output: {"names", "mu", "mu_star", "mu_star_conf", "sigma"}} plus "trajectories_used"."""
    from SALib.analyze import morris as morris_analyze

    problem = salib_problem(cfg)
    k = problem["num_vars"]
    rows = [s for s in samples if s["part"] == "morris" and s["law"] == law]
    good = []
    for t in range(cfg.trajectories):
        traj = [s for s in rows if s["trajectory"] == t]
        if len(traj) == k + 1 and all(s["outputs"]["ok"] and all(np.isfinite(s["outputs"][o]) for o in ANALYSED)
                                      for s in traj):
            good.extend(traj)
    out: dict[str, Any] = {"trajectories_used": len(good) // (k + 1), "trajectories": cfg.trajectories}
    if len(good) < 2 * (k + 1):
        return out
    x = np.array([[s["values"][n] for n in problem["names"]] for s in good])
    for o in ANALYSED:
        y = np.array([s["outputs"][o] for s in good])
        si = morris_analyze.analyze(problem, x, y, num_levels=cfg.levels, num_resamples=1000, conf_level=0.95,
                                    seed=cfg.seed)
        out[o] = {"names": list(problem["names"]), "mu": [float(v) for v in si["mu"]],
                  "mu_star": [float(v) for v in si["mu_star"]],
                  "mu_star_conf": [float(v) for v in si["mu_star_conf"]], "sigma": [float(v) for v in si["sigma"]]}
    return out


def scan_ranges(cfg: SensitivityConfig, samples: list[dict], law: str) -> dict:
    """Per factor, over its one-at-a-time scan: the range of the ratio, of L(-E) (signed) and of
    the front width, and whether a ratio within cfg.ratio_near was reached (with which sign)."""
    lo, hi = cfg.ratio_near
    out = {}
    for name in cfg.factor_ranges():
        rows = [s for s in samples if s["part"] == "scan" and s["law"] == law and s.get("factor") == name]
        ok = [s for s in rows if s["outputs"]["ok"]]
        entry = {"values": [s["values"][name] for s in rows], "ok": [bool(s["outputs"]["ok"]) for s in rows],
                 "rectification_ratio": [s["outputs"]["rectification_ratio"] for s in rows],
                 "L_reverse_um": [s["outputs"]["L_reverse_um"] for s in rows],
                 "L_forward_um": [s["outputs"]["L_forward_um"] for s in rows],
                 "front_width_forward_um": [s["outputs"]["front_width_forward_um"] for s in rows]}
        near = [s for s in ok if lo <= s["outputs"]["rectification_ratio"] <= hi]
        entry["ratio_near_reached"] = bool(near)
        entry["ratio_near_signs"] = sorted({int(s["outputs"]["reverse_sign"]) for s in near})
        out[name] = entry
    return out


def _json(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def write_table(cfg: SensitivityConfig, samples: list[dict], csv_path, h5_path) -> None:
    """One row per sample: part, law, trajectory / factor, factor values, outputs, ok, error."""
    import h5py

    names = list(cfg.factor_ranges())
    cols = ["sample", "part", "law", "trajectory", "scan_factor"] + names + list(OUTPUTS) + ["ok", "error"]
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i, s in enumerate(samples):
            o = s["outputs"]
            w.writerow([i, s["part"], s["law"], s.get("trajectory", ""), s.get("factor", "")]
                       + [repr(s["values"][n]) for n in names] + [repr(o[k]) for k in OUTPUTS]
                       + [int(o["ok"]), o["error"]])
    with h5py.File(h5_path, "w") as f:
        f.attrs["title"] = "continuum sensitivity study (continuum.sensitivity)"
        f.attrs["config"] = json.dumps(_json(to_mapping(cfg)))
        f.attrs["fields_V_per_um"] = np.asarray(cfg.fields_V_per_um, dtype=float)
        f.attrs["duration_s"] = cfg.duration_s
        n = len(samples)
        d = f.create_dataset("sample", data=np.arange(n))
        d.make_scale("sample")
        str_t = h5py.string_dtype()
        for key, vals in (("part", [s["part"] for s in samples]), ("law", [s["law"] for s in samples]),
                          ("scan_factor", [s.get("factor", "") for s in samples]),
                          ("error", [s["outputs"]["error"] for s in samples])):
            ds = f.create_dataset(key, data=np.array(vals, dtype=object), dtype=str_t)
            ds.dims[0].attach_scale(d)
        for n_ in names:
            ds = f.create_dataset(n_, data=np.array([s["values"][n_] for s in samples], dtype=float))
            ds.attrs["units"] = FACTORS[n_][1]
            ds.dims[0].attach_scale(d)
        for k, unit in OUTPUTS.items():
            ds = f.create_dataset(k, data=np.array([s["outputs"][k] for s in samples], dtype=float))
            ds.attrs["units"] = unit
            ds.dims[0].attach_scale(d)
        ds = f.create_dataset("ok", data=np.array([s["outputs"]["ok"] for s in samples], dtype=np.int8))
        ds.dims[0].attach_scale(d)


def plot_indices(indices: dict, path=None):
    """Ranked horizontal bar charts of mu* (with its 95 % confidence interval): one row per law
    with indices, one column per analysed output.  Writes ``path`` if given; returns the Figure."""
    import matplotlib

    from .protocol import _finish

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    laws = [law for law, v in indices.items() if ANALYSED[0] in v]
    if not laws:
        fig, ax = plt.subplots(figsize=(5, 2), dpi=150)
        ax.text(0.5, 0.5, "no complete trajectory: no indices", ha="center", va="center")
        ax.set_axis_off()
        return _finish(fig, path)
    fig, axes = plt.subplots(len(laws), len(ANALYSED), figsize=(3.2 * len(ANALYSED), 3.0 * len(laws)), dpi=150,
                             squeeze=False)
    for r, law in enumerate(laws):
        for c, o in enumerate(ANALYSED):
            ax = axes[r, c]
            d = indices[law][o]
            order = np.argsort(d["mu_star"])
            ax.barh([d["names"][i] for i in order], [d["mu_star"][i] for i in order],
                    xerr=[d["mu_star_conf"][i] for i in order], color="C0", ecolor="0.3", capsize=2)
            ax.tick_params(axis="y", labelsize=6)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(f"{law}: {o}", fontsize=7)
            ax.set_xlabel("Morris $\\mu^*$ (95 % CI)", fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def run_study(cfg: SensitivityConfig, outdir, mapper=map, progress=None) -> dict:
    """Every run of the design through ``mapper`` (``map(fn, iterable)`` semantics); writes
    OUTDIR/sensitivity.csv, sensitivity.h5, sensitivity_indices.json, sensitivity_morris.png and
    returns the summary (indices, scan ranges, counts, timing)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    samples = make_design(cfg)
    fields = [float(e) for e in cfg.fields_V_per_um]
    jobs = []
    for s in samples:
        p = apply_factors(cfg.params, s["values"], s["law"])
        jobs += [(p, e, cfg.duration_s, cfg.numerics) for e in fields]
    # the most expensive runs (strong forward bias) first, so parallel workers finish together
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1])
    results: list[dict | None] = [None] * len(jobs)
    for i, r in zip(order, mapper(run_one, [jobs[i] for i in order])):
        results[i] = r
        if progress:
            progress(r)
    nf = len(fields)
    for j, s in enumerate(samples):
        s["outputs"] = sample_outputs(fields, results[j * nf:(j + 1) * nf])
    wall = time.perf_counter() - t0
    indices = {law: morris_indices(cfg, samples, law) for law in cfg.laws}
    scans = {law: scan_ranges(cfg, samples, law) for law in cfg.laws} if cfg.scan_levels else {}
    write_table(cfg, samples, outdir / "sensitivity.csv", outdir / "sensitivity.h5")
    plot_indices(indices, outdir / "sensitivity_morris.png")
    lo, hi = cfg.ratio_near
    per_law = {}
    for law in cfg.laws:
        rows = [s["outputs"] for s in samples if s["law"] == law]
        ok = [o for o in rows if o["ok"]]
        near = [o for o in ok if lo <= o["rectification_ratio"] <= hi]
        errors = sorted({o["error"].split(";")[0] for o in rows if not o["ok"]})
        per_law[law] = {"samples": len(rows), "ok": len(ok),
                        "ratio_range": [min((o["rectification_ratio"] for o in ok), default=None),
                                        max((o["rectification_ratio"] for o in ok), default=None)],
                        "L_reverse_range_um": [min((o["L_reverse_um"] for o in ok), default=None),
                                               max((o["L_reverse_um"] for o in ok), default=None)],
                        "front_width_forward_range_um": [min((o["front_width_forward_um"] for o in ok), default=None),
                                                         max((o["front_width_forward_um"] for o in ok), default=None)],
                        "ratio_near_count": len(near),
                        "ratio_near_reverse_signs": sorted({int(o["reverse_sign"]) for o in near}),
                        "errors": errors[:3]}
    out = {"runs": len(jobs), "samples": len(samples), "fields_V_per_um": fields, "duration_s": cfg.duration_s,
           "n_nodes": cfg.numerics.n_nodes, "laws": list(cfg.laws), "factors": cfg.factor_ranges(),
           "ratio_near": list(cfg.ratio_near), "per_law": per_law, "morris": indices, "scan": scans,
           "wall_s": wall, "run_cpu_s": float(sum(r["cpu_s"] for r in results)),
           "table_csv": str(outdir / "sensitivity.csv"), "table_h5": str(outdir / "sensitivity.h5"),
           "figure": str(outdir / "sensitivity_morris.png")}
    out = _json(out)
    (outdir / "sensitivity_indices.json").write_text(json.dumps(out, indent=1))
    return out


class SensitivityRun:
    """The ``sensitivity`` run type of ``ionwire campaign``: one point per design sample (all its
    fields in one run), the table, the Morris indices and the bar chart in ``reduce``."""

    name = "sensitivity"
    load = staticmethod(load_config)

    @staticmethod
    def expand(cfg):
        return [{"sample": i} for i in range(len(make_design(cfg)))]

    @staticmethod
    def run(cfg, point, outdir):
        unknown = set(point) - {"sample"}
        if unknown:
            raise ParameterError(f"sensitivity point: unknown key {sorted(unknown)[0]}")
        s = make_design(cfg)[int(point["sample"])]
        p = apply_factors(cfg.params, s["values"], s["law"])
        runs = [run_one((p, e, cfg.duration_s, cfg.numerics)) for e in cfg.fields_V_per_um]
        return _json({"sample": int(point["sample"]), "runs": runs,
                      "outputs": sample_outputs(cfg.fields_V_per_um, runs)})

    @staticmethod
    def reduce(cfg, points, results, outdir):
        samples = make_design(cfg)
        for s, r in zip(samples, results):
            o = dict(r["outputs"])
            s["outputs"] = {k: (float("nan") if (k in OUTPUTS and o[k] is None) else o[k]) for k in o}
        indices = {law: morris_indices(cfg, samples, law) for law in cfg.laws}
        outdir = Path(outdir)
        write_table(cfg, samples, outdir / "sensitivity.csv", outdir / "sensitivity.h5")
        plot_indices(indices, outdir / "sensitivity_morris.png")
        out = _json({"samples": len(samples), "runs": len(samples) * len(cfg.fields_V_per_um), "morris": indices,
                     "scan": {law: scan_ranges(cfg, samples, law) for law in cfg.laws} if cfg.scan_levels else {},
                     "table_csv": str(outdir / "sensitivity.csv"), "figure": str(outdir / "sensitivity_morris.png")})
        ok = sum(1 for s in samples if s["outputs"]["ok"])
        out["headline"] = f"{ok}/{len(samples)} samples complete; table {out['table_csv']}, chart {out['figure']}"
        return out

    @staticmethod
    def fingerprint(cfg):
        d = to_mapping(cfg)
        d.pop("workers", None)
        return d
