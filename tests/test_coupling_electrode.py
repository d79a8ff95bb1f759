"""Electrode-rate estimators and the Poisson fit of the continuum source form."""
from __future__ import annotations

import math

import numpy as np
import pytest

from coupling.electrode_kinetics import fit_annihilation_ratio, fit_creation_rate, poisson_rate


def test_fit_recovers_known_alphas_within_their_errors():
    # synthetic Poisson counts from the source form itself: the fit must recover the truth within
    # 3 standard errors (99.7 %), and its chi2/dof must be ~1
    rng = np.random.default_rng(11)
    a_br, a_cl = 2.0e3, 5.0e1
    E = np.repeat([1.0, 2.0, 4.0, 8.0], 5)
    x = np.tile([0.0, 0.25, 0.5, 0.75, 1.0], 4)
    T = np.full(E.size, 50.0)
    mu = T * E * np.exp((1 - x) * math.log(a_br) + x * math.log(a_cl))
    n = rng.poisson(mu)
    fit = fit_creation_rate(E, x, n, T, fit_exponent=True)
    for key, truth in (("alpha_Br_um_per_V_s", a_br), ("alpha_Cl_um_per_V_s", a_cl)):
        assert abs(fit[key]["value"] - truth) < 3 * fit[key]["error"]
    assert abs(fit["field_exponent"]["value"] - 1.0) < 3 * fit["field_exponent"]["error"]
    assert 0.3 < fit["pearson_chi2_per_dof"] < 2.0
    # a wrong form (rate quadratic in the field) is detected by the exponent and the chi2
    bad = rng.poisson(mu * E)
    f2 = fit_creation_rate(E, x, bad, T, fit_exponent=False)
    assert f2["pearson_chi2_per_dof"] > 5


def test_annihilation_ratio_recovers_detailed_balance():
    rng = np.random.default_rng(5)
    kT = 0.025852
    xeq_br, dEf = 1e-3, 0.12
    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    xeq = xeq_br * np.exp(-dEf * x / kT)
    r_c = np.full(5, 10.0)
    Tv = 1.0e-1 * np.ones(5)
    n = rng.poisson(r_c * (1 - xeq) / xeq * Tv)
    fit = fit_annihilation_ratio(x, n, Tv, r_c, kT)
    assert abs(fit["x_V_eq_Br"]["value"] - xeq_br) < 3 * fit["x_V_eq_Br"]["error"]
    assert abs(fit["formation_energy_difference_eV"]["value"] - dEf) < 3 * fit["formation_energy_difference_eV"]["error"]


def test_poisson_rate_error():
    r, e = poisson_rate([100, 0], [10.0, 10.0])
    assert r.tolist() == [10.0, 0.0]
    assert e[0] == pytest.approx(1.0) and e[1] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        poisson_rate([1], [0.0])
