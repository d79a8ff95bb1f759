"""Fig. 1e side by side: (a) the prediction with the paper's electrode rates, nothing fitted, and
(b) the calibrated model, each with its rectification ratio and the sign of L(-4).

Migration lengths are signed throughout: L > 0 is motion of the front towards the Br segment
(the paper's migration), L < 0 towards the Cl segment.  The paper's numbers (docs/model.md section
1, from :mod:`ionwire.structures.paper`) are drawn at their signed values for the summary's
duration: the forward mobility length mu E t at the calibration field and at the largest field,
and L(largest field) / ratio at the reverse field (a small motion towards Br); with 4 h these are
0.49, 0.98 and +0.05 um.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ionwire.structures import paper
from ionwire.structures.parameters import DEFAULT_HALIDES, alpha_keys


def paper_points(duration_s: float) -> tuple[tuple[float, float], ...]:
    """(field V/um, signed L um) of the paper's numbers for a bias lasting ``duration_s``."""
    e_fwd, e_max = paper.CALIBRATION_FORWARD_FIELD.value, paper.LARGEST_FIELD.value
    l_max = paper.mobility_length_um(e_max, duration_s)
    return ((e_fwd, paper.mobility_length_um(e_fwd, duration_s)), (e_max, l_max),
            (paper.CALIBRATION_REVERSE_FIELD.value, l_max / paper.RECTIFICATION_RATIO.value))


def _sign_text(sign) -> str:
    if sign is None:
        return "no reverse field"
    return {1: "L(-4) > 0: towards Br", -1: "L(-4) < 0: towards Cl", 0: "L(-4) = 0"}[int(sign)]


def _panel(ax, fields, lengths, ratio, sign, title, duration_s, fit=None, color="C0"):
    e = np.asarray(fields, dtype=float)
    l_arr = np.asarray(lengths, dtype=float)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.plot(e, l_arr, "o-", color=color, ms=4, label="continuum model (signed L)")
    if fit:
        xs = np.linspace(paper.LINEAR_FORWARD_FROM.value, float(np.max(e)), 10)
        ax.plot(xs, fit["slope"] * xs + fit["intercept"], "--", color="C1",
                label=f"linear forward fit, $R^2$={fit['r_squared']:.3f}")
    pe, pl = zip(*paper_points(duration_s))
    ax.plot(pe, pl, "s", mfc="none", color="k", label="paper (docs/model.md section 1), signed")
    ratio_text = f"ratio L(+4)/|L(-4)| = {ratio:.1f}" if ratio is not None and np.isfinite(ratio) else "ratio: n/a"
    ax.set_title(f"{title}\n{ratio_text}; {_sign_text(sign)}", fontsize=8)
    ax.set_xlabel("field (V/$\\mu$m)  (negative: reverse)")
    ax.legend(fontsize=6, loc="upper left")


def fig1e_pair_figure(summary: Mapping[str, Any], axes=None):
    """Two panels from an experiment summary carrying ``prediction_paper_alphas``: (a) the paper's
    alphas, (b) the configured or calibrated model.  Draws into ``axes`` (two Axes) if given, else a
    new figure; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = summary["prediction_paper_alphas"]
    halides = tuple(summary.get("halides", DEFAULT_HALIDES))
    ka, kb = alpha_keys(halides)
    duration_s = float(summary.get("duration_s", paper.BIAS_DURATION.value))
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.9), dpi=150, sharey=True)
    else:
        fig = axes[0].figure
    _panel(axes[0], pred["field_V_per_um"], pred["migration_length_um"], pred.get("rectification_ratio"),
           pred.get("reverse_sign"),
           f"(a) prediction, paper alphas ({halides[0]} {pred[ka]:.2g}, "
           f"{halides[1]} {pred[kb]:.2g} um/(V s)), nothing fitted", duration_s, color="C2")
    par = summary.get("parameters", {})
    cal = summary.get("calibrated") or {}
    kind = "calibrated" if cal else "as configured"
    _panel(axes[1], summary["field_V_per_um"], summary["migration_length_um"], summary.get("rectification_ratio"),
           summary.get("reverse_sign"),
           f"(b) {kind} model ({halides[0]} {par.get(ka, float('nan')):.2g}, "
           f"{halides[1]} {par.get(kb, float('nan')):.2g} um/(V s))",
           duration_s, fit=summary.get("forward_linear_fit"))
    targets = summary.get("calibration_targets") or []
    if cal and targets:  # the config's calibration targets (|L| unless the reverse one is signed)
        te, tl = zip(*targets)
        axes[1].plot(te, tl, "x", color="C3", ms=7, label="calibration targets (config)")
        axes[1].legend(fontsize=6, loc="upper left")
    axes[0].set_ylabel(f"migration length after {duration_s / 3600:g} h ($\\mu$m), > 0 towards Br")
    fig.suptitle("Fig. 1e", fontsize=10)
    fig.tight_layout()
    return fig
