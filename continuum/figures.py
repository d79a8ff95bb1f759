"""Reproductions of the paper's model figures (Kong et al. 2020): data (HDF5 + JSON) and PNG.

- Fig. 2b / 2d: x_Br profiles after the run for forward / reverse fields (1.5 ... 4 V/um);
- Fig. 3a / 3b: x_Br and x_V (rescaled by x_V^eq of the Cl segment, as in the paper) after the
  run at +4 / -4 V/um, with electrode sources (solid), without (dashed), initial (dotted);
- Fig. S10: migration length without sources against the field (no migration);
- Fig. S16: L(+4 V/um) when the rates of the vacancy-depleted (positive) or of the other
  (negative) electrode are scaled by 0.5 and 2: only the former matters;
- Fig. S11-S15 (continuum.supplementary): L(t) for additional biases with the front width
  against time, the initial front moved in the gap and the vacancy amount scaled, without and
  with sources (OUTDIR/supplementary.h5, supplementary.json).
All runs use the given config (fitted alphas included); only the stated switch differs.
``ionwire continuum runs/fig1e.toml --paper-figures DIR`` calls :func:`paper_figures`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from . import io as cio
from .experiment import ContinuumConfig, config_dict, map_runs

FIG2_FIELDS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
S10_FIELDS = (-4.0, -2.0, 0.0, 2.0, 4.0)
S16_FACTORS = (0.5, 1.0, 2.0)


def _variant(cfg: ContinuumConfig, **electrodes) -> ContinuumConfig:
    return cfg.with_params(electrodes=dataclasses.replace(cfg.electrodes, **electrodes))


def _paper_pair_only(cfg: ContinuumConfig, what: str) -> None:
    """ParameterError unless cfg is the paper's CsPbBr3 | CsPbCl3 wire (the default material set)."""
    from ionwire.structures import materials
    from ionwire.structures.errors import ParameterError

    if cfg.params.material.set != materials.DEFAULT_SET.name:
        raise ParameterError(f"{what} reproduce the experiment of {materials.DEFAULT_SET.name}; this config's "
                             f"material set is {cfg.params.material.set!r}")


def paper_figures(cfg: ContinuumConfig, outdir, mapper=map) -> dict:
    """Run every variant (through ``mapper``, ``map(fn, iterable)`` semantics; default serial),
    write OUTDIR/paper_figures.h5, paper_figures.json and the PNGs.

    Returns a JSON-able dict of the key numbers and file names."""
    _paper_pair_only(cfg, "the paper figures (Figs. 2, 3, S10, S16)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    nosrc = _variant(cfg, enabled=False)
    runs, labels = [], []
    for e in FIG2_FIELDS:
        runs += [(cfg, e), (cfg, -e)]
        labels += [f"sources {e:+g}", f"sources {-e:+g}"]
    for e in S10_FIELDS:
        runs.append((nosrc, e))
        labels.append(f"no sources {e:+g}")
    for f in S16_FACTORS:
        if f != 1.0:
            runs.append((_variant(cfg, positive_electrode_factor=f), 4.0))
            labels.append(f"positive x{f:g}")
            runs.append((_variant(cfg, negative_electrode_factor=f), 4.0))
            labels.append(f"negative x{f:g}")
    h5 = outdir / "paper_figures.h5"
    cio.create(h5, config_dict(cfg))
    store = {}

    def keep(arrays, summary):
        label = labels[len(store)]
        cio.append_run(h5, arrays, {"field_V_per_um": summary["field_V_per_um"],
                                    "migration_length_um": summary["migration_length_um"],
                                    "cl_uptake": summary["cl_uptake"], "label": label,
                                    "junction_um": cfg.geometry.junction_um, "summary": summary})
        store[label] = (arrays, summary)

    map_runs(runs, mapper, keep)
    xeq_cl = cfg.vacancies.equilibrium_fraction(cfg.material, 1.0)
    hours = cfg.duration_s / 3600.0
    (l0, l1), (r0, r1) = cfg.geometry.contacts_um()
    files = {}

    def contacts(ax):
        ax.axvspan(l0, l1, color="orange", alpha=0.15, lw=0)
        ax.axvspan(r0, r1, color="green", alpha=0.15, lw=0)

    # Fig. 2b / 2d
    for name, sign in (("fig2b_forward_profiles.png", 1), ("fig2d_reverse_profiles.png", -1)):
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
        a0 = store[f"sources {sign * FIG2_FIELDS[0]:+g}"][0]
        ax.plot(a0["z_um"], a0["x_br"][0], ":", color="k", label="initial")
        for k, e in enumerate(FIG2_FIELDS):
            a, s = store[f"sources {sign * e:+g}"]
            ax.plot(a["z_um"], a["x_br"][-1], color=plt.cm.viridis(k / len(FIG2_FIELDS)),
                    label=f"{sign * e:+g} V/um: L = {s['migration_length_um']:+.3f} um")
        contacts(ax)
        ax.axhline(0.55, color="0.6", lw=0.6)
        ax.set_xlabel("z ($\\mu$m)  (Br segment left)")
        ax.set_ylabel(f"$x_{{Br}}$ after {hours:g} h")
        ax.set_title(("Fig. 2b: forward" if sign > 0 else "Fig. 2d: reverse") + " bias", fontsize=10)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(outdir / name)
        plt.close(fig)
        files[name[:5]] = str(outdir / name)
    # Fig. 3a / 3b
    for name, e in (("fig3a_forward_mechanism.png", 4.0), ("fig3b_reverse_mechanism.png", -4.0)):
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
        ax2 = ax.twinx()
        a, _ = store[f"sources {e:+g}"]
        b, _ = store[f"no sources {e:+g}"]
        z = a["z_um"]
        ax.plot(z, a["x_br"][0], ":", color="k")
        ax.plot(z, b["x_br"][-1], "--", color="k")
        ax.plot(z, a["x_br"][-1], "-", color="k", label="$x_{Br}$")
        ax2.semilogy(z, np.maximum(a["x_v"][0] / xeq_cl, 1e-6), ":", color="C0")
        ax2.semilogy(z, np.maximum(b["x_v"][-1] / xeq_cl, 1e-6), "--", color="C0")
        ax2.semilogy(z, np.maximum(a["x_v"][-1] / xeq_cl, 1e-6), "-", color="C0")
        ax2.set_ylabel("$x_V / x_V^{eq}$(Cl)", color="C0")
        contacts(ax)
        ax.set_xlabel("z ($\\mu$m)")
        ax.set_ylabel("$x_{Br}$")
        ax.set_title(f"Fig. 3{'a' if e > 0 else 'b'}: {e:+g} V/um, {hours:g} h (dotted initial, dashed no "
                     "sources, solid sources)", fontsize=7)
        fig.tight_layout()
        fig.savefig(outdir / name)
        plt.close(fig)
        files[name[:5]] = str(outdir / name)
    # Fig. S10
    l_nosrc = [store[f"no sources {e:+g}"][1]["migration_length_um"] for e in S10_FIELDS]
    l_src = [store[f"sources {e:+g}"][1]["migration_length_um"] if f"sources {e:+g}" in store else None
             for e in S10_FIELDS]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    ax.plot(S10_FIELDS, l_nosrc, "o-", label="no electrode sources")
    ok = [(e, v) for e, v in zip(S10_FIELDS, l_src) if v is not None]
    ax.plot([e for e, _ in ok], [v for _, v in ok], "s--", label="with sources")
    ax.set_xlabel("field (V/$\\mu$m)")
    ax.set_ylabel(f"migration length after {hours:g} h ($\\mu$m)")
    ax.set_title("Fig. S10: no sources, no migration", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(outdir / "figS10_no_sources.png")
    plt.close(fig)
    files["figS10"] = str(outdir / "figS10_no_sources.png")
    # Fig. S16
    base = store["sources +4"][1]["migration_length_um"]
    pos = {f: (store[f"positive x{f:g}"][1]["migration_length_um"] if f != 1.0 else base) for f in S16_FACTORS}
    neg = {f: (store[f"negative x{f:g}"][1]["migration_length_um"] if f != 1.0 else base) for f in S16_FACTORS}
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    ax.plot(S16_FACTORS, [pos[f] for f in S16_FACTORS], "o-", label="positive (vacancy-depleted) electrode scaled")
    ax.plot(S16_FACTORS, [neg[f] for f in S16_FACTORS], "s--", label="negative electrode scaled")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rate factor")
    ax.set_ylabel(f"L(+4 V/um, {hours:g} h) ($\\mu$m)")
    ax.set_title("Fig. S16: only the injection at the depleted electrode matters", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(outdir / "figS16_electrode_sensitivity.png")
    plt.close(fig)
    files["figS16"] = str(outdir / "figS16_electrode_sensitivity.png")
    out = {
        "files": files, "h5": str(h5),
        "fig2_forward_L_um": {f"{e:+g}": store[f"sources {e:+g}"][1]["migration_length_um"] for e in FIG2_FIELDS},
        "fig2_reverse_L_um": {f"{-e:+g}": store[f"sources {-e:+g}"][1]["migration_length_um"] for e in FIG2_FIELDS},
        "figS10_no_sources_L_um": dict(zip((f"{e:+g}" for e in S10_FIELDS), l_nosrc)),
        "figS16_L_um": {"positive_factor": {f"{f:g}": pos[f] for f in S16_FACTORS},
                        "negative_factor": {f"{f:g}": neg[f] for f in S16_FACTORS}},
        "fig3_min_xv_gap_over_xeq_cl": {
            lab: float(np.min(store[lab][0]["x_v"][-1][(store[lab][0]["z_um"] > l1) & (store[lab][0]["z_um"] < r0)]) / xeq_cl)
            for lab in ("sources +4", "no sources +4", "sources -4", "no sources -4")},
    }
    from .supplementary import supplementary_figures

    out["supplementary"] = supplementary_figures(cfg, outdir, mapper)
    files.update(out["supplementary"]["files"])
    (outdir / "paper_figures.json").write_text(json.dumps(out, indent=1))
    return out
