"""Shared device parameters (structures.parameters) and electrode rates."""
import math

import numpy as np
import pytest

from ionwire.continuum import _kernels as K
from ionwire.structures.onsager import onsager_coefficients
from ionwire.structures.parameters import (DeviceParameters, ParameterError, electrode_rates, from_mapping)
from ionwire.continuum.transport import maa_table, table_from_callable


@pytest.mark.parametrize("table, key", [
    ({"geometry": {"wire_length_um": -1.0}}, "geometry.wire_length_um"),
    ({"geometry": {"contact_width_um": 0.0}}, "geometry.contact_width_um"),
    ({"geometry": {"gap_um": 9.0}}, "geometry.wire_length_um"),
    ({"geometry": {"junction_position_um": 1.0}}, "geometry.junction_position_um"),
    ({"geometry": {"potential_imposed_at": "middle"}}, "geometry.potential_imposed_at"),
    ({"vacancies": {"equilibrium_fraction": {"Br": 0.0}}}, "vacancies.equilibrium_fraction"),
    ({"vacancies": {"equilibrium_fraction": {"Br": 1.0}}}, "vacancies.equilibrium_fraction"),
    ({"vacancies": {"equilibrium_fraction": {"Br": -1e-7}}}, "vacancies.equilibrium_fraction"),
    ({"electrodes": {"alpha_um_per_V_s": {"Br": -1e-5, "Cl": 1e-7}}}, "electrodes.alpha_um_per_V_s"),
    ({"electrodes": {"r_d_form": "magic"}}, "electrodes.r_d_form"),
    ({"electrodes": {"speed": 1.0}}, "electrodes.speed"),
    ({"geometry": {"gap_um": "5"}}, "geometry.gap_um"),
    ({"wire": {}}, "wire"),
])
def test_bad_values_name_the_key(table, key):
    with pytest.raises(ParameterError) as exc:
        from_mapping(DeviceParameters, table)
    assert key in str(exc.value)


def test_geometry_defaults_and_imposed_positions():
    p = DeviceParameters()
    g = p.geometry
    (l0, l1), (r0, r1) = g.contacts_um()
    assert (l0, l1, r0, r1) == (1.0, 2.5, 7.5, 9.0)
    assert g.imposed_positions_um() == (1.0, 9.0)
    assert from_mapping(DeviceParameters, {"geometry": {"potential_imposed_at": "inner"}}).geometry.imposed_positions_um() == (2.5, 7.5)
    assert g.applied_voltage_V(4.0) == pytest.approx(32.0)
    assert g.junction_um == 5.0


def test_electrode_rates_forms():
    p = DeviceParameters()
    el = p.electrodes
    xeq_br = p.vacancies.reference_fraction
    # positive electrode, pure Br, default one-way injection there
    rc, rd = electrode_rates(p, 0.0, 4.0, "positive")
    assert rc == pytest.approx(el.alphas_um_per_V_s[0] * 4.0, rel=1e-12) and rd == 0.0
    # negative electrode: detailed balance, a contact at x_V^eq is at rest
    for x in (0.0, 0.3, 1.0):
        rc, rd = electrode_rates(p, x, -2.0, "negative")
        xeq = p.vacancies.equilibrium_fraction(p.material, x)
        assert rc * (1 - xeq) - rd * xeq == pytest.approx(0.0, abs=1e-12 * rc)
    # log-linear alpha between the end members
    rc_half, _ = electrode_rates(p, 0.5, 1.0, "negative")
    assert rc_half == pytest.approx(math.sqrt(el.alphas_um_per_V_s[0] * el.alphas_um_per_V_s[1]), rel=1e-12)
    # linear in |field|, zero at zero field
    assert electrode_rates(p, 0.2, 3.0, "negative")[0] == pytest.approx(3 * electrode_rates(p, 0.2, 1.0, "negative")[0])
    assert electrode_rates(p, 0.2, 0.0, "positive")[0] == 0.0
    # detailed balance at both electrodes, factors, disabled, inert
    db = from_mapping(DeviceParameters, {"electrodes": {"r_d_form": "detailed_balance", "positive_electrode_factor": 2.0}})
    rc, rd = electrode_rates(db, 0.0, 1.0, "positive")
    assert rc == pytest.approx(2 * db.electrodes.alphas_um_per_V_s[0]) and rd == pytest.approx(rc * (1 - xeq_br) / xeq_br)
    off = from_mapping(DeviceParameters, {"electrodes": {"enabled": False}})
    assert electrode_rates(off, 0.0, 4.0, "positive") == (0.0, 0.0)
    inert = from_mapping(DeviceParameters, {"electrodes": {"negative_electrode": "inert"}})
    assert electrode_rates(inert, 0.0, 4.0, "negative") == (0.0, 0.0)
    arr = electrode_rates(p, np.array([0.0, 0.5, 1.0]), 1.0, "negative")
    assert arr[0].shape == (3,) and np.all(np.diff(arr[0]) < 0)
    with pytest.raises(ParameterError, match="electrode"):
        electrode_rates(p, 0.0, 1.0, "left")


@pytest.mark.parametrize("form", ["detailed_balance", "zero", "equal_rates"])
def test_kernel_source_matches_electrode_rates(form):
    """The numba source term uses the same rate law as the shared electrode_rates()."""
    p = from_mapping(DeviceParameters, {"electrodes": {"r_d_form": form}})
    xref = p.vacancies.reference_fraction
    mat = p.material
    dEf = (mat.formation_energy_eV[1] - mat.formation_energy_eV[0]) / mat.kT_eV
    for y_cl, v in ((0.0, 0.3), (0.4, 2.0), (1.0, 0.01)):
        xv = xref * v
        b = (1 - xv) * (1 - y_cl)
        rc, rd = electrode_rates(p, y_cl, 2.5, "negative")
        sv, sbr = K.source(v, b, xref, math.log(p.electrodes.alphas_um_per_V_s[0]),
                              math.log(p.electrodes.alphas_um_per_V_s[1]), False, dEf,
                              {"zero": 0.0, "detailed_balance": 1.0, "equal_rates": -1.0}[form], 2.5)
        assert sv * xref == pytest.approx(rc * (1 - xv) - rd * xv, rel=1e-9, abs=1e-30)
        assert sbr == pytest.approx(-rc * b + rd * xv * b / (1 - xv), rel=1e-9, abs=1e-30)


def test_reduced_maa_table_matches_theory():
    w_br, w_cl, f0 = 6.3e8, 1.3e8, 0.69
    tab = maa_table(w_br, w_cl, f0)
    x = np.array([0.1, 0.37, 0.5, 0.93])
    lbb, lbc, lcc = tab.l_per_s(x)
    ref = onsager_coefficients(1 - x, x, 0.0, w_br, w_cl, f0)
    for got, want in zip((lbb, lbc, lcc), ref):
        np.testing.assert_allclose(got, want, rtol=2e-6)
    # a callable table (what coupling passes) round-trips through the normalisation
    tab2 = table_from_callable(lambda xq: onsager_coefficients(1 - xq, xq, 0.0, w_br, w_cl, f0))
    np.testing.assert_allclose(tab2.abd_per_s[1:-1], tab.abd_per_s[1:-1], rtol=1e-9)
    # equal jump frequencies: l_BrBr + 2 l_BrCl + l_ClCl = w (docs/model.md section 6 check)
    teq = maa_table(1.0, 1.0, f0)
    lbb, lbc, lcc = teq.l_per_s(x)
    np.testing.assert_allclose(lbb + 2 * lbc + lcc, 1.0, rtol=1e-12)


def test_numerics_is_one_settings_object_in_every_config():
    # [numerics] means continuum.model.Numerics in the continuum and in the comparison config; the
    # comparison's other defaults are an instance (VALIDATION_NUMERICS), and a table that sets one
    # key keeps the instance's other values
    import tomllib
    from pathlib import Path

    from ionwire.continuum.experiment import load_config as load_continuum
    from ionwire.continuum.model import Numerics
    from ionwire.coupling.compare import VALIDATION_NUMERICS, load_config as load_compare

    text = (Path(__file__).resolve().parent.parent / "runs" / "validate.toml").read_text()
    m = tomllib.loads(text)
    m["numerics"] = {"n_nodes": 123}
    cmp_num = load_compare(m).numerics
    assert type(cmp_num) is Numerics
    assert cmp_num.n_nodes == 123 and cmp_num.layer_width_um == VALIDATION_NUMERICS.layer_width_um == 0.005
    assert cmp_num.initial_step_s == 1e-12 and cmp_num.rtol == 1e-4
    cont_num = load_continuum({"numerics": {"n_nodes": 123}}).numerics
    assert type(cont_num) is Numerics and cont_num == Numerics(n_nodes=123)
    m["numerics"] = {"rtol": 0.5}
    with pytest.raises(ParameterError, match="numerics.rtol"):
        load_compare(m)
    m.pop("numerics")
    m["continuum"] = {"n_nodes": 400}  # the table has one name
    with pytest.raises(ParameterError, match="unknown key continuum"):
        load_compare(m)


def test_paper_numbers_are_held_once_and_derived_consistently():
    from ionwire.continuum.experiment import Calibration, ContinuumConfig
    from ionwire.structures import paper

    # every number has a source; the derived ones follow from the stated ones
    assert all(v.source for v in paper.ALL.values()) and len(paper.ALL) >= 10
    # L = mu E t: 1.7e-13 cm^2/(V s) * 4 V/um * 4 h = 0.979 um (docs/model.md: ~0.98 um)
    assert paper.mobility_length_um(4.0) == pytest.approx(0.979, abs=5e-4)
    assert paper.FORWARD_LENGTH_4H.value == 0.98 and paper.CALIBRATION_FORWARD.value == 0.49
    assert paper.CALIBRATION_REVERSE.value == 0.05  # 0.98 um / ratio 20
    # the defaults of the parameter set and of the calibration are these numbers
    el = DeviceParameters().electrodes  # the default material set's
    assert (el.alphas_um_per_V_s[0], el.alphas_um_per_V_s[1]) == (paper.ALPHA_BR.value, paper.ALPHA_CL.value) == (1.3e-5, 3.8e-7)
    cal = Calibration()
    assert (cal.forward_field_V_per_um, cal.forward_length_um) == (2.0, 0.49)
    assert (cal.reverse_field_V_per_um, cal.reverse_length_um) == (-4.0, 0.05)
    assert ContinuumConfig().duration_s == paper.BIAS_DURATION.value == 14400.0
