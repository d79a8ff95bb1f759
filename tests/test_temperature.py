"""x_V^eq(T) (structures.temperature, Vacancies.equilibrium_fraction) against its documented form
(docs/model.md section 21), the reference temperature reproducing the anchored values bit for
bit, the hop rates' temperature law, and the Arrhenius fit against exact and synthetic data."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from ionwire.structures.errors import ParameterError
from ionwire.structures.parameters import (DeviceParameters, Material, Vacancies, electrode_rate_law,
                                           from_mapping)
from ionwire.structures.temperature import arrhenius_fit, temperature_factor
from ionwire.structures.units import BOLTZMANN_EV_PER_K

X = np.array([0.0, 0.25, 0.5, 1.0])


def _at(material: Material, T: float) -> Material:
    return dataclasses.replace(material, temperature_K=T)


def test_reference_temperature_reproduces_the_anchored_values_bit_for_bit():
    p = DeviceParameters()
    m, v = p.material, p.vacancies
    assert m.temperature_K == v.reference_temperature_K == 300.0
    # the form without a temperature factor (the composition factor alone), element by element
    assert np.array_equal(v.equilibrium_fraction(m, X), v.reference_fraction * m.vacancy_fraction_ratio(X))
    assert float(v.equilibrium_fraction(m, 0.0)) == 1e-7 / 3.0
    # anchored at another reference temperature: the anchor holds there, bit for bit
    v400 = Vacancies(reference_fraction=1e-5, reference_temperature_K=400.0)
    m400 = _at(m, 400.0)
    assert float(v400.equilibrium_fraction(m400, 0.0)) == 1e-5
    assert temperature_factor(1.32, 400.0, 400.0) == 1.0
    # the electrode law and the continuum scale take the same value
    law = electrode_rate_law(p, 4.0, "negative")
    assert law.x_eq_Br == v.reference_fraction


@pytest.mark.parametrize("T", [250.0, 280.0, 320.0, 360.0])
def test_equilibrium_fraction_follows_the_formation_energy(T):
    m = _at(Material(), T)
    v = DeviceParameters().vacancies
    k = BOLTZMANN_EV_PER_K
    ef_br, ef_cl = m.formation_energy_eV
    expected = (v.reference_fraction * np.exp(-(ef_br / k) * (1.0 / T - 1.0 / 300.0))
                * np.exp(-(ef_cl - ef_br) * X / (k * T)))
    got = v.equilibrium_fraction(m, X)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)
    # the same form is x = A exp(-E_f(x_Cl) / kT) with A independent of T: between two
    # temperatures, ln(x1 / x2) = -E_f(x_Cl) (1/kT1 - 1/kT2) at every composition
    m2 = _at(Material(), 300.0)
    ef = ef_br + (ef_cl - ef_br) * X
    np.testing.assert_allclose(np.log(got / v.equilibrium_fraction(m2, X)),
                               -ef * (1.0 / (k * T) - 1.0 / (k * 300.0)), rtol=1e-10)
    # hotter -> more vacancies, by the documented factor
    assert (got[0] > 1e-7 / 3.0) == (T > 300.0)


def test_follows_temperature_false_keeps_the_reference_value():
    v = dataclasses.replace(DeviceParameters().vacancies, follows_temperature=False)
    m = _at(Material(), 350.0)
    assert float(v.equilibrium_fraction(m, 0.0)) == v.reference_fraction
    # the composition factor still uses kT of the material's temperature
    assert float(v.equilibrium_fraction(m, 1.0)) == pytest.approx(
        v.reference_fraction * math.exp(-0.12 / (BOLTZMANN_EV_PER_K * 350.0)), rel=1e-12)


def test_temperature_reaches_the_continuum_scale_and_the_electrode_law():
    from ionwire.continuum.model import scales

    p = DeviceParameters()
    hot = dataclasses.replace(p, material=_at(p.material, 320.0))
    xeq = float(hot.vacancies.equilibrium_fraction(hot.material, 0.0))
    assert xeq == pytest.approx(p.vacancies.reference_fraction * temperature_factor(1.32, 320.0, 300.0))
    assert scales(hot)["xref"] == xeq
    assert electrode_rate_law(hot, -4.0, "negative").x_eq_Br == xeq
    # the Debye length shrinks as 1/sqrt(x_V^eq / kT)
    ratio = scales(hot)["debye_length_um"] / scales(p)["debye_length_um"]
    assert ratio == pytest.approx(math.sqrt((320.0 / 300.0) * p.vacancies.reference_fraction / xeq), rel=1e-12)


def test_hop_rates_follow_the_temperature():
    m1, m2 = _at(Material(), 300.0), _at(Material(), 400.0)
    for name, e in (("Br", 0.25), ("Cl", 0.29)):
        w1, w2 = m1.jump_frequencies_per_s()[name], m2.jump_frequencies_per_s()[name]
        assert math.log(w1 / w2) == pytest.approx(-e / BOLTZMANN_EV_PER_K * (1 / 300.0 - 1 / 400.0), rel=1e-12)


@pytest.mark.parametrize("table, key", [
    ({"vacancies": {"reference_temperature_K": 0.0}}, "vacancies.reference_temperature_K"),
    ({"vacancies": {"reference_temperature_K": -10.0}}, "vacancies.reference_temperature_K"),
    ({"material": {"temperature_K": 0.0}}, "material.temperature_K"),
    ({"material": {"temperature_K": -300.0}}, "material.temperature_K"),
])
def test_bad_temperatures_give_one_clear_error(table, key):
    with pytest.raises(ParameterError) as exc:
        from_mapping(DeviceParameters, table)
    assert key in str(exc.value)


def test_a_vacancy_fraction_beyond_one_is_refused():
    v = Vacancies(reference_fraction=1e-3)
    with pytest.raises(ParameterError, match="not a site fraction below 1"):
        v.equilibrium_fraction(_at(Material(), 900.0), 0.0)


def test_arrhenius_fit_recovers_an_exact_law():
    T = np.array([250.0, 300.0, 350.0, 400.0])
    y = 3e-3 * np.exp(-0.31 / (BOLTZMANN_EV_PER_K * T))
    fit = arrhenius_fit(T, y, 0.01 * y)
    assert fit.activation_energy_eV == pytest.approx(0.31, rel=1e-10)
    assert fit.prefactor == pytest.approx(3e-3, rel=1e-9)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-12) and fit.dof == 2
    # the standard error of the slope of a weighted straight line, sigma_i = 0.01 for all points
    x = 1.0 / (BOLTZMANN_EV_PER_K * T)
    assert fit.activation_energy_err_eV == pytest.approx(0.01 / math.sqrt(((x - x.mean()) ** 2).sum()), rel=1e-9)
    plain = arrhenius_fit(T, y)
    assert plain.activation_energy_eV == pytest.approx(0.31, rel=1e-10) and not plain.weighted


def test_arrhenius_fit_error_has_its_stated_coverage():
    """Synthetic data with known Gaussian errors of ln y: the true activation energy must lie
    within one stated standard error in 68.3 % of 4000 fits (binomial sd 0.74 %: +-3 %)."""
    rng = np.random.default_rng(7)
    T = np.array([260.0, 280.0, 300.0, 320.0, 340.0, 360.0])
    truth = 1e-5 * np.exp(-0.25 / (BOLTZMANN_EV_PER_K * T))
    sigma = np.array([0.02, 0.05, 0.03, 0.08, 0.04, 0.02])
    hits = 0
    n = 4000
    for _ in range(n):
        y = truth * np.exp(sigma * rng.standard_normal(T.size))
        fit = arrhenius_fit(T, y, sigma * y)
        hits += abs(fit.activation_energy_eV - 0.25) < fit.activation_energy_err_eV
    assert abs(hits / n - 0.6827) < 0.03, hits / n


@pytest.mark.parametrize("T, y, err, match", [
    ([300.0], [1.0], None, "at least 2 temperatures"),
    ([], [], None, "at least 2 temperatures"),
    ([0.0, 300.0], [1.0, 2.0], None, "temperature > 0 K"),
    ([-100.0, 300.0], [1.0, 2.0], None, "temperature > 0 K"),
    ([300.0, 300.0], [1.0, 2.0], None, "distinct"),
    ([250.0, 300.0], [1.0, -2.0], None, "values > 0"),
    ([250.0, 300.0], [1.0, 2.0], [0.1, 0.0], "errors"),
    ([250.0, 300.0, 350.0], [1.0, 2.0], None, "2 values for 3 temperatures"),
])
def test_arrhenius_fit_bad_input(T, y, err, match):
    with pytest.raises(ParameterError, match=match):
        arrhenius_fit(T, y, err, what="D")
