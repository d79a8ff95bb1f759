"""Report analysis on synthetic ensembles whose truth is known."""
from __future__ import annotations

import json

import numpy as np

from ionwire.coupling import report
from ionwire.coupling.io import read_report, write_report


def _synthetic(shift_nm=0.0, R=16, seed=0):
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 100.0, 151)
    zc = 0.5 * (edges[1:] + edges[:-1])
    times = np.array([1e-6, 1e-5])
    fronts = np.array([50.0, 45.0])
    true_xbr = 0.5 * (1 - np.tanh((zc[None, :] - fronts[:, None]) / 4.0))
    sites = np.full(zc.size, 1200.0)
    noise = 0.02 * rng.standard_normal((R, 2, zc.size))
    # x_V: Poisson vacancy counts of 1200-site bins, mean 1.2 (what a kMC bin holds)
    kmc = {"x_br": true_xbr + noise, "x_v": rng.poisson(1.2, (R, 2, zc.size)) / sites}
    cont_xbr = 0.5 * (1 - np.tanh((zc[None, :] - fronts[:, None] - shift_nm) / 4.0))
    cont = {"x_br": cont_xbr, "x_v": np.full((2, zc.size), 1e-3)}
    return edges, times, kmc, cont, sites


def test_agreeing_models_pass_and_a_shifted_front_fails(tmp_path):
    edges, times, kmc, cont, sites = _synthetic()
    arrays, summ = report.analyse_direction(edges, times, kmc, cont, sites, "left", 0.02585, 4.0)
    exp = summ["expected_chi2_per_dof_if_models_agree"]
    sd = summ["chi2_per_dof_spread_if_models_agree"]
    assert 0.1 < sd < 0.3
    for f in ("x_br", "x_v"):  # within 4 sd of the expectation (Poisson tails widen x_V's)
        assert all(abs(c - exp) < 4 * sd for c in summ["chi2_per_dof"][f])
    assert summ["chi2_within_threshold"] is True
    assert summ["front_position_agreement"]["all_within"]

    edges, times, kmc, cont, sites = _synthetic(shift_nm=3.0)
    _, bad = report.analyse_direction(edges, times, kmc, cont, sites, "left", 0.02585, 4.0)
    assert bad["chi2_within_threshold"] is False
    assert not bad["front_position_agreement"]["all_within"]
    # positive shift = continuum front further right = more Br -> positive weighted residual
    assert all(b > 0 for b in bad["weighted_mean_residual"]["x_br"])

    # HDF5 + JSON + PNG round trip
    files = report.plot_direction(arrays, "forward", tmp_path)
    assert all((tmp_path / f).stat().st_size > 1000 for f in files)
    _check_draws_into_given_axes(arrays)
    write_report(tmp_path / "r.h5", {"forward": summ}, {"forward": arrays}, "x = 1\n")
    s2, groups = read_report(tmp_path / "r.h5")
    np.testing.assert_array_equal(groups["forward"]["kmc_replicas_x_br"], kmc["x_br"])
    assert s2["forward"]["replicas"] == 16
    report.write_json(tmp_path / "s.json", {"a": np.float64(1.0), "b": [np.inf]})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1.0, "b": [None]}


def _check_draws_into_given_axes(arrays):
    """The figure functions draw into a notebook's axes and return that figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_fields = sum(f"kmc_mean_{f}" in arrays for f in report.FIELDS)
    fig, axes = plt.subplots(n_fields, len(arrays["times_s"]), squeeze=False)
    assert report.profiles_figure(arrays, "forward", axes=axes) is fig
    assert all(len(ax.lines) == 2 for ax in axes.flat)  # kMC mean and continuum in every panel
    fig2, pair = plt.subplots(1, 2)
    assert report.front_chi2_figure(arrays, "forward", axes=pair) is fig2
    assert len(pair[1].lines) >= n_fields
    plt.close("all")
