"""Electrode-rate estimators and the Poisson fit of the continuum source form."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ionwire.coupling.electrode_kinetics import fit_annihilation_ratio, fit_creation_rate, poisson_rate


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


def test_device_kmc_electrode_rates_fit_the_continuum_source_form():
    # the device kMC's reaction events, counted against exact exposures, give back the rate law
    # of the shared parameter object: every fitted parameter within 4 standard errors (the
    # probability that one of ~8 correct values falls outside is < 1e-3), field exponent 1
    import tomllib
    from pathlib import Path

    from ionwire.coupling.compare import load_config
    from ionwire.coupling.electrode_kinetics import measure_and_fit

    cfg = load_config(tomllib.loads((Path(__file__).resolve().parent.parent / "runs" / "validate.toml").read_text()))
    res = measure_and_fit(cfg.params, 4, 4, [1.0, 4.0], [0.0, 1.0], seed=11, target_creations=1500)
    assert all(m["complete"] for m in res["measurements"])
    z = res["z_scores"]
    assert {"positive_alpha_Br_um_per_V_s", "negative_x_V_eq_Br", "positive_field_exponent"} <= set(z)
    assert all(abs(v) < 4 for v in z.values()), z
    fit = res["positive_creation"]["with_field_exponent"]["field_exponent"]
    assert fit["error"] < 0.05
    # one-way injection at the positive electrode (r_d_form = irreversible_at_positive)
    assert res["positive_annihilation"]["annihilated"] == 0


def test_intermediate_composition_shows_the_plane_fluctuation_excess():
    # at x_Cl = 0.5 the kMC evaluates the log-linear law on each plane's own composition: the mean
    # rate exceeds the law at the mean composition by the predicted binomial factor (~7 % for
    # 4 x 4 cells); measured within 3 sigma of that factor and > 3 sigma away from 1
    import tomllib
    from pathlib import Path

    from ionwire.coupling.compare import load_config
    from ionwire.coupling.electrode_kinetics import measure_and_fit

    cfg = load_config(tomllib.loads((Path(__file__).resolve().parent.parent / "runs" / "validate.toml").read_text()))
    res = measure_and_fit(cfg.params, 4, 4, [4.0, 8.0], [0.5], seed=12, target_creations=2500)
    # pool both fields and both electrodes (same law, same composition)
    ratios, errs, facs = [], [], []
    for m in res["measurements"]:
        for el in ("positive", "negative"):
            ratios.append(m[el]["rate_over_law"])
            errs.append(m[el]["rate_over_law_error"])
            facs.append(m[el]["plane_fluctuation_factor"])
    w = 1 / np.square(errs)
    mean = float(np.sum(w * ratios) / np.sum(w))
    err = float(1 / np.sqrt(np.sum(w)))
    fac = float(np.mean(facs))
    assert 1.04 < fac < 1.12
    assert abs(mean - fac) < 3 * err, (mean, fac, err)
    assert mean - 1.0 > 3 * err, (mean, err)
