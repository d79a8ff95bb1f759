"""Electrode kinetics measured from device kMC, fitted to the continuum model's source form.

The continuum model's vacancy source on a contact (docs/model.md section 7, structures.parameters.
Electrodes) is S_V = r_c (1 - x_V) - r_d x_V with

    r_c = alpha(x_Cl) |E|,   ln alpha linear in x_Cl  (log_linear form),
    r_d = r_c (1 - x_V^eq(x_Cl)) / x_V^eq(x_Cl)      (detailed_balance form).

Measurement.  In the device kMC a contact site holding a halide turns into a vacancy (creation)
with rate r_c and a vacant contact site is refilled with rate r_d.  Over a run, the number of
creation events n_c at one electrode is Poisson with mean r_c * T_h, where T_h is the halide
exposure (sum over contact sites of the time each held a halide, site-seconds), and likewise
n_d ~ Poisson(r_d * T_v) with the vacancy exposure T_v.  The maximum-likelihood rate is n / T with
standard error sqrt(n) / T (:func:`poisson_rate`).

Fit (:func:`fit_creation_rate`, :func:`fit_annihilation_ratio`).  A Poisson regression with log
link over all measurements i (field E_i, contact composition x_i, counts n_i, exposures T_i):

    ln E[n_i] = ln T_i + p ln|E_i| + (1 - x_i) ln alpha_Br + x_i ln alpha_Cl

fitted by Newton iteration of the exact likelihood; the parameter covariance is the inverse
Fisher information (asymptotically exact for Poisson counts).  ``p`` (field exponent) is fitted
too when ``fit_exponent``; the source form says p = 1.  For the annihilation rate the ratio
rho = r_d / r_c = (1 - x_V^eq)/x_V^eq is fitted as ln rho = c0 + c1 x, giving
x_V^eq(Br) = 1 / (1 + e^c0) and the formation-energy difference E_f(Cl) - E_f(Br) = c1 kT
(first order in x_V^eq).  A goodness of fit (Pearson chi^2 / dof) is reported with each fit.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ionwire.structures.parameters import DEFAULT_HALIDES, alpha_keys


def poisson_rate(counts, exposure) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood rate n / T and its standard error sqrt(n) / T (arrays, 1/s).

    Zero counts give rate 0 with error 1/T (the 68 % one-sided upper bound is ~1.15/T).
    """
    n = np.asarray(counts, dtype=float)
    t = np.asarray(exposure, dtype=float)
    if np.any(t <= 0):
        raise ValueError("exposures must be positive")
    return n / t, np.sqrt(np.maximum(n, 1.0)) / t


@dataclass(frozen=True)
class PoissonFit:
    """Result of a log-link Poisson regression: ``names``, ``values``, ``covariance``,
    ``pearson_chi2_per_dof`` (about 1 if the form fits), ``dof``."""

    names: tuple[str, ...]
    values: np.ndarray
    covariance: np.ndarray
    pearson_chi2_per_dof: float
    dof: int

    @property
    def errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    def as_dict(self) -> dict:
        return {"parameters": {n: {"value": float(v), "error": float(e)}
                               for n, v, e in zip(self.names, self.values, self.errors)},
                "pearson_chi2_per_dof": self.pearson_chi2_per_dof, "dof": self.dof}


def poisson_regression(design: np.ndarray, offset: np.ndarray, counts: np.ndarray,
                       names: tuple[str, ...], max_iter: int = 100) -> PoissonFit:
    """Fit ln E[n] = offset + design @ beta by Newton-Raphson on the Poisson likelihood.

    design float[m, k], offset float[m], counts float[m] (m >= k).  Raises ValueError if the
    design is singular or the iteration does not converge.
    """
    X = np.asarray(design, dtype=float)
    off = np.asarray(offset, dtype=float)
    n = np.asarray(counts, dtype=float)
    m, k = X.shape
    if m < k:
        raise ValueError(f"{m} measurements cannot determine {k} parameters")
    # start from least squares on log(n + 0.5)
    beta = np.linalg.lstsq(X, np.log(n + 0.5) - off, rcond=None)[0]
    for _ in range(max_iter):
        mu = np.exp(off + X @ beta)
        grad = X.T @ (n - mu)
        info = X.T @ (X * mu[:, None])
        step = np.linalg.solve(info, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise ValueError("Poisson regression did not converge")
    mu = np.exp(off + X @ beta)
    info = X.T @ (X * mu[:, None])
    cov = np.linalg.inv(info)
    dof = m - k
    pearson = float(np.sum((n - mu) ** 2 / mu) / dof) if dof > 0 else float("nan")
    return PoissonFit(tuple(names), beta, cov, pearson, dof)


def fit_creation_rate(field_V_per_um, x_cl, counts, exposure_site_s, fit_exponent: bool = False,
                      halides: tuple[str, str] = DEFAULT_HALIDES) -> dict:
    """Fit r_c = alpha(x) |E|^p (ln alpha linear in x) to creation counts; see module doc.

    All arguments float[m] (``halides``: the pair, for the names).  Returns {"alpha_<A>_um_per_V_s",
    "alpha_<B>_um_per_V_s" (each {"value", "error"}; A, B the halides), "field_exponent" (if fitted),
    "pearson_chi2_per_dof", "dof", "correlation_<A>_<B>"}.  Errors are propagated from the covariance of ln alpha.
    """
    E = np.abs(np.asarray(field_V_per_um, dtype=float))
    x = np.asarray(x_cl, dtype=float)
    cols = [1.0 - x, x]
    names = ("ln_alpha_Br", "ln_alpha_Cl")
    offset = np.log(np.asarray(exposure_site_s, dtype=float))
    if fit_exponent:
        cols.append(np.log(E))
        names += ("field_exponent",)
    else:
        offset = offset + np.log(E)
    fit = poisson_regression(np.stack(cols, axis=1), offset, counts, names)
    v, e = fit.values, fit.errors
    ka, kb = alpha_keys(halides)
    out = {
        ka: {"value": math.exp(v[0]), "error": math.exp(v[0]) * e[0]},
        kb: {"value": math.exp(v[1]), "error": math.exp(v[1]) * e[1]},
        f"correlation_{halides[0]}_{halides[1]}": float(fit.covariance[0, 1] / (e[0] * e[1])),
        "pearson_chi2_per_dof": fit.pearson_chi2_per_dof,
        "dof": fit.dof,
        "form": "r_c = alpha(x_Cl) |E|" + ("^p" if fit_exponent else "") + ", ln alpha linear in x_Cl",
    }
    if fit_exponent:
        out["field_exponent"] = {"value": float(v[2]), "error": float(e[2])}
    return out


def fit_annihilation_ratio(x_cl, counts_d, exposure_vacancy_site_s, r_c_per_s, kT_eV: float,
                           halides: tuple[str, str] = DEFAULT_HALIDES) -> dict:
    """Fit r_d = r_c rho(x) with ln rho = c0 + c1 x to refill counts; see module doc.

    x_cl, counts_d, exposure_vacancy_site_s, r_c_per_s: float[m] (r_c from the creation fit or
    the measured creation rate at the same point).  Returns {"x_V_eq_<A>" (A the first halide), "formation_energy_
    difference_eV" (each {"value", "error"}), "pearson_chi2_per_dof", "dof"}.
    """
    x = np.asarray(x_cl, dtype=float)
    offset = np.log(np.asarray(exposure_vacancy_site_s, dtype=float)) + np.log(np.asarray(r_c_per_s, dtype=float))
    fit = poisson_regression(np.stack([np.ones_like(x), x], axis=1), offset, counts_d, ("c0", "c1"))
    c0, c1 = fit.values
    e0, e1 = fit.errors
    xeq = 1.0 / (1.0 + math.exp(c0))
    return {
        f"x_V_eq_{halides[0]}": {"value": xeq, "error": xeq * (1 - xeq) * e0},
        "formation_energy_difference_eV": {"value": float(c1 * kT_eV), "error": float(e1 * kT_eV)},
        "pearson_chi2_per_dof": fit.pearson_chi2_per_dof,
        "dof": fit.dof,
        "form": f"r_d = r_c (1 - x_V^eq)/x_V^eq, ln x_V^eq linear in x_{halides[1]}",
    }


# --------------------------------------------------------------------------------------------
# measurement with the device kMC
# --------------------------------------------------------------------------------------------
def _alloy_occupancy(n_sites: int, x_cl: float, rng: np.random.Generator) -> np.ndarray:
    """uint8[n_sites]: exactly round(x_cl n) Cl at random sites, Br elsewhere, no vacancies."""
    occ = np.zeros(n_sites, dtype=np.uint8)
    occ[rng.permutation(n_sites)[: int(round(x_cl * n_sites))]] = 1
    return occ


def measure_contact_events(params, nx: int, ny: int, field_V_per_um: float, x_cl: float, seed: int,
                           target_creations: int = 2000, max_conversion: float = 0.05,
                           max_segments: int = 10_000) -> dict:
    """Electrode events of the device kMC on a uniform Br/Cl alloy wire (composition x_cl) at one
    field, with hops frozen (kmc.device [kmc].hops = false) so that the contact sites change only
    by the electrode reactions.

    Each segment starts from a fresh random alloy (exactly round(x_cl n) Cl, no vacancies) and
    runs event by event; between events the state is constant, so the exposures (halide-site-
    seconds and vacancy-site-seconds on each contact) are exact sums.  A segment lasts as long as
    it takes to convert ``max_conversion`` of the positive contact's sites into vacancies (with
    one-way injection there is no refill there, so longer segments would deplete the contact and
    change its composition); segments are repeated until ``target_creations`` creations at the
    positive electrode.  The composition assigned to a contact is that of its halides at the
    start of the segments (creation takes Br and Cl alike, so it stays the same on average).
    Returns {"positive"/"negative": {"created", "annihilated", "halide_exposure_site_s",
    "vacancy_exposure_site_s", "x_cl_contact", "sites", "contact"}, "duration_s", "segments",
    "events", "wall_s", "complete"}.
    """
    import time as _time

    from ionwire.structures.parameters import electrode_rates
    from ionwire.kmc.device import COUNTER_NAMES, DeviceConfig, DeviceSimulation, KMCSettings, OutputSettings

    r_c_pos, _ = electrode_rates(params, x_cl, field_V_per_um, "positive")
    if not float(r_c_pos) > 0:
        raise ValueError("no creation at the positive electrode for these parameters (reactions off or zero field)")
    probe = DeviceConfig(params=params,
                         kmc=KMCSettings(nx=nx, ny=ny, field_V_per_um=field_V_per_um, duration_s=1.0, seed=seed,
                                         hops=False),
                         output=OutputSettings(frame_interval_s=1.0, species=False))
    sim0 = DeviceSimulation(probe, seed=seed)
    contact = sim0.layout.contact
    spp = sim0.layout.sites_per_plane
    side_planes = {1: np.flatnonzero(contact == 1), 2: np.flatnonzero(contact == 2)}
    n_side = {k: int(spp[v].sum()) for k, v in side_planes.items()}
    pos_side = 1 if sim0.layout.electrode_of_side[0] == "positive" else 2
    segment_s = max_conversion / float(r_c_pos)
    exp_h = {1: 0.0, 2: 0.0}
    exp_v = {1: 0.0, 2: 0.0}
    created = {1: 0, 2: 0}
    annihilated = {1: 0, 2: 0}
    x_start = {1: [], 2: []}
    t0_wall = _time.perf_counter()
    events = segments = 0
    total_s = 0.0
    rng = np.random.default_rng(seed)
    idx = {name: i for i, name in enumerate(COUNTER_NAMES)}
    while created[pos_side] < target_creations and segments < max_segments:
        seg_seed = int(rng.integers(0, 2**62))
        sim = DeviceSimulation.from_occupancy(probe, _alloy_occupancy(sim0.lattice.n_sites, x_cl, rng), seed=seg_seed)
        counts = sim.plane_counts()
        for k in (1, 2):
            hal = counts[side_planes[k], :2].sum(axis=0)
            x_start[k].append(hal[1] / hal.sum())
        while sim.time_s < segment_s:
            counts = sim.plane_counts()
            nv = {k: int(counts[v, 2].sum()) for k, v in side_planes.items()}
            t0 = sim.time_s
            sim.advance(segment_s, max_events=1)
            dt = sim.time_s - t0
            for k in (1, 2):
                exp_v[k] += nv[k] * dt
                exp_h[k] += (n_side[k] - nv[k]) * dt
            events += 1
        for k, side in ((1, "left"), (2, "right")):
            created[k] += int(sim.counters[idx[f"created_{side}"]])
            annihilated[k] += int(sim.counters[idx[f"annihilated_{side}"]])
        total_s += sim.time_s
        segments += 1
    out = {"duration_s": total_s, "segments": segments, "events": events,
           "wall_s": _time.perf_counter() - t0_wall, "field_V_per_um": float(field_V_per_um),
           "x_cl": float(x_cl), "seed": int(seed), "complete": created[pos_side] >= target_creations}
    for k, side in ((1, "left"), (2, "right")):
        out[sim0.layout.electrode_of_side[k - 1]] = {
            "contact": side, "created": created[k], "annihilated": annihilated[k],
            "halide_exposure_site_s": exp_h[k], "vacancy_exposure_site_s": exp_v[k],
            "x_cl_contact": float(np.mean(x_start[k])), "sites": n_side[k],
            "plane_sites": spp[side_planes[k]].astype(int).tolist()}
    return out


def plane_fluctuation_factor(alpha_of_x, x_cl: float, plane_sites) -> float:
    """<alpha(x_p)> / alpha(x) for a contact whose planes (sizes plane_sites) hold binomially
    distributed compositions x_p around x (a random alloy).

    The device kMC evaluates the rate law with each anion plane's own halide composition; for a
    convex law (log-linear in x_Cl) the plane-to-plane fluctuations of a random alloy raise the mean
    rate above the law at the mean composition by about exp(k^2 x (1-x) / (2 n)), k = ln(alpha_Br/
    alpha_Cl), n sites per plane: 2-3 % for 8 x 8 cells, 7 % for 4 x 4 at x = 0.5, nothing at the
    end members.  The continuum model (one composition per point) has no such term.
    """
    from scipy.stats import binom

    sizes = np.asarray(plane_sites, dtype=int)
    num = 0.0
    for n in sizes:
        k = np.arange(n + 1)
        num += n * float(np.sum(binom.pmf(k, n, x_cl) * alpha_of_x(k / n)))
    return num / (float(sizes.sum()) * float(alpha_of_x(np.asarray(x_cl))))


def measure_and_fit(params, nx: int, ny: int, fields_V_per_um, compositions, seed: int = 1,
                    target_creations: int = 2000) -> dict:
    """Electrode kinetics from the device kMC against field and composition, fitted to the
    continuum model's source form (see the module docstring).

    Returns {"measurements": [...], "positive_creation": fit, "negative_creation": fit,
    "negative_annihilation": fit, "positive_annihilation": {...}, "parameters": the values of the
    shared parameter object for comparison, "z_scores": fitted - parameter in standard errors}.
    """
    from ionwire.structures.seeds import derive_seed

    meas = []
    points = [(float(E), float(x)) for E in fields_V_per_um for x in compositions]
    for i, (E, x) in enumerate(points):
        meas.append(measure_contact_events(params, nx, ny, E, x, derive_seed(seed, i), target_creations))
    out: dict = {"measurements": meas}
    el = params.electrodes
    kT = params.material.kT_eV
    ka_kb = alpha_keys(params.halides)
    xeq_key = f"x_V_eq_{params.halides[0]}"
    for electrode in ("positive", "negative"):
        E = np.array([m["field_V_per_um"] for m in meas])
        x = np.array([m[electrode]["x_cl_contact"] for m in meas])
        n_c = np.array([m[electrode]["created"] for m in meas])
        T_h = np.array([m[electrode]["halide_exposure_site_s"] for m in meas])
        if n_c.sum() == 0 or len({m["x_cl"] for m in meas}) < 2 or len(set(E.tolist())) < 2:
            out[f"{electrode}_creation"] = None  # the form needs >= 2 compositions and fields
            out[f"{electrode}_annihilation"] = None
            continue
        fit = fit_creation_rate(E, x, n_c, T_h, fit_exponent=True, halides=params.halides)
        fit1 = fit_creation_rate(E, x, n_c, T_h, fit_exponent=False, halides=params.halides)
        out[f"{electrode}_creation"] = {"with_field_exponent": fit, "linear_in_field": fit1}
        n_d = np.array([m[electrode]["annihilated"] for m in meas])
        T_v = np.array([m[electrode]["vacancy_exposure_site_s"] for m in meas])
        if n_d.sum() > 0:
            # r_c of the fitted creation law (log-linear, as fitted) at each point
            fitted = dataclasses.replace(el, alphas_um_per_V_s=tuple(fit1[k]["value"] for k in ka_kb),
                                         composition_dependence="log_linear")
            r_c = fitted.alpha_um_per_V_s(x) * np.abs(E)
            out[f"{electrode}_annihilation"] = fit_annihilation_ratio(x, n_d, T_v, r_c, kT, params.halides)
        else:
            out[f"{electrode}_annihilation"] = {"annihilated": 0, "vacancy_exposure_site_s": float(T_v.sum()),
                                                "r_d_upper_95_per_s": (3.0 / T_v.sum()) if T_v.sum() > 0 else None,
                                                "form": "r_d = 0 (one-way injection)"}
    par = {**dict(zip(ka_kb, el.alphas_um_per_V_s)),
           xeq_key: params.vacancies.reference_fraction,
           "formation_energy_difference_eV": params.material.formation_energy_eV[1] - params.material.formation_energy_eV[0],
           "r_d_form": el.r_d_form, "negative_electrode_factor": el.negative_electrode_factor}
    out["parameters"] = par
    z = {}
    for electrode in ("positive", "negative"):
        c = out.get(f"{electrode}_creation")
        if c:
            f = c["linear_in_field"]
            fac = el.positive_electrode_factor if electrode == "positive" else el.negative_electrode_factor
            for k in ka_kb:
                z[f"{electrode}_{k}"] = (f[k]["value"] - fac * par[k]) / f[k]["error"]
            p = c["with_field_exponent"]["field_exponent"]
            z[f"{electrode}_field_exponent"] = (p["value"] - 1.0) / p["error"]
        a = out.get(f"{electrode}_annihilation")
        if a and xeq_key in a:
            for k in (xeq_key, "formation_energy_difference_eV"):
                z[f"{electrode}_{k}"] = (a[k]["value"] - par[k]) / a[k]["error"]
    out["z_scores"] = z
    # per point: measured rate / rate law at the mean composition, and the plane-fluctuation
    # factor that the kMC's per-plane rate evaluation predicts for it
    from ionwire.structures.parameters import electrode_rates

    law = params.electrodes.alpha_um_per_V_s
    for m in meas:
        for electrode in ("positive", "negative"):
            d = m[electrode]
            if d["created"] > 0 and d["halide_exposure_site_s"] > 0:
                expect = float(electrode_rates(params, d["x_cl_contact"], m["field_V_per_um"], electrode)[0])
                rate, err = poisson_rate(d["created"], d["halide_exposure_site_s"])
                d["rate_over_law"] = float(rate / expect)
                d["rate_over_law_error"] = float(err / expect)
                d["plane_fluctuation_factor"] = plane_fluctuation_factor(law, d["x_cl_contact"], d["plane_sites"])
    return out
