"""Electrode kinetics measured from device kMC, fitted to the continuum model's source form.

The continuum model's vacancy source on a contact (MODEL.md section 7, continuum.parameters.
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

import math
from dataclasses import dataclass

import numpy as np


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


def fit_creation_rate(field_V_per_um, x_cl, counts, exposure_site_s, fit_exponent: bool = False) -> dict:
    """Fit r_c = alpha(x) |E|^p (ln alpha linear in x) to creation counts; see module doc.

    All arguments float[m].  Returns {"alpha_Br_um_per_V_s", "alpha_Cl_um_per_V_s" (each
    {"value", "error"}), "field_exponent" (if fitted), "pearson_chi2_per_dof", "dof",
    "correlation_Br_Cl"}.  Errors are propagated from the covariance of ln alpha.
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
    out = {
        "alpha_Br_um_per_V_s": {"value": math.exp(v[0]), "error": math.exp(v[0]) * e[0]},
        "alpha_Cl_um_per_V_s": {"value": math.exp(v[1]), "error": math.exp(v[1]) * e[1]},
        "correlation_Br_Cl": float(fit.covariance[0, 1] / (e[0] * e[1])),
        "pearson_chi2_per_dof": fit.pearson_chi2_per_dof,
        "dof": fit.dof,
        "form": "r_c = alpha(x_Cl) |E|" + ("^p" if fit_exponent else "") + ", ln alpha linear in x_Cl",
    }
    if fit_exponent:
        out["field_exponent"] = {"value": float(v[2]), "error": float(e[2])}
    return out


def fit_annihilation_ratio(x_cl, counts_d, exposure_vacancy_site_s, r_c_per_s, kT_eV: float) -> dict:
    """Fit r_d = r_c rho(x) with ln rho = c0 + c1 x to refill counts; see module doc.

    x_cl, counts_d, exposure_vacancy_site_s, r_c_per_s: float[m] (r_c from the creation fit or
    the measured creation rate at the same point).  Returns {"x_V_eq_Br", "formation_energy_
    difference_eV" (each {"value", "error"}), "pearson_chi2_per_dof", "dof"}.
    """
    x = np.asarray(x_cl, dtype=float)
    offset = np.log(np.asarray(exposure_vacancy_site_s, dtype=float)) + np.log(np.asarray(r_c_per_s, dtype=float))
    fit = poisson_regression(np.stack([np.ones_like(x), x], axis=1), offset, counts_d, ("c0", "c1"))
    c0, c1 = fit.values
    e0, e1 = fit.errors
    xeq = 1.0 / (1.0 + math.exp(c0))
    return {
        "x_V_eq_Br": {"value": xeq, "error": xeq * (1 - xeq) * e0},
        "formation_energy_difference_eV": {"value": float(c1 * kT_eV), "error": float(e1 * kT_eV)},
        "pearson_chi2_per_dof": fit.pearson_chi2_per_dof,
        "dof": fit.dof,
        "form": "r_d = r_c (1 - x_V^eq)/x_V^eq, ln x_V^eq linear in x_Cl",
    }
