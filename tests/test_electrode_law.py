"""The electrode rate law is written once (structures.electrode_law): the numba-compiled form in
the continuum kernel, the continuum source terms of a discretised wire and the foundation's
electrode_rates (also behind the kMC rate tables) agree at every composition, field and electrode.

Tolerance: relative 1e-12 (the same arithmetic compiled by numba and run by numpy; they may differ
in the last bits of exp, i.e. a few 1e-16), absolute 1e-300 for rates that are exactly zero."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ionwire.continuum import _kernels as K
from ionwire.continuum.model import Numerics, wire_problem
from ionwire.structures.electrode_law import rate_law
from ionwire.structures.parameters import (DeviceParameters, ParameterError, electrode_rate_law, electrode_rates,
                                           from_mapping)

RTOL = 1e-12
COMPOSITIONS = np.linspace(0.0, 1.0, 21)
FIELDS = (-10.0, -4.0, -0.5, 0.0, 0.5, 2.0, 4.0, 10.0)
VARIANTS = [
    {},
    {"r_d_form": "detailed_balance"},
    {"r_d_form": "zero"},
    {"composition_dependence": "linear", "r_d_form": "detailed_balance"},
    {"negative_electrode": "inert"},
    {"enabled": False},
    {"positive_electrode_factor": 2.5, "negative_electrode_factor": 0.3, "alpha_um_per_V_s": {"Br": 3e-4,
     "Cl": 2e-9}},
]


def _params(electrodes, x_v_br=1e-7 / 3.0):
    return from_mapping(DeviceParameters, {"electrodes": electrodes, "vacancies": {"equilibrium_fraction": {"Br": x_v_br}}})


@pytest.mark.parametrize("electrodes", VARIANTS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "default")
def test_compiled_kernel_law_equals_electrode_rates(electrodes):
    for x_v_br in (1e-7 / 3.0, 1e-3):
        p = _params(electrodes, x_v_br)
        for field, electrode in itertools.product(FIELDS, ("positive", "negative")):
            law = electrode_rate_law(p, field, electrode)
            want_c, want_d = electrode_rates(p, COMPOSITIONS, field, electrode)
            got = np.array([K.rate_law(float(y), *law) for y in COMPOSITIONS])
            np.testing.assert_allclose(got[:, 0], want_c, rtol=RTOL, atol=1e-300)
            np.testing.assert_allclose(got[:, 1], want_d, rtol=RTOL, atol=1e-300)


def test_electrode_rates_are_the_documented_law():
    # the law written out independently, for the default (one-way injection) and detailed balance
    p = _params({"r_d_form": "detailed_balance", "negative_electrode_factor": 0.5})
    el, mat = p.electrodes, p.material
    y = COMPOSITIONS
    alpha = el.alphas_um_per_V_s[0] ** (1 - y) * el.alphas_um_per_V_s[1] ** y
    x_eq = p.vacancies.reference_fraction * np.exp(-(mat.formation_energy_eV[1] - mat.formation_energy_eV[0])
                                                       * y / mat.kT_eV)
    r_c, r_d = electrode_rates(p, y, -3.0, "negative")
    np.testing.assert_allclose(r_c, 0.5 * 3.0 * alpha, rtol=1e-12)
    np.testing.assert_allclose(r_d, r_c * (1 - x_eq) / x_eq, rtol=1e-12)
    one_way = _params({})
    r_c, r_d = electrode_rates(one_way, y, 3.0, "positive")
    np.testing.assert_allclose(r_c, 3.0 * alpha, rtol=1e-12)
    assert np.all(r_d == 0.0)
    # the end members are the paper's alphas at unit field
    assert electrode_rates(one_way, [0.0, 1.0], 1.0, "positive")[0] == pytest.approx(
        [el.alphas_um_per_V_s[0], el.alphas_um_per_V_s[1]], rel=1e-14)
    with pytest.raises(ParameterError, match="electrode"):
        electrode_rate_law(p, 1.0, "cathode")


def test_complex_argument_gives_the_exact_derivative():
    # the kernel differentiates the law by the complex step: d r_c / d y = r_c ln(alpha_Cl/alpha_Br)
    p = _params({"r_d_form": "detailed_balance"})
    law = electrode_rate_law(p, 4.0, "negative")
    h = 1e-30
    for y in (0.0, 0.3, 1.0):
        rc, rd = K.rate_law(complex(y, h), *law)
        r_c = rate_law(y, *law)[0]
        assert rc.imag / h == pytest.approx(r_c * (law.ln_alpha_Cl - law.ln_alpha_Br), rel=1e-12)
        assert math.isfinite(rd.imag)


@pytest.mark.parametrize("electrodes", [{}, {"r_d_form": "detailed_balance", "negative_electrode_factor": 2.0},
                                        {"negative_electrode": "inert"}, {"enabled": False}])
@pytest.mark.parametrize("field", [4.0, -2.0])
def test_wire_sources_follow_electrode_rates_on_each_contact(electrodes, field):
    # the discretised wire puts on every contact node the law of the electrode that contact is at
    # this polarity: its source terms equal S_V, S_Br built from electrode_rates
    p = _params(electrodes)
    prob = wire_problem(p, field, Numerics(n_nodes=60), f0=0.69)
    (l0, l1), (r0, r1) = p.geometry.contacts_um()
    z = prob.mesh.z_um
    xref = prob.xref
    rng = np.random.default_rng(3)
    checked = 0
    for i in np.flatnonzero(prob.src_w > 0):
        side = "left" if z[i] <= l1 + 1e-12 else "right"
        electrode = "positive" if (side == "left") == (field > 0) else "negative"
        v = float(rng.uniform(0.1, 3.0))
        y = float(rng.uniform(0.0, 1.0))
        xv = xref * v
        b = (1 - xv) * (1 - y)
        r_c, r_d = (float(r) for r in electrode_rates(p, y, field, electrode))
        sv, sbr = K.source(v, b, xref, prob.ln_a_br, prob.ln_a_cl, prob.linear_alpha, prob.dEf_kT,
                           prob.rd_on[i], prob.src_fac[i])
        want_v = r_c * (1 - xv) - r_d * xv
        want_b = -r_c * b + r_d * xv * b / (1 - xv)
        scale = r_c + r_d * xv  # S_V is a difference of two terms of this size
        assert sv * xref == pytest.approx(want_v, rel=1e-12, abs=1e-12 * scale + 1e-300)
        assert sbr == pytest.approx(want_b, rel=1e-12, abs=1e-12 * scale + 1e-300)
        checked += 1
    assert checked >= 4
