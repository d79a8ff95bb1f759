"""Atomistic-vs-continuum agreement of one biased run: statistics, JSON summary, HDF5 and PNGs.

Input of :func:`analyse_direction` (one bias direction, e.g. forward):
  z_edges_nm float64[b + 1] bin edges along the wire; times_s float64[t] compared times;
  kmc: {field: float64[R, t, b]} per-replica bin averages; continuum: {field: float64[t, b]}
  the continuum model averaged over the same bins; fields are "x_br", "x_v", "phi_V";
  sites_per_bin float64[b]; br_side "left"|"right"; kT_eV.
Output: a dict of arrays (for HDF5) and a JSON-able summary: reduced chi^2 per field and time
(:func:`ionwire.coupling.statistics.reduced_chi2`), its expectation for R replicas, the front position
(x_Br = 0.55) per replica and of the continuum, and the 2-sigma front agreement (sigma = replica
standard error combined with ``front_resolution``, the quantisation of a position on the lattice:
h/sqrt(12) for planes h apart; the z-scores with the replica SEM alone are reported too).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ionwire.structures.front import binned_front
from ionwire.structures.statistics import replica_mean_sem

from . import statistics as S

FIELDS = ("x_br", "x_v", "phi_V")
FIELD_LABELS = {"x_br": "x_Br", "x_v": "x_V", "phi_V": "phi (V)"}  # the default pair's


def field_labels(halides=("Br", "Cl")) -> dict[str, str]:
    """Plot labels of the compared fields for the halide pair (x_br is the first halide's fraction)."""
    return dict(FIELD_LABELS, x_br=f"x_{halides[0]}")
#: the fields whose reduced chi^2 is held to the acceptance threshold
ACCEPTANCE_FIELDS = ("x_br", "x_v")


def first_fraction_key(halides=("Br", "Cl")) -> str:
    """The name of the first halide's site fraction in the comparison's outputs: x_br for Br."""
    return f"x_{halides[0].lower()}"


def named_for_pair(obj, halides=("Br", "Cl")):
    """``obj`` (the summary or the arrays of a comparison; dicts, lists, values) with every key
    that names the first halide's fraction (x_br, chi2_per_dof_x_br, kmc_mean_x_br, ...) built
    from the pair; unchanged when the first halide is Br (every shipped material set)."""
    new = first_fraction_key(halides)
    if new == "x_br":
        return obj
    if isinstance(obj, dict):
        return {(k.replace("x_br", new) if isinstance(k, str) else k): named_for_pair(v, halides)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [named_for_pair(v, halides) for v in obj]
    return obj
CHI2_THRESHOLD = 2.0
ACCEPTANCE = (
    "x_Br and x_V: reduced chi^2 of the continuum against the kMC mean, divided by its expectation "
    "(R-1)/(R-3) for agreeing models when the variances are estimated from R replicas, <= 2 at "
    "every compared time (= the plain reduced chi^2 <= 2 of a known-variance comparison); the "
    "front (x_Br = 0.55) within 2 sigma, sigma^2 = SEM^2 + (h/sqrt 12)^2 (lattice quantisation)")


def analyse_direction(z_edges_nm, times_s, kmc: Mapping[str, np.ndarray], continuum: Mapping[str, np.ndarray],
                      sites_per_bin, br_side: str, kT_eV: float, field_V_per_um: float,
                      n_sigma: float = 2.0, front_resolution: float = 0.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Statistics of one direction: (arrays for HDF5, JSON-able summary).  See module doc."""
    z_edges = np.asarray(z_edges_nm, dtype=float)
    zc = 0.5 * (z_edges[1:] + z_edges[:-1])
    times = np.asarray(times_s, dtype=float)
    arrays: dict[str, Any] = {"z_nm": zc, "z_edges_nm": z_edges, "times_s": times,
                              "sites_per_bin": np.asarray(sites_per_bin, dtype=float),
                              "field_V_per_um": float(field_V_per_um), "br_side": br_side}
    summary: dict[str, Any] = {"field_V_per_um": float(field_V_per_um), "times_s": times.tolist(),
                               "chi2_per_dof": {}, "dof": int(zc.size)}
    R = None
    for f in FIELDS:
        if f not in kmc or f not in continuum:
            continue
        reps = np.asarray(kmc[f], dtype=float)
        R = reps.shape[0]
        mean, sem = replica_mean_sem(reps)
        model = np.asarray(continuum[f], dtype=float)
        if f == "phi_V":
            floor = S.PHI_FLOOR_KT * kT_eV
        else:
            floor = S.fraction_floor(sites_per_bin, R)[None, :]
        chi2 = S.reduced_chi2(model, mean, sem, floor)
        arrays[f"kmc_replicas_{f}"] = reps
        arrays[f"kmc_mean_{f}"] = mean
        arrays[f"kmc_sem_{f}"] = sem
        arrays[f"continuum_{f}"] = model
        arrays[f"chi2_per_dof_{f}"] = chi2
        # sign of the mean residual, weighted like chi2: which way the continuum is off
        w = 1.0 / np.maximum(sem, floor) ** 2
        bias = np.sum((model - mean) * w, axis=-1) / np.sum(w, axis=-1)
        summary["chi2_per_dof"][f] = chi2.tolist()
        summary.setdefault("chi2_per_dof_variance_corrected", {})[f] = (chi2 / S.expected_chi2_per_dof(R)).tolist()
        summary.setdefault("weighted_mean_residual", {})[f] = bias.tolist()
    if R is None:
        raise ValueError("no field present in both the kMC and the continuum results")
    summary["replicas"] = R
    summary["expected_chi2_per_dof_if_models_agree"] = S.expected_chi2_per_dof(R)
    summary["chi2_per_dof_spread_if_models_agree"] = S.chi2_per_dof_spread(R, zc.size)
    # acceptance on the variance-corrected reduced chi^2 (see ACCEPTANCE)
    accepted = [bool(np.all(np.asarray(summary["chi2_per_dof_variance_corrected"][f]) <= CHI2_THRESHOLD))
                for f in ACCEPTANCE_FIELDS if f in summary["chi2_per_dof"]]
    summary["chi2_within_threshold"] = bool(all(accepted)) if accepted else None
    summary["chi2_threshold"] = CHI2_THRESHOLD
    if "x_br" in kmc and "x_br" in continuum:
        fk = binned_front(zc, z_edges, np.asarray(kmc["x_br"], dtype=float), br_side)
        fc = binned_front(zc, z_edges, np.asarray(continuum["x_br"], dtype=float), br_side)
        arrays["front_kmc_nm"] = fk
        arrays["front_continuum_nm"] = fc
        agreement = S.front_agreement(fk, fc, n_sigma, resolution=front_resolution)
        agreement["unit"] = "nm"
        summary["front_position_agreement"] = agreement
    return arrays, summary


def write_json(path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON (numpy scalars converted); NaN/inf become null."""

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.ndarray):
            return clean(v.tolist())
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    Path(path).write_text(json.dumps(clean(dict(data)), indent=2, sort_keys=True) + "\n")


def profiles_figure(arrays: Mapping[str, Any], name: str, axes=None, halides=("Br", "Cl")):
    """Profiles of each compared field at every compared time: kMC mean +- 2 SEM band and the
    continuum line, one row per field and one column per time.  Draws into ``axes`` (a
    [fields, times] array of Axes) if given; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = arrays["z_nm"]
    times = arrays["times_s"]
    fields = [f for f in FIELDS if f"kmc_mean_{f}" in arrays]
    nt = len(times)
    if axes is None:
        fig, axes = plt.subplots(len(fields), nt, figsize=(3.2 * nt, 2.6 * len(fields)), squeeze=False,
                                 sharex=True)
    else:
        axes = np.asarray(axes, dtype=object).reshape(len(fields), nt)
        fig = axes[0, 0].figure
    for i, f in enumerate(fields):
        for j in range(nt):
            ax = axes[i, j]
            m = arrays[f"kmc_mean_{f}"][j]
            s = arrays[f"kmc_sem_{f}"][j]
            ax.fill_between(z, m - 2 * s, m + 2 * s, color="tab:blue", alpha=0.3, lw=0)
            ax.plot(z, m, ".", ms=2, color="tab:blue", label="kMC mean ±2 SEM")
            ax.plot(z, arrays[f"continuum_{f}"][j], "-", color="tab:red", lw=1, label="continuum")
            chi2 = arrays[f"chi2_per_dof_{f}"][j]
            ax.set_title(f"t = {times[j]:.3g} s, χ²/dof = {chi2:.2f}", fontsize=8)
            if f == "x_v":
                ax.set_yscale("symlog", linthresh=1e-5)
            if j == 0:
                ax.set_ylabel(field_labels(halides)[f])
            if i == len(fields) - 1:
                ax.set_xlabel("z (nm)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{name}: E = {arrays['field_V_per_um']:g} V/um", fontsize=10)
    fig.tight_layout()
    return fig


def front_chi2_figure(arrays: Mapping[str, Any], name: str, axes=None, halides=("Br", "Cl")):
    """(a) front position against time, kMC mean +- 2 SEM and continuum; (b) reduced chi^2 of each
    field against time.  Draws into ``axes`` (two Axes) if given; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = arrays["times_s"]
    fields = [f for f in FIELDS if f"kmc_mean_{f}" in arrays]
    if axes is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    else:
        a1, a2 = axes
        fig = a1.figure
    if "front_kmc_nm" in arrays:
        fk = arrays["front_kmc_nm"]
        mean, sem = replica_mean_sem(fk)
        a1.errorbar(times, mean, yerr=2 * sem, fmt="o", capsize=3, label="kMC mean ±2 SEM")
        a1.plot(times, arrays["front_continuum_nm"], "s-", color="tab:red", label="continuum")
        a1.set_xscale("log")
        a1.set_xlabel("t (s)")
        a1.set_ylabel(f"front (x_{halides[0]} = 0.55), nm")
        a1.legend(fontsize=7)
    for f in fields:
        a2.plot(times, arrays[f"chi2_per_dof_{f}"], "o-", label=field_labels(halides)[f])
    a2.axhline(CHI2_THRESHOLD, color="k", ls="--", lw=0.8)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("t (s)")
    a2.set_ylabel("reduced χ² (continuum vs kMC mean)")
    a2.legend(fontsize=7)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    return fig


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_direction(arrays: Mapping[str, Any], name: str, outdir, halides=("Br", "Cl")) -> list[str]:
    """PNGs for one direction (:func:`profiles_figure`, :func:`front_chi2_figure`) in ``outdir``,
    labelled for the halide pair.  Returns the file names."""
    files = [f"profiles_{name}.png", f"front_chi2_{name}.png"]
    _save(profiles_figure(arrays, name, halides=halides), Path(outdir) / files[0])
    _save(front_chi2_figure(arrays, name, halides=halides), Path(outdir) / files[1])
    return files


def rectification_figure(times_s, rect: Mapping[str, Any], fronts: Mapping[str, Mapping[str, Any]], unit: str,
                         title: str = "", axes=None, halides=("Br", "Cl")):
    """The headline plot (Fig. 1e of the paper, for the scaled device): (a) migration length
    |front displacement| of both polarities at each compared time, kMC mean +- 2 SEM against the
    continuum; (b) front position against time (fronts: {direction: {"kmc" float[R, t],
    "continuum" float[t]}}).  Draws into ``axes`` (two Axes) if given; returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(times_s, dtype=float)
    if axes is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    else:
        a1, a2 = axes
        fig = a1.figure
    for key, color, label in (("forward", "tab:blue", "forward"), ("reverse", "tab:orange", "reverse")):
        m = np.asarray(rect[f"kmc_{key}_length"])
        s = np.asarray(rect[f"kmc_{key}_length_sem"])
        a1.errorbar(t, m, yerr=2 * s, fmt="o", color=color, capsize=3, label=f"kMC {label} (mean ±2 SEM)")
        a1.plot(t, rect[f"continuum_{key}_length"], "-", color=color, lw=1.2, label=f"continuum {label}")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("t (s)")
    a1.set_ylabel(f"migration length ({unit})")
    a1.set_title(f"ratio: kMC {rect['kmc_ratio']:.3g} ± {rect['kmc_ratio_err']:.2g}, "
                 f"continuum {rect['continuum_ratio']:.3g}", fontsize=9)
    a1.legend(fontsize=7)
    for name, d in fronts.items():
        mean, sem = replica_mean_sem(np.asarray(d["kmc"], dtype=float))
        line = a2.errorbar(t, mean, yerr=2 * sem, fmt="o", capsize=3, label=f"kMC {name}")
        a2.plot(t, d["continuum"], "-", color=line[0].get_color(), lw=1.2, label=f"continuum {name}")
    a2.set_xscale("log")
    a2.set_xlabel("t (s)")
    a2.set_ylabel(f"front (x_{halides[0]} = 0.55), {unit}")
    a2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_rectification(times_s, rect: Mapping[str, Any], fronts: Mapping[str, Mapping[str, Any]], unit: str,
                       outdir, title: str = "", halides=("Br", "Cl")) -> str:
    """:func:`rectification_figure` as ``outdir``/rectification.png; returns the file name."""
    fn = "rectification.png"
    _save(rectification_figure(times_s, rect, fronts, unit, title, halides=halides), Path(outdir) / fn)
    return fn
