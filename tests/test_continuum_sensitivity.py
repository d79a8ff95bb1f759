"""The sensitivity study (continuum.sensitivity), the equal_rates electrode law and Figs. S11-S15
(continuum.supplementary), on tiny meshes and short runs."""
import json
import math

import numpy as np
import pytest

from ionwire.continuum import sensitivity as S
from ionwire.structures.parameters import DeviceParameters, ParameterError, electrode_rates, from_mapping

TINY = {"run": "sensitivity", "duration_s": 600.0, "numerics": {"n_nodes": 120, "n_outputs": 8},
        "fields_V_per_um": [-4.0, 1.5, 2.5, 4.0], "laws": ["irreversible_at_positive"],
        "trajectories": 2, "scan_levels": 3,
        "factors": {"contact_width_um": [0.5, 2.5], "log10_nu0": [12.5, 13.5]}}


def test_equal_rates_law_shares_one_rate_constant():
    p = from_mapping(DeviceParameters, {"electrodes": {"r_d_form": "equal_rates"}})
    x = np.linspace(0.0, 1.0, 5)
    for electrode in ("positive", "negative"):
        r_c, r_d = electrode_rates(p, x, 3.0, electrode)
        assert np.all(r_c > 0)
        np.testing.assert_allclose(r_d, r_c, rtol=1e-14)
    db = from_mapping(DeviceParameters, {"electrodes": {"r_d_form": "detailed_balance"}})
    r_c, r_d = electrode_rates(db, x, 3.0, "positive")
    assert np.all(r_d > 1e5 * r_c)  # detailed balance: r_d / r_c = (1 - x_eq) / x_eq


def test_design_reproducible_and_within_bounds():
    cfg = S.load_config(TINY)
    a, b = S.make_design(cfg), S.make_design(cfg)
    assert [s["values"] for s in a] == [s["values"] for s in b]
    morris = [s for s in a if s["part"] == "morris"]
    assert len(morris) == 2 * (2 + 1)
    for s in morris:
        assert 0.5 <= s["values"]["contact_width_um"] <= 2.5 and 12.5 <= s["values"]["log10_nu0"] <= 13.5
    other = S.make_design(S.load_config(dict(TINY, seed=7)))
    assert [s["values"] for s in other] != [s["values"] for s in a]
    # one-at-a-time scan: 3 levels per factor plus the default point
    assert len([s for s in a if s["part"] == "scan"]) == 2 * 3 + 1


def test_apply_factors_geometry_and_materials():
    p = S.apply_factors(DeviceParameters(), {"gap_um": 4.0, "contact_width_um": 1.0, "overhang_um": 0.5,
                                             "junction_fraction": 0.25, "host_weight": 1.0,
                                             "barrier_Br_eV": 0.22, "barrier_Cl_eV": 0.30,
                                             "log10_xv_eq_Br": -7.0, "formation_energy_gap_eV": 0.2,
                                             "log10_nu0": 12.0, "log10_negative_factor": -1.0}, "detailed_balance")
    g = p.geometry
    assert g.wire_length_um == pytest.approx(4.0 + 2.0 + 1.0)
    assert g.overhang_um == pytest.approx(0.5)
    g0, g1 = g.gap_um_interval
    assert g.junction_um == pytest.approx(g0 + 0.25 * (g1 - g0))
    b = p.material.barriers
    assert (b.first_in_first_eV, b.first_in_second_eV, b.second_in_first_eV, b.second_in_second_eV) == pytest.approx((0.22, 0.30, 0.22, 0.30))
    assert p.vacancies.reference_fraction == pytest.approx(1e-7)
    assert p.material.formation_energy_eV[1] - p.material.formation_energy_eV[0] == pytest.approx(0.2)
    assert p.material.attempt_frequency_per_s == pytest.approx(1e12)
    assert p.electrodes.negative_electrode_factor == pytest.approx(0.1)
    assert p.electrodes.r_d_form == "detailed_balance"
    # the default values reproduce the default parameter set
    cfg = S.load_config({"laws": ["irreversible_at_positive"]})
    q = S.apply_factors(cfg.params, S.default_values(cfg), "irreversible_at_positive")
    d = cfg.params
    assert q.geometry.junction_um == pytest.approx(d.geometry.junction_um)
    assert q.geometry.wire_length_um == pytest.approx(d.geometry.wire_length_um)
    assert q.material.barriers == d.material.barriers
    assert q.vacancies.reference_fraction == pytest.approx(d.vacancies.reference_fraction, rel=1e-12)
    assert q.material.attempt_frequency_per_s == pytest.approx(d.material.attempt_frequency_per_s, rel=1e-12)
    assert q.electrodes == d.electrodes


@pytest.mark.parametrize("change, fragment", [
    ({"factors": {"magic": [0, 1]}}, "unknown factor 'magic'"),
    ({"factors": {"gap_um": [5.0, 3.0]}}, "factors.gap_um"),
    ({"factors": {"gap_um": 3.0}}, "factors.gap_um"),
    ({"laws": ["one_way"]}, "laws"),
    ({"fields_V_per_um": [-4.0, 1.0, 2.0, 3.0]}, "largest reverse field"),
    ({"fields_V_per_um": [-4.0, 4.0]}, "at least 3 forward"),
    ({"trajectories": 1}, "trajectories"),
    ({"run": "continuum"}, "not 'sensitivity'"),
    ({"colour": "red"}, "unknown key colour"),
])
def test_bad_config_one_clear_error(change, fragment):
    with pytest.raises(ParameterError, match=fragment):
        S.load_config(dict(TINY, **change))


def test_tiny_study(tmp_path):
    """A real (tiny) study: the contact width controls the forward injection monotonically, the
    front moves with the field (towards Br forward, towards Cl reverse), the Morris indices are
    consistent, the files are written, and the equal_rates reading breaks the dilute model."""
    import h5py

    cfg = S.load_config(dict(TINY, laws=["irreversible_at_positive", "equal_rates"]))
    out = S.run_study(cfg, tmp_path)
    assert out["runs"] == out["samples"] * 4
    law = out["per_law"]["irreversible_at_positive"]
    assert law["ok"] == law["samples"]
    scan = out["scan"]["irreversible_at_positive"]["contact_width_um"]
    lf = scan["L_forward_um"]
    assert lf[0] < lf[1] < lf[2]  # wider contacts inject more vacancies
    assert all(v < 0 for v in scan["L_reverse_um"])
    m = out["morris"]["irreversible_at_positive"]
    assert m["trajectories_used"] == 2
    for o in S.ANALYSED:
        mu, mu_star, conf = (np.array(m[o][k]) for k in ("mu", "mu_star", "mu_star_conf"))
        assert np.all(mu_star >= np.abs(mu) - 1e-15) and np.all(conf >= 0)
    i_cw = m["L_forward_um"]["names"].index("contact_width_um")
    assert m["L_forward_um"]["mu"][i_cw] > 0
    # equal_rates (r_d = r_c): the contacts are driven to x_V = 1/2 and every run fails
    er = out["per_law"]["equal_rates"]
    assert er["ok"] == 0 and "step size underflow" in er["errors"][0]
    assert out["morris"]["equal_rates"]["trajectories_used"] == 0
    rows = (tmp_path / "sensitivity.csv").read_text().splitlines()
    assert len(rows) == 1 + out["samples"]
    with h5py.File(tmp_path / "sensitivity.h5") as f:
        lr = f["L_reverse_um"][:]
        assert lr.size == out["samples"] and f["L_reverse_um"].attrs["units"] == "um"
        assert np.all(lr[f["ok"][:] == 1] < 0)
    assert (tmp_path / "sensitivity_morris.png").stat().st_size > 1000
    json.loads((tmp_path / "sensitivity_indices.json").read_text())
    # the campaign run type computes the same outputs for a sample
    s0 = S.SensitivityRun.run(cfg, {"sample": 0}, tmp_path)
    rows0 = rows[1].split(",")
    header = rows[0].split(",")
    assert float(rows0[header.index("L_forward_um")]) == pytest.approx(s0["outputs"]["L_forward_um"], rel=1e-12)


def test_runtype_registered():
    from ionwire.coupling.runtypes import get

    rt = get("sensitivity")
    cfg = rt.load(TINY)
    assert len(rt.expand(cfg)) == len(S.make_design(cfg))


def test_supplementary_figures_match_direct_runs(tmp_path):
    import dataclasses

    from ionwire.continuum.experiment import load_config, run_field
    from ionwire.continuum.supplementary import supplementary_figures

    small = {"run": "continuum", "duration_s": 900.0, "workers": 1, "numerics": {"n_nodes": 120, "n_outputs": 8},
             "calibration": {"enabled": False}}
    cfg = load_config(small)
    out = supplementary_figures(cfg, tmp_path)
    for k in ("figS11", "figS12", "figS13", "figS14", "figS15"):
        assert (tmp_path / out["files"][k].split("/")[-1]).stat().st_size > 1000
    # direct runs of the same variants, set up independently through the config mapping
    g0, g1 = cfg.geometry.gap_um_interval
    moved = load_config(dict(small, geometry={"junction_position_um": g0 + 0.3 * (g1 - g0)}))
    _, s = run_field(moved, 4.0)
    assert out["figS13_L_um"]["0.3"]["+4"] == pytest.approx(s["migration_length_um"], rel=1e-9)
    more = load_config(dict(small, vacancies={"equilibrium_fraction": {"Br": 10 * cfg.vacancies.reference_fraction}}))
    _, s = run_field(more, -4.0)
    assert out["figS15_L_um"]["10"]["-4"] == pytest.approx(s["migration_length_um"], rel=1e-9)
    _, s = run_field(cfg, 2.0)
    assert out["figS11_L_um"]["+2"] == pytest.approx(s["migration_length_um"], rel=1e-9)
    # without sources the front does not move (S12, S14), with sources it does (S13, S15)
    for v in ("0.3", "0.5", "0.7"):
        assert abs(out["figS12_L_um"][v]["+4"]) < 0.02 * out["figS13_L_um"][v]["+4"]
    for v in ("0.1", "1", "10"):
        assert abs(out["figS14_L_um"][v]["+4"]) < 0.02 * out["figS15_L_um"][v]["+4"]
    # the forward branch grows with the field
    lf = [out["figS11_L_um"][f"{e:+g}"] for e in (0.5, 1.0, 2.0, 3.0, 4.0)]
    assert all(a < b for a, b in zip(lf, lf[1:]))
    assert math.isfinite(out["figS13_rectification_ratio"]["0.5"])
