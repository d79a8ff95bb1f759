"""Atomistic rectification (runs/rectify.toml, runs/rectify_detailed_balance.toml): the regime
groups, the potential mapping between the kMC planes and the continuum, the deterministic
background option, a small comparison that checks the machinery, and (marker ``validate``) the
rectify comparison end to end."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ionwire.coupling import compare as C
from ionwire.structures.units import BOLTZMANN_EV_PER_K

REPO = Path(__file__).resolve().parent.parent
RECTIFY = REPO / "runs" / "rectify.toml"
RECTIFY_DB = REPO / "runs" / "rectify_detailed_balance.toml"


def test_regime_of_the_experiment_from_the_formulas():
    """The experiment's groups, recomputed from their definitions with the default parameters
    (x_V^eq = 1e-7/3, eps 25, 300 K, a = 5.8 A, 1.5 um contacts, 5 um gap, 300 nm wire, 4 V/um)."""
    g = C.experiment_regime(4.0)
    kT = BOLTZMANN_EV_PER_K * 300.0
    a_m = 5.8e-10
    cs = 3.0 / a_m ** 3 * (1e-7 / 3.0)
    lam = math.sqrt(25 * 8.8541878128e-12 * kT / (1.602176634e-19 * cs))  # m
    assert g["debye_length_nm"] == pytest.approx(lam * 1e9, rel=1e-6)
    assert 0.25 < g["debye_length_nm"] * 1e-3 < 0.27  # docs/model.md: 0.26 um
    assert g["bias_over_screening"] == pytest.approx(4e6 * lam / kT, rel=1e-6)
    assert g["hop_bias"] == pytest.approx(4e6 * a_m / (4 * kT), rel=1e-9)
    w_br = 1e13 * math.exp(-0.25 / kT)
    d_v = 8 * (a_m / math.sqrt(2)) ** 2 * w_br / 6 * 1e12  # um^2/s
    assert g["injection_strength"] == pytest.approx(1.3e-5 * 1.5 * kT / (d_v * 1e-7 / 3.0), rel=1e-6)
    assert g["debye_length_over_gap"] == pytest.approx(lam * 1e6 / 5.0, rel=1e-6)
    assert g["vacancies_per_debye_slab"] == pytest.approx(cs * (0.3e-6) ** 2 * lam, rel=1e-6)
    assert C.regime_warnings(g) == []  # the experiment is in its own regime


def test_validate_config_is_flagged_screened_and_rectify_is_depleted():
    val, _ = C.load_file(REPO / "runs" / "validate.toml")
    rv = C.config_regime(val)
    assert rv["groups"]["bias_over_screening"] < 1
    assert any(w.startswith("bias_over_screening") for w in rv["warnings"])
    for path in (RECTIFY, RECTIFY_DB):
        cfg, _ = C.load_file(path)
        r = C.config_regime(cfg)
        names = {w.split(" ")[0] for w in r["warnings"]}
        assert not names & {"bias_over_screening", "hop_bias", "injection_strength", "debye_length_over_gap"}
        assert 0.1 <= r["groups"]["injection_strength"] <= 0.2


def test_uniform_background_is_within_half_a_charge_of_the_smooth_background():
    from ionwire.kmc.device import DeviceSimulation

    cfg, _ = C.load_file(RECTIFY)
    cfg = dataclasses.replace(cfg, kmc=dataclasses.replace(cfg.kmc, nx=8, ny=8, background="uniform"))
    sims = [DeviceSimulation(C.device_config(cfg, 54.0, s)) for s in (1, 2)]
    lay = sims[0].layout
    smooth = np.cumsum(lay.x_v_eq * lay.sites_per_plane)
    for sim in sims:
        assert np.array_equal(sim.background, sims[0].background)  # deterministic
        assert np.max(np.abs(np.cumsum(sim.background) - smooth)) <= 0.5 + 1e-12
        assert np.array_equal(sim.plane_counts()[:, 2], sim.background)  # neutral start
        sim.check_bookkeeping()
    # the binomial default differs between seeds
    binom = [DeviceSimulation(C.device_config(dataclasses.replace(
        cfg, kmc=dataclasses.replace(cfg.kmc, background="binomial")), 54.0, s)).background for s in (1, 2)]
    assert not np.array_equal(binom[0], binom[1])


def test_uncharged_kmc_potential_is_the_continuum_potential_on_the_slabs():
    """Before any charge moves, the kMC's plane potentials binned like the comparison equal the
    continuum's bin averages in the comparison's gauge (plane p <-> slab [z_p, z_p + a/2]): the
    applied drops and the placement agree to round-off."""
    from ionwire.kmc.device import DeviceSimulation
    from ionwire.coupling import statistics as S

    cfg, _ = C.load_file(RECTIFY)
    cfg = dataclasses.replace(cfg, kmc=dataclasses.replace(cfg.kmc, nx=4, ny=4),
                              compare=dataclasses.replace(cfg.compare, times_s=(1e-12,)))
    for E in (54.0, -54.0):
        sim = DeviceSimulation(C.device_config(cfg, E, 1))
        phi_kmc = sim.potential_V()
        h = 0.5 * cfg.material.lattice_constant_A * 1e-4
        P = len(phi_kmc)
        edges = C.plane_bins(P, h, 4)
        kb = S.bin_planes(phi_kmc[None, None, :], np.ones(P), 4)[0, 0]
        cres = C.run_continuum(cfg, E)
        cb = C.bin_continuum(cres, edges, C.phi_reference_um(cfg))["phi_V"][0]
        assert np.max(np.abs(kb - cb)) < 1e-4 * abs(E) * cfg.geometry.wire_length_um


def test_small_rectify_comparison_machinery(tmp_path):
    """The rectify config through the CLI with its --cells, --field, --replicas overrides on a
    tiny device (4 x 4 cells, 4 replicas, 1e-4 s): summary layout, regime, and the rectification
    ratio recomputed from the reported fronts."""
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "ionwire.coupling.cli", "compare", str(RECTIFY), "-o", str(out), "--cells", "4", "4",
           "--replicas", "4", "--field", "54", "--field", "-54", "--times", "3e-5", "1e-4", "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "vacancies_per_debye_slab" in p.stderr and "warning:" in p.stderr  # 4 x 4: few per slab
    s = json.loads((out / "summary.json").read_text())
    assert s["replicas"] == 4 and set(s["chi2_per_dof"]) == {"forward", "reverse"}
    assert set(s["chi2_per_dof"]["forward"]) == {"x_br", "x_v", "phi_V"}
    assert len(s["front_position_agreement"]["reverse"]["z_score"]) == 2
    assert s["regime"]["groups"]["vacancies_per_debye_slab"] == pytest.approx(
        C.regime(C.load_file(RECTIFY)[0].params, 54, 16 * 0.58e-3 ** 2)["vacancies_per_debye_slab"])
    r = s["rectification"]
    f, b = s["front_position_agreement"]["forward"], s["front_position_agreement"]["reverse"]
    z0 = r["front_initial_nm"]
    assert z0 == pytest.approx(0.5 * 0.058e3, abs=0.29)  # the junction, within a plane
    lf = abs(f["kmc_mean"][-1] - z0)
    lr = abs(b["kmc_mean"][-1] - z0)
    assert r["kmc_ratio"] == pytest.approx(lf / lr, rel=1e-9)
    assert r["continuum_ratio"] == pytest.approx(abs(f["continuum"][-1] - z0) / abs(b["continuum"][-1] - z0), rel=1e-9)
    assert r["kmc_ratio_err"] > 0
    assert (out / "rectification.png").stat().st_size > 1000
    # forward moves the front towards the Br end, reverse towards the Cl end (continuum)
    assert f["continuum"][-1] < z0 < b["continuum"][-1]


@pytest.fixture(scope="module", params=[RECTIFY, RECTIFY_DB], ids=["one_way", "detailed_balance"])
def rectify_run(request, tmp_path_factory):
    """The rectify comparison on a 16 x 16 cross-section (a quarter of the configs' events) with
    6 replicas per polarity (a few minutes per config on one core), run once per config."""
    m = tomllib.loads(request.param.read_text())
    m["kmc"].update(nx=16, ny=16)
    m["compare"]["replicas"] = 6
    cfg = C.load_config(m)
    out = tmp_path_factory.mktemp("rectify")
    return C.compare(cfg, out, progress=False), out


@pytest.fixture(scope="module")
def rectify_summary(rectify_run):
    return rectify_run[0]


@pytest.mark.validate
def test_rectify_comparison_end_to_end(rectify_summary):
    """Rectification >= 10 in both models, the kMC ratio within 2 sigma of the continuum's, the
    fronts within 2 sigma at every time and polarity, the forward profiles within the chi^2
    threshold and the reverse vacancy profile too."""
    s = rectify_summary
    r = s["rectification"]
    assert r["continuum_ratio"] >= 10 and r["kmc_ratio"] >= 10
    assert r["within_n_sigma"], r
    for name in ("forward", "reverse"):
        assert s["front_position_agreement"][name]["all_within"], s["front_position_agreement"][name]
    assert s["accepted"]["forward"]["chi2"], s["chi2_per_dof_variance_corrected"]["forward"]
    x_v = np.asarray(s["chi2_per_dof_variance_corrected"]["reverse"]["x_v"])
    assert np.all(x_v <= s["chi2_threshold"]), x_v


@pytest.mark.validate
@pytest.mark.xfail(strict=True, reason="measured, explained disagreement: the reverse junction is mixed by few "
                                       "field-biased vacancy passages per halide, so the kMC's displacement "
                                       "distribution is skewed along the drift (third cumulant of the junction "
                                       "profile ~1 plane x its variance above the continuum's), which a "
                                       "drift-diffusion continuum cannot carry; test_reverse_junction_excess_is_"
                                       "a_third_cumulant and tests/test_rectify_diagnosis.py demonstrate it")
def test_rectify_reverse_composition_profile_within_chi2(rectify_summary):
    """The reverse x_Br profile within the chi^2 threshold at every compared time (fails today:
    kept strict so that the day it agrees, this marker must go)."""
    s = rectify_summary
    x_br = np.asarray(s["chi2_per_dof_variance_corrected"]["reverse"]["x_br"])
    assert np.all(x_br <= s["chi2_threshold"]), x_br


def test_potential_joins_the_acceptance_only_in_the_mean_field_regime():
    cfg, _ = C.load_file(RECTIFY)
    assert C.mean_field_coupling(cfg) == pytest.approx(C.config_regime(cfg)["groups"]["mean_field_coupling"])
    assert C.phi_in_acceptance(cfg)  # 32 x 32: Gamma = 0.39
    small = dataclasses.replace(cfg, kmc=dataclasses.replace(cfg.kmc, nx=16, ny=16))
    assert C.mean_field_coupling(small) == pytest.approx(4 * C.mean_field_coupling(cfg))  # Gamma ~ 1/A
    assert not C.phi_in_acceptance(small)
    assert not C.phi_in_acceptance(C.load_file(REPO / "runs" / "validate.toml")[0])


@pytest.mark.validate
def test_reverse_junction_excess_is_a_third_cumulant(rectify_run):
    """What the reverse x_Br disagreement is.  The displacement density of the junction profile
    (-dx_Br/dz, between the contacts) has the same mean in both models, but the kMC's third
    cumulant exceeds the continuum's, by an amount proportional to the variance (kappa_3 and
    kappa_2 both grow with the number of vacancy passages, as for a compound of few biased bursts;
    measured: 0.8-1.7 planes x kappa_2 at 16x16 and 32x32, 4-16 replicas).  The bulk counterpart
    (skewness along the drift, present at hop bias 0.3, absent at 0 and 0.03) is in
    tests/test_rectify_diagnosis.py."""
    import h5py
    from ionwire.coupling.field_response import step_profile_cumulants

    s, out = rectify_run
    plane_nm = 0.5 * s["parameters"]["material"]["lattice_constant_A"] * 0.1
    with h5py.File(out / "report.h5", "r") as f:
        g = f[s["rectification"]["reverse"]]
        ze = g["z_edge"][:]
        window = (2 * ze[5], ze[-1] - 2 * ze[5])  # the gap, away from the contacts' own changes
        kr = step_profile_cumulants(ze, g["kmc_replicas_x_br"][:], window, plane_nm)
        kc = step_profile_cumulants(ze, g["continuum_x_br"][:], window, plane_nm)
    R = kr.shape[0]
    mean, sem = kr.mean(axis=0), kr.std(axis=0, ddof=1) / np.sqrt(R)
    # the mean position (the front) agrees within 3 standard errors plus a hundredth of a plane
    assert np.all(np.abs(mean[:, 0] - kc[:, 0]) <= 3 * sem[:, 0] + 0.01), (mean[:, 0], kc[:, 0], sem[:, 0])
    # the third cumulant is larger in the kMC at every time, significantly
    excess = mean[:, 2] - kc[:, 2]
    assert np.all(excess > 2 * sem[:, 2]), (excess, sem[:, 2])
    # and the excess scales with the variance: 0.7-2.5 planes x kappa_2 at every time
    per_var = excess / mean[:, 1]
    assert np.all((0.7 <= per_var) & (per_var <= 2.5)), per_var
