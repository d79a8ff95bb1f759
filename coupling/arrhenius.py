"""Arrhenius study as a campaign (run type ``arrhenius``, runs/arrhenius.toml; docs/model.md
section 21): a sweep over temperature of

- the bulk kMC (kmc.observables.measure_replica, independent replicas per temperature): the
  tracer D of each halide, the vacancy D and the Onsager coefficients l_ab against 1/T, with the
  activation energy of each from a weighted least-squares fit of ln y against 1/kT (weights from
  the replica standard errors; structures.temperature.arrhenius_fit);
- the device (the continuum model, continuum.experiment.run_point): the signed migration lengths
  L(+E) and L(-E) after ``duration_s`` and the rectification ratio L(+E) / |L(-E)| against T.

Config (TOML)::

    run = "arrhenius"
    temperatures_K = [280.0, 300.0, ...]   # >= 2 distinct temperatures > 0 K
    replicas = 4                           # bulk replicas per temperature
    models = ["bulk", "continuum"]         # optional: either or both
    [material] [vacancies] [geometry] [electrodes]   structures.parameters (shared by both models;
                                           material.temperature_K is replaced by each temperature)
    [bulk]                                 kmc.observables.BulkSettings (cells, composition, ...)
    f0 = ...                               optional: the MAA f0 (continuum transport, theory l_ab)
    [continuum]  duration_s, field_V_per_um (> 0: the runs are at +E and -E),
                 [continuum.numerics] (continuum.model.Numerics), [continuum.transport]

What follows T: the hop rates nu0 exp(-E_a / kT), the thermal voltage, x_V^eq (Vacancies,
structures.temperature); the electrode rates alpha of [electrodes] are held fixed (nothing is
calibrated here: a fit at every temperature would absorb the temperature dependence).  The bulk
kMC runs at a fixed vacancy fraction ([bulk] vacancy_fraction), so its activation energies are
migration energies; the device's include the formation energy through x_V^eq(T).

Outputs in the campaign folder: arrhenius.json (every fit and the per-temperature table),
arrhenius_bulk.csv, arrhenius_device.csv, arrhenius_bulk.png, arrhenius_device.png; each
continuum run keeps its continuum.h5.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ionwire.structures.errors import ParameterError
from ionwire.structures.parameters import Material, check_field, to_mapping
from ionwire.structures.statistics import mean_and_error
from ionwire.structures.temperature import arrhenius_fit, check_temperature

MODELS = ("bulk", "continuum")
TOP_KEYS = ("temperatures_K", "replicas", "models", "material", "vacancies", "geometry", "electrodes", "bulk",
            "f0", "continuum", "sweep")
CONTINUUM_KEYS = ("duration_s", "field_V_per_um", "numerics", "transport")
#: the bulk observables fitted (per species or pair name) and the scalar one
BULK_FITTED = ("D_tracer_cm2_per_s", "l_per_s")
BULK_UNITS = {"D_tracer_cm2_per_s": "cm^2/s", "D_vacancy_cm2_per_s": "cm^2/s", "l_per_s": "1/s"}
MAX_TEMPERATURE_K = 5000.0


@dataclass(frozen=True)
class ArrheniusConfig:
    """A validated arrhenius config: the temperatures, the bulk config (kmc.runtypes.BulkConfig,
    its material at the file's temperature) and the continuum config (continuum.experiment.
    ContinuumConfig, calibration off, its sweep the fields +E and -E)."""

    temperatures_K: tuple[float, ...]
    replicas: int
    models: tuple[str, ...]
    bulk: Any
    continuum: Any
    field_V_per_um: float


def load_config(mapping: Mapping[str, Any]) -> ArrheniusConfig:
    """Validate an arrhenius mapping (``run`` key allowed and ignored); ParameterError naming the key."""
    from ionwire.continuum.experiment import load_config as load_continuum
    from ionwire.kmc.runtypes import load_bulk_config

    data = {k: v for k, v in mapping.items() if k != "run"}
    for key in data:
        if key not in TOP_KEYS:
            raise ParameterError(f"unknown key {key} (allowed in an arrhenius config: {', '.join(TOP_KEYS[:-1])})")
    if "sweep" in data:
        raise ParameterError("sweep: an arrhenius config sweeps temperatures_K (and the fields +-continuum."
                             "field_V_per_um); it has no [sweep] table")
    temps = data.get("temperatures_K")
    if not isinstance(temps, (list, tuple)):
        raise ParameterError(f"temperatures_K: expected a list of at least 2 temperatures (K), got {temps!r}")
    temps = tuple(check_temperature(t, f"temperatures_K[{i}]") for i, t in enumerate(temps))
    if len(temps) < 2:
        raise ParameterError(f"temperatures_K: an Arrhenius fit needs at least 2 temperatures, got {len(temps)}")
    if len(set(temps)) != len(temps):
        raise ParameterError(f"temperatures_K: duplicate temperatures in {list(temps)}")
    for i, t in enumerate(temps):
        if t > MAX_TEMPERATURE_K:
            raise ParameterError(f"temperatures_K[{i}] = {t:g} K is implausible (at most {MAX_TEMPERATURE_K:g} K)")
    replicas = data.get("replicas", 4)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 2 <= replicas <= 10_000:
        raise ParameterError(f"replicas: must be an integer in [2, 10000] (the error bars come from independent "
                             f"replicas), got {replicas!r}")
    models = data.get("models", list(MODELS))
    if (not isinstance(models, (list, tuple)) or not models or len(set(models)) != len(models)
            or any(m not in MODELS for m in models)):
        raise ParameterError(f"models: must be a non-empty list of distinct names from {', '.join(MODELS)}, "
                             f"got {models!r}")
    shared = {k: data[k] for k in ("material", "vacancies", "geometry", "electrodes") if k in data}
    bulk_map = {"bulk": data.get("bulk", {})}
    for key in ("material", "f0"):  # f0: the MAA theory beside the kMC l_ab and the continuum transport
        if key in data:
            bulk_map[key] = data[key]
    bulk = load_bulk_config(bulk_map)
    cont = data.get("continuum", {})
    if not isinstance(cont, Mapping):
        raise ParameterError(f"continuum: expected a table, got {cont!r}")
    for key in cont:
        if key not in CONTINUUM_KEYS:
            raise ParameterError(f"unknown key continuum.{key} (allowed in [continuum]: {', '.join(CONTINUUM_KEYS)})")
    field = cont.get("field_V_per_um", 4.0)
    if isinstance(field, bool) or not isinstance(field, (int, float)) or not math.isfinite(field) or field <= 0:
        raise ParameterError(f"continuum.field_V_per_um: must be a field > 0 V/um (the runs are at +E and -E), "
                             f"got {field!r}")
    field = check_field(float(field), "continuum.field_V_per_um")
    cmap = dict(shared, calibration={"enabled": False}, sweep={"field_V_per_um": [field, -field]})
    for key in ("duration_s", "numerics", "transport"):
        if key in cont:
            cmap[key] = cont[key]
    if "f0" in data:
        cmap.setdefault("transport", {})
        cmap["transport"] = dict(cmap["transport"], f0=data["f0"])
    try:
        continuum = load_continuum(cmap)
    except ParameterError as exc:
        msg = str(exc)
        if any(msg.startswith(k) or msg.startswith(f"unknown key {k}") for k in ("duration_s", "numerics", "transport")):
            raise ParameterError(f"continuum.{msg}" if not msg.startswith("unknown") else
                                 msg.replace("unknown key ", "unknown key continuum.")) from None
        raise
    cfg = ArrheniusConfig(temps, replicas, tuple(models), bulk, continuum, field)
    if "continuum" in cfg.models:
        for t in temps:  # every temperature must give a dilute x_V^eq in the device
            c = _continuum_at(cfg, t)
            c.vacancies.equilibrium_fraction(c.material, np.array([0.0, 1.0]))
    return cfg


def _material_at(material: Material, temperature_K: float) -> Material:
    return dataclasses.replace(material, temperature_K=float(temperature_K))


def _continuum_at(cfg: ArrheniusConfig, temperature_K: float):
    c = cfg.continuum
    return c.with_params(material=_material_at(c.material, temperature_K))


def expand(cfg: ArrheniusConfig) -> list[dict]:
    """The runs: the continuum fields +E, -E at every temperature, then the bulk replicas."""
    points = []
    if "continuum" in cfg.models:
        for t in cfg.temperatures_K:
            for e in (cfg.field_V_per_um, -cfg.field_V_per_um):
                points.append({"model": "continuum", "temperature_K": t, "field_V_per_um": e})
    if "bulk" in cfg.models:
        for t in cfg.temperatures_K:
            for r in range(cfg.replicas):
                points.append({"model": "bulk", "temperature_K": t, "replica": r})
    return points


def run(cfg: ArrheniusConfig, point: Mapping[str, Any], outdir) -> dict:
    """One run: a bulk replica or one continuum field at ``point["temperature_K"]``."""
    from ionwire.structures.seeds import point_seed

    t = check_temperature(point["temperature_K"], "temperature_K")
    if point["model"] == "bulk":
        from ionwire.kmc.observables import measure_replica

        settings = cfg.bulk.bulk
        return measure_replica(_material_at(cfg.bulk.material, t), settings, point_seed(settings.seed, point))
    if point["model"] == "continuum":
        from ionwire.continuum.experiment import run_point

        res = run_point(_continuum_at(cfg, t), {"field_V_per_um": float(point["field_V_per_um"])}, outdir)
        res["h5"] = os.path.basename(res["h5"])
        res["temperature_K"] = t
        return res
    raise ParameterError(f"arrhenius point: unknown model {point['model']!r}")


def _fit_or_reason(temps, values, errors, what) -> dict:
    """arrhenius_fit as a dict, or {"not_fitted": reason} where the data cannot be fitted."""
    try:
        return arrhenius_fit(temps, values, errors, what).to_dict()
    except ParameterError as exc:
        return {"not_fitted": str(exc)}


def bulk_table(cfg: ArrheniusConfig, points, results) -> tuple[list[dict], dict]:
    """Per temperature: replica mean and standard error of every bulk observable (and l_ab of
    the Moleko-Allnatt-Allnatt theory where it applies: random_alloy barriers); and the
    Arrhenius fit of each (weighted by the replica errors), with the theory's activation energy
    beside the l_ab fits."""
    from ionwire.kmc.runtypes import _maa_theory

    from ionwire.kmc.observables import fraction_key

    actual = fraction_key(cfg.bulk.material.halides) + "_actual"
    by_t: dict[float, list] = {}
    for p, r in zip(points, results):
        if p["model"] == "bulk":
            by_t.setdefault(float(p["temperature_K"]), []).append(r)
    rows = []
    for t in sorted(by_t):
        rs = by_t[t]
        row = {"temperature_K": t, "replicas": len(rs), "x_v": rs[0]["x_v"], "vacancies": rs[0]["vacancies"],
               actual: rs[0][actual], "events_per_replica": rs[0]["events"]}
        for obs in BULK_FITTED:
            for name in rs[0][obs]:
                vals = [r[obs][name] for r in rs]
                row[f"{obs}.{name}"], row[f"{obs}.{name}_err"] = mean_and_error(vals)
        row["D_vacancy_cm2_per_s"], row["D_vacancy_cm2_per_s_err"] = mean_and_error(
            [r["D_vacancy_cm2_per_s"] for r in rs])
        theory = _maa_theory(cfg.bulk, {"temperature_K": t}, rs[0])
        if theory is not None:
            for name, v in theory.items():
                row[f"l_theory_MAA_per_s.{name}"] = v
        rows.append(row)
    fits = {}
    if rows:
        temps = [r["temperature_K"] for r in rows]
        keys = [k for k in rows[0] if k.startswith(BULK_FITTED) or k == "D_vacancy_cm2_per_s"]
        for key in keys:
            if key.endswith("_err"):
                continue
            vals = [r[key] for r in rows]
            errs = [r[key + "_err"] for r in rows]
            if not all(np.isfinite(vals)) or min(vals) <= 0:
                fits[key] = {"not_fitted": f"{key}: not > 0 at every temperature (absent species or pair)"}
                continue
            fits[key] = _fit_or_reason(temps, vals, errs, key)
            theory = [r.get(key.replace("l_per_s.", "l_theory_MAA_per_s.")) for r in rows]
            if key.startswith("l_per_s.") and "activation_energy_eV" in fits[key] and None not in theory \
                    and min(theory) > 0:
                # the Moleko-Allnatt-Allnatt theory at the same compositions and temperatures
                fits[key]["theory_MAA_activation_energy_eV"] = arrhenius_fit(temps, theory).activation_energy_eV
    return rows, fits


def device_table(cfg: ArrheniusConfig, points, results) -> tuple[list[dict], dict]:
    """Per temperature: L(+E), L(-E) (signed, um; > 0 towards the first halide's segment), the
    ratio L(+E)/|L(-E)|, the front widths, x_V^eq(first halide, T) (``x_v_eq_Br`` for Br, Cl),
    the Debye length and the width
    lambda_D sqrt(2 U / V_T) a fully depleted layer needs to take up the applied voltage U (once
    it is below the gap the vacancies screen the field inside the gap); and unweighted Arrhenius fits of L(+E) and |L(-E)| (deterministic values:
    their error is the residual standard error, a measure of the curvature, not of noise)."""
    e = cfg.field_V_per_um
    by_t: dict[float, dict] = {}
    for p, r in zip(points, results):
        if p["model"] == "continuum":
            by_t.setdefault(float(p["temperature_K"]), {})[float(p["field_V_per_um"])] = r
    from ionwire.continuum.model import scales

    rows = []
    for t in sorted(by_t):
        d = by_t[t]
        lp, lm = d[e]["migration_length_um"], d[-e]["migration_length_um"]
        c = _continuum_at(cfg, t)
        sc = scales(c.params)
        u = c.geometry.applied_voltage_V(e)
        rows.append({"temperature_K": t, "field_V_per_um": e, "L_forward_um": lp, "L_reverse_um": lm,
                     "rectification_ratio": lp / abs(lm) if lm != 0 else None,
                     "front_width_forward_um": d[e].get("front_width_um"),
                     "front_width_reverse_um": d[-e].get("front_width_um"),
                     f"x_v_eq_{c.material.halides[0]}": sc["xref"], "debye_length_um": sc["debye_length_um"],
                     "depletion_width_um": sc["debye_length_um"] * math.sqrt(2.0 * u / sc["thermal_voltage_V"]),
                     "gap_um": c.geometry.gap_um,
                     "wall_s": d[e]["wall_s"] + d[-e]["wall_s"]})
    fits = {}
    if rows:
        temps = [r["temperature_K"] for r in rows]
        for key, vals in (("L_forward_um", [r["L_forward_um"] for r in rows]),
                          ("abs_L_reverse_um", [abs(r["L_reverse_um"]) for r in rows])):
            fits[key] = _fit_or_reason(temps, vals, None, key)
    return rows, fits


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols = list(rows[0]) if rows else []
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c) for c in cols])


def _line(ax, temps, fit, **kw):
    if "activation_energy_eV" not in fit:
        return
    t = np.linspace(min(temps), max(temps), 50)
    from ionwire.structures.units import BOLTZMANN_EV_PER_K

    ax.plot(1000.0 / t, fit["prefactor"] * np.exp(-fit["activation_energy_eV"] / (BOLTZMANN_EV_PER_K * t)), **kw)


def _label(fit) -> str:
    if "activation_energy_eV" not in fit:
        return ""
    err = fit["activation_energy_err_eV"]
    return f"$E_a$ = {fit['activation_energy_eV']:.4f}" + (f" ± {err:.4f}" if err is not None else "") + " eV"


def _finish(fig, path, own):
    if own:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        if own:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return fig


def _two_axes(ax, name):
    """(figure, [left, right] Axes, whether the figure is new) for a two-panel plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(10.4, 4.2))
        return fig, list(axes), True
    axes = list(np.atleast_1d(ax).ravel())
    if len(axes) != 2:
        raise ValueError(f"{name}: needs 2 axes, got {len(axes)}")
    return axes[0].figure, axes, False


def plot_bulk(rows: list[dict], fits: Mapping[str, Any], path=None, ax=None):
    """Arrhenius plot of the bulk kMC: the tracer D of each halide and the vacancy D (left) and
    the positive l_ab (right) against 1000/T, replica means with ±2σ error bars and the fitted
    lines.  ``ax``: two Axes to draw into (None: a new figure); ``path``: PNG written if given.
    Returns the matplotlib Figure."""
    fig, axes, own = _two_axes(ax, "plot_bulk")
    temps = np.array([r["temperature_K"] for r in rows])
    panels = ({"D_tracer_cm2_per_s", "D_vacancy_cm2_per_s"}, {"l_per_s"})
    for panel, wanted in zip(axes, panels):
        k = 0
        for key, fit in fits.items():
            if key.split(".")[0] not in wanted or "activation_energy_eV" not in fit:
                continue
            y = np.array([r[key] for r in rows])
            err = np.array([r[key + "_err"] for r in rows])
            name = key.replace("_cm2_per_s", "").replace("_per_s", "").replace(".", " ")
            panel.errorbar(1000.0 / temps, y, yerr=2 * err, fmt="o", ms=4, capsize=2, color=f"C{k}",
                           label=f"{name} (±2σ): {_label(fit)}")
            _line(panel, temps, fit, color=f"C{k}", lw=1)
            k += 1
        panel.set_yscale("log")
        panel.set_xlabel("1000 / T (1/K)")
    axes[0].set_ylabel("D (cm$^2$/s)")
    axes[1].set_ylabel("$l_{ab}$ (1/s)")
    if rows:
        axes[0].set_title(f"bulk kMC: x_V = {rows[0]['x_v']:.3g}, {rows[0]['replicas']} replicas per T", fontsize=9)
        axes[1].set_title("Onsager coefficients", fontsize=9)
    for panel in axes:
        if panel.get_legend_handles_labels()[0]:
            panel.legend(fontsize=7)
    return _finish(fig, path, own)


def plot_device(rows: list[dict], fits: Mapping[str, Any], path=None, ax=None, halides=("Br", "Cl")):
    """The device (continuum model) against temperature: |L(+E)| and |L(-E)| on an Arrhenius
    plot (filled: towards the first halide's segment, open: away from it) with the fitted lines (left), and
    the rectification ratio L(+E)/|L(-E)| against T (right).  ``ax``: two Axes (None: a new
    figure); ``path``: PNG written if given; ``halides``: the pair (labels).  Returns the
    matplotlib Figure."""
    fig, axes, own = _two_axes(ax, "plot_device")
    temps = np.array([r["temperature_K"] for r in rows])
    e = rows[0]["field_V_per_um"] if rows else float("nan")
    for k, (key, fkey, sign) in enumerate((("L_forward_um", "L_forward_um", "+"),
                                           ("L_reverse_um", "abs_L_reverse_um", "-"))):
        y = np.array([r[key] for r in rows])
        inv = 1000.0 / temps
        axes[0].plot(inv, np.abs(y), "-", color=f"C{k}", lw=0.8)
        axes[0].plot(inv[y > 0], y[y > 0], "o", color=f"C{k}",
                     label=f"L({sign}{e:g} V/µm): {_label(fits.get(fkey, {}))} (apparent)")
        axes[0].plot(inv[y <= 0], -y[y <= 0], "o", mfc="none", color=f"C{k}")
        _line(axes[0], temps, fits.get(fkey, {}), color=f"C{k}", lw=1, ls=":")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("1000 / T (1/K)")
    axes[0].set_ylabel("|migration length| (µm)")
    axes[0].set_title(f"continuum model (filled: towards {halides[0]})", fontsize=9)
    axes[0].legend(fontsize=7)
    ratio = [r["rectification_ratio"] if r["rectification_ratio"] is not None else np.nan for r in rows]
    axes[1].plot(temps, ratio, "o-", color="C2")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("T (K)")
    axes[1].set_ylabel(f"L(+{e:g}) / |L(-{e:g})|")
    axes[1].set_title("rectification ratio", fontsize=9)
    return _finish(fig, path, own)


def reduce(cfg: ArrheniusConfig, points, results, outdir) -> dict:
    """The tables, fits, CSV files and plots of the study (module docstring)."""
    outdir = Path(outdir)
    summary: dict[str, Any] = {"temperatures_K": list(cfg.temperatures_K), "models": list(cfg.models),
                               "units": {**BULK_UNITS, "migration length": "um", "activation_energy_eV": "eV"}}
    parts = []
    if "bulk" in cfg.models:
        rows, fits = bulk_table(cfg, points, results)
        summary["bulk"] = {"table": rows, "fits": fits}
        _write_csv(outdir / "arrhenius_bulk.csv", rows)
        plot_bulk(rows, fits, outdir / "arrhenius_bulk.png")
        summary["bulk"]["figure"] = str(outdir / "arrhenius_bulk.png")
        summary["bulk"]["data"] = str(outdir / "arrhenius_bulk.csv")
        fv = fits.get("D_vacancy_cm2_per_s", {})
        if "activation_energy_eV" in fv:
            parts.append(f"bulk: E_a(D_vacancy) = {fv['activation_energy_eV']:.4f} ± "
                         f"{fv['activation_energy_err_eV']:.4f} eV")
    if "continuum" in cfg.models:
        rows, fits = device_table(cfg, points, results)
        summary["device"] = {"table": rows, "fits": fits}
        _write_csv(outdir / "arrhenius_device.csv", rows)
        plot_device(rows, fits, outdir / "arrhenius_device.png", halides=cfg.continuum.material.halides)
        summary["device"]["figure"] = str(outdir / "arrhenius_device.png")
        summary["device"]["data"] = str(outdir / "arrhenius_device.csv")
        ratios = [r["rectification_ratio"] for r in rows]
        parts.append(f"device: L(+{cfg.field_V_per_um:g}) {rows[0]['L_forward_um']:.3g} -> "
                     f"{rows[-1]['L_forward_um']:.3g} um, ratio {ratios[0] if ratios[0] is None else f'{ratios[0]:.3g}'}"
                     f" -> {ratios[-1] if ratios[-1] is None else f'{ratios[-1]:.3g}'} over "
                     f"{rows[0]['temperature_K']:g}-{rows[-1]['temperature_K']:g} K")
    (outdir / "arrhenius.json").write_text(json.dumps(summary, indent=1, default=float))
    summary["table"] = str(outdir / "arrhenius.json")
    summary["headline"] = "; ".join(parts) + f"; table {outdir / 'arrhenius.json'}"
    return json.loads(json.dumps(summary, default=float))


def fingerprint(cfg: ArrheniusConfig) -> dict:
    """What identifies the runs besides their points (the temperature list and the replica count
    are in the points, so adding a temperature keeps the finished runs)."""
    from ionwire.continuum.experiment import ContinuumRun

    c = ContinuumRun.fingerprint(cfg.continuum)
    c.pop("calibration", None)
    return {"bulk": to_mapping(dataclasses.replace(cfg.bulk, sweep=None)), "continuum": c}


def check_plausible(cfg: ArrheniusConfig, point) -> None:
    """The checks of the bulk and continuum run types, for each run."""
    from ionwire.coupling import campaign

    if point["model"] == "bulk":
        campaign._plausible_bulk(cfg.bulk, {})
    else:
        campaign._plausible_continuum(cfg.continuum, {"field_V_per_um": point["field_V_per_um"]})


class ArrheniusRun:
    """Run type ``arrhenius`` (module docstring): bulk kMC replicas and continuum fields over T."""

    name = "arrhenius"
    load = staticmethod(load_config)
    expand = staticmethod(expand)
    run = staticmethod(run)
    reduce = staticmethod(reduce)
    fingerprint = staticmethod(fingerprint)
    check_plausible = staticmethod(check_plausible)
