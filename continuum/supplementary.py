"""The paper's supplementary model figures S11-S15 (Kong et al. 2020): data (HDF5 + JSON) and PNG.

- Fig. S11: the migration length against time for additional biases (forward and reverse,
  S11_FIELDS), with the 10-90 % front width against time beside it;
- Fig. S12 / S13: the initial composition front moved within the gap (junction at the fractions
  S12_JUNCTION_FRACTIONS of the gap; 0.5 is the default, its centre), L(t) at +-E_max, without
  (S12) and with (S13) the electrode sources;
- Fig. S14 / S15: the total vacancy amount scaled (x_V^eq of both segments times S14_VACANCY_FACTORS),
  L(t) at +-E_max, without (S14) and with (S15) sources.
The paper's point (main text): neither the front position nor the vacancy amount lets the front
move without sources (S12, S14), and with sources they do not change the rectification much.
All runs use the given config (fitted alphas included); only the stated change differs.
Called by continuum.figures.paper_figures (``ionwire continuum CONFIG --paper-figures DIR``).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from . import io as cio
from .experiment import ContinuumConfig, config_dict, map_runs

S11_FIELDS = (0.5, 1.0, 2.0, 3.0, 4.0)
S12_JUNCTION_FRACTIONS = (0.3, 0.5, 0.7)
S14_VACANCY_FACTORS = (0.1, 1.0, 10.0)
E_MAX = 4.0


def _with_junction(cfg: ContinuumConfig, fraction: float) -> ContinuumConfig:
    g0, g1 = cfg.geometry.gap_um_interval
    geo = dataclasses.replace(cfg.geometry, junction_position_um=g0 + fraction * (g1 - g0))
    return cfg.with_params(geometry=geo)


def _with_vacancies(cfg: ContinuumConfig, factor: float) -> ContinuumConfig:
    vac = dataclasses.replace(cfg.vacancies, reference_fraction=cfg.vacancies.reference_fraction * factor)
    return cfg.with_params(vacancies=vac)


def _no_sources(cfg: ContinuumConfig) -> ContinuumConfig:
    return cfg.with_params(electrodes=dataclasses.replace(cfg.electrodes, enabled=False))


def variants(cfg: ContinuumConfig) -> list[tuple[str, ContinuumConfig, float]]:
    """(label, config, field) of every run of S11-S15."""
    out = []
    for e in S11_FIELDS:
        out += [(f"S11 {e:+g}", cfg, e), (f"S11 {-e:+g}", cfg, -e)]
    for fr in S12_JUNCTION_FRACTIONS:
        for e in (E_MAX, -E_MAX):
            out.append((f"S12 junction {fr:g} {e:+g}", _no_sources(_with_junction(cfg, fr)), e))
            out.append((f"S13 junction {fr:g} {e:+g}", _with_junction(cfg, fr), e))
    for f in S14_VACANCY_FACTORS:
        for e in (E_MAX, -E_MAX):
            out.append((f"S14 vacancies x{f:g} {e:+g}", _no_sources(_with_vacancies(cfg, f)), e))
            out.append((f"S15 vacancies x{f:g} {e:+g}", _with_vacancies(cfg, f), e))
    return out


def _t_series(summary):
    t = np.asarray(summary["times_s"], dtype=float)
    lengths = np.array([np.nan if v is None else v for v in summary["migration_length_um_t"]], dtype=float)
    widths = np.array([np.nan if v is None else v for v in summary["front_width_um_t"]], dtype=float)
    return t, lengths, widths


def supplementary_figures(cfg: ContinuumConfig, outdir, mapper=map) -> dict:
    """Run S11-S15 (through ``mapper``), write OUTDIR/supplementary.h5, supplementary.json and
    figS11_additional_biases.png ... figS15_vacancy_amount_sources.png; returns the key numbers
    (final signed L per curve, um) and the file names."""
    from .figures import _paper_pair_only

    _paper_pair_only(cfg, "the supplementary figures S11-S15")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    runs = variants(cfg)
    h5 = outdir / "supplementary.h5"
    cio.create(h5, config_dict(cfg))
    store: dict[str, dict] = {}

    def keep(arrays, summary):
        label, c, _ = runs[len(store)]
        cio.append_run(h5, arrays, {"field_V_per_um": summary["field_V_per_um"],
                                    "migration_length_um": summary["migration_length_um"],
                                    "cl_uptake": summary["cl_uptake"], "label": label,
                                    "junction_um": c.geometry.junction_um, "summary": summary})
        store[label] = summary

    map_runs([(c, e) for _, c, e in runs], mapper, keep)
    hours = cfg.duration_s / 3600.0
    files = {}

    def finish(fig, name, key):
        fig.tight_layout()
        fig.savefig(outdir / name)
        plt.close(fig)
        files[key] = str(outdir / name)

    # S11: L(t) for additional biases, and the front width against time
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.5), dpi=150)
    for k, e in enumerate(S11_FIELDS):
        colour = plt.cm.viridis(k / len(S11_FIELDS))
        for sign, style in ((1, "-"), (-1, "--")):
            t, lengths, widths = _t_series(store[f"S11 {sign * e:+g}"])
            ax.plot(t[1:] / 3600.0, lengths[1:], style, color=colour,
                    label=f"{sign * e:+g} V/um: L = {lengths[-1]:+.3f} um")
            ax2.plot(t[1:] / 3600.0, widths[1:], style, color=colour, label=f"{sign * e:+g} V/um")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("migration length ($\\mu$m)  (> 0 towards Br)")
    ax.set_title("Fig. S11: additional biases (solid forward, dashed reverse)", fontsize=8)
    ax.legend(fontsize=5, ncol=2)
    ax2.set_xscale("log")
    ax2.set_xlabel("time (h)")
    ax2.set_ylabel("front width $x_{Br}$ 0.9 $\\to$ 0.1 ($\\mu$m)")
    ax2.set_title("front width against time", fontsize=8)
    ax2.legend(fontsize=5, ncol=2)
    finish(fig, "figS11_additional_biases.png", "figS11")

    def lt_panel(prefix, values, fmt, title, name, key):
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
        for k, v in enumerate(values):
            colour = plt.cm.plasma(k / len(values))
            for e, style in ((E_MAX, "-"), (-E_MAX, "--")):
                s = store[f"{prefix} {fmt(v)} {e:+g}"]
                t, lengths, _ = _t_series(s)
                ax.plot(t[1:] / 3600.0, lengths[1:], style, color=colour,
                        label=f"{fmt(v)}, {e:+g} V/um: L = {lengths[-1]:+.3f} um")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("time (h)")
        ax.set_ylabel(f"migration length ($\\mu$m), {hours:g} h run")
        ax.set_title(title, fontsize=8)
        ax.legend(fontsize=5)
        finish(fig, name, key)

    jfmt = lambda fr: f"junction {fr:g}"  # noqa: E731
    vfmt = lambda f: f"vacancies x{f:g}"  # noqa: E731
    lt_panel("S12", S12_JUNCTION_FRACTIONS, jfmt, "Fig. S12: initial front moved in the gap (fraction), no sources",
             "figS12_front_position_no_sources.png", "figS12")
    lt_panel("S13", S12_JUNCTION_FRACTIONS, jfmt, "Fig. S13: initial front moved in the gap (fraction), with sources",
             "figS13_front_position_sources.png", "figS13")
    lt_panel("S14", S14_VACANCY_FACTORS, vfmt, "Fig. S14: total vacancy amount scaled, no sources",
             "figS14_vacancy_amount_no_sources.png", "figS14")
    lt_panel("S15", S14_VACANCY_FACTORS, vfmt, "Fig. S15: total vacancy amount scaled, with sources",
             "figS15_vacancy_amount_sources.png", "figS15")

    def final(label):
        return float(store[label]["migration_length_um"])

    def ratio(prefix, v):
        lf, lr = final(f"{prefix} {v} {E_MAX:+g}"), final(f"{prefix} {v} {-E_MAX:+g}")
        return lf / abs(lr) if lr != 0 else None

    out = {
        "files": files, "h5": str(h5), "duration_s": cfg.duration_s,
        "figS11_L_um": {f"{s * e:+g}": final(f"S11 {s * e:+g}") for e in S11_FIELDS for s in (1, -1)},
        "figS11_front_width_um": {f"{s * e:+g}": store[f"S11 {s * e:+g}"]["front_width_um"]
                                  for e in S11_FIELDS for s in (1, -1)},
    }
    for prefix, values, fmt, key in (("S12", S12_JUNCTION_FRACTIONS, jfmt, "junction_fraction"),
                                     ("S13", S12_JUNCTION_FRACTIONS, jfmt, "junction_fraction"),
                                     ("S14", S14_VACANCY_FACTORS, vfmt, "vacancy_factor"),
                                     ("S15", S14_VACANCY_FACTORS, vfmt, "vacancy_factor")):
        out[f"fig{prefix}_L_um"] = {
            f"{v:g}": {f"{e:+g}": final(f"{prefix} {fmt(v)} {e:+g}") for e in (E_MAX, -E_MAX)} for v in values}
        out[f"fig{prefix}_L_um"]["varied"] = key
        if prefix in ("S13", "S15"):
            out[f"fig{prefix}_rectification_ratio"] = {f"{v:g}": ratio(prefix, fmt(v)) for v in values}
    (outdir / "supplementary.json").write_text(json.dumps(out, indent=1))
    return out
