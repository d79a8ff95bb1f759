"""Temperature dependence of the equilibrium vacancy fraction and Arrhenius fits (docs/model.md
section 21).

x_V^eq follows the temperature through the formation energy of one anion vacancy, anchored at a
reference value x_ref of the first halide's end member at a reference temperature T_ref::

    x_V^eq(x_Cl, T) = x_ref * exp( -(E_f,Br / k_B) (1/T - 1/T_ref) )
                            * exp( -(E_f,Cl - E_f,Br) x_Cl / k_B T )

i.e. x_V^eq = A exp(-E_f(x_Cl) / k_B T) with E_f linear in x_Cl and a temperature-independent
prefactor A = x_ref exp(E_f,Br / k_B T_ref) (a constant formation entropy).  The second factor is
``Material.vacancy_fraction_ratio``; :func:`temperature_factor` is the first.  At T = T_ref the
factor is exactly 1.0, so the reference temperature reproduces the anchored values bit for bit.

:func:`arrhenius_fit` is the weighted least-squares fit of ln y against 1/T that reads an
activation energy out of a temperature sweep (y = D, l_ab, a migration length, ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ParameterError
from .units import BOLTZMANN_EV_PER_K


def check_temperature(value, where: str = "temperature_K") -> float:
    """A finite temperature > 0 K as a float; ParameterError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ParameterError(f"{where} must be a temperature > 0 K, got {value!r}")
    return float(value)


def temperature_factor(formation_energy_eV: float, temperature_K: float, reference_temperature_K: float) -> float:
    """exp(-(E_f / k_B) (1/T - 1/T_ref)): x_V^eq(T) / x_V^eq(T_ref) at fixed composition for a
    vacancy of formation energy E_f (eV).  Exactly 1.0 at T = T_ref."""
    T = check_temperature(temperature_K, "temperature_K")
    T_ref = check_temperature(reference_temperature_K, "reference_temperature_K")
    if T == T_ref:
        return 1.0
    return math.exp(-(formation_energy_eV / BOLTZMANN_EV_PER_K) * (1.0 / T - 1.0 / T_ref))


@dataclass(frozen=True)
class ArrheniusFit:
    """ln y = ln y0 - E_a / (k_B T), fitted over the temperatures of a sweep.

    activation_energy_eV and its standard error activation_energy_err_eV (from the covariance of
    the weighted fit with the given absolute errors, not rescaled by chi^2; None for an
    unweighted fit, where the error is the residual-based one, see ``weighted``); prefactor y0
    (units of y) and the standard error of ln y0; chi2 (weighted: sum of squared normalised
    residuals; unweighted: sum of squared residuals of ln y), dof = n - 2."""

    activation_energy_eV: float
    activation_energy_err_eV: float | None
    prefactor: float
    ln_prefactor_err: float | None
    chi2: float
    dof: int
    n: int
    weighted: bool

    def to_dict(self) -> dict:
        return {"activation_energy_eV": self.activation_energy_eV,
                "activation_energy_err_eV": self.activation_energy_err_eV,
                "prefactor": self.prefactor, "ln_prefactor_err": self.ln_prefactor_err,
                "chi2": self.chi2, "dof": self.dof, "n": self.n, "weighted": self.weighted,
                "chi2_per_dof": self.chi2 / self.dof if self.dof > 0 else None}


def arrhenius_fit(temperatures_K: Sequence[float], values: Sequence[float],
                  errors: Sequence[float] | None = None, what: str = "values") -> ArrheniusFit:
    """Least-squares fit of ln(values) against 1/T.

    temperatures_K: >= 2 distinct temperatures > 0 K; values: > 0, same length; errors: the
    standard errors of ``values`` (> 0; e.g. from independent replicas), propagated to ln y as
    err / y and used as weights 1 / sigma^2; the parameter errors are then those of the weighted
    fit with these absolute errors.  errors = None: an ordinary (unweighted) fit whose
    activation-energy error is the residual standard error (None with only 2 temperatures).
    A negative slope of ln y against 1/T is a positive activation energy.
    ParameterError (naming ``what``) for fewer than 2 temperatures, repeated temperatures,
    non-positive values or errors, or mismatched lengths."""
    T = np.asarray(temperatures_K, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if T.size < 2:
        raise ParameterError(f"{what}: an Arrhenius fit needs at least 2 temperatures, got {T.size}")
    for i, t in enumerate(T):
        check_temperature(float(t), f"{what}: temperature_K[{i}]")
    if len(set(T.tolist())) != T.size:
        raise ParameterError(f"{what}: the temperatures of an Arrhenius fit must be distinct, got {T.tolist()}")
    if y.size != T.size:
        raise ParameterError(f"{what}: {y.size} values for {T.size} temperatures")
    if not np.all(np.isfinite(y)) or np.any(y <= 0.0):
        raise ParameterError(f"{what}: an Arrhenius fit needs finite values > 0, got {y.tolist()}")
    x = 1.0 / (BOLTZMANN_EV_PER_K * T)  # 1/kT in 1/eV: the slope of ln y is -E_a
    ly = np.log(y)
    A = np.stack([np.ones_like(x), -x], axis=1)  # ln y = ln y0 - E_a x
    dof = T.size - 2
    if errors is not None:
        e = np.asarray(errors, dtype=float).ravel()
        if e.size != T.size:
            raise ParameterError(f"{what}: {e.size} errors for {T.size} temperatures")
        if not np.all(np.isfinite(e)) or np.any(e <= 0.0):
            raise ParameterError(f"{what}: the errors of an Arrhenius fit must be finite and > 0, got {e.tolist()}")
        sigma = e / y
        Aw = A / sigma[:, None]
        cov = np.linalg.inv(Aw.T @ Aw)
        coef = cov @ (Aw.T @ (ly / sigma))
        res = (ly - A @ coef) / sigma
        chi2 = float(res @ res)
        return ArrheniusFit(float(coef[1]), float(math.sqrt(cov[1, 1])), float(math.exp(coef[0])),
                            float(math.sqrt(cov[0, 0])), chi2, dof, int(T.size), True)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    res = ly - A @ coef
    chi2 = float(res @ res)
    if dof > 0:
        cov = np.linalg.inv(A.T @ A) * (chi2 / dof)
        ea_err, lp_err = float(math.sqrt(cov[1, 1])), float(math.sqrt(cov[0, 0]))
    else:
        ea_err = lp_err = None
    return ArrheniusFit(float(coef[1]), ea_err, float(math.exp(coef[0])), lp_err, chi2, dof, int(T.size), False)
