"""Comparison statistics: binning, reduced chi^2 calibration, front position."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ionwire.coupling import statistics as S
from ionwire.structures.front import binned_front
from ionwire.structures.statistics import replica_mean_sem


def test_reduced_chi2_of_a_perfect_model_matches_the_student_t_expectation():
    # replicas drawn around a known truth: chi2/dof of the truth ~ (R-1)/(R-3) within 5 %
    rng = np.random.default_rng(7)
    R, nb = 12, 4000
    truth = np.linspace(0, 1, nb)
    reps = truth + 0.05 * rng.standard_normal((R, nb))
    mean, sem = replica_mean_sem(reps)
    chi2 = S.reduced_chi2(truth, mean, sem)
    assert chi2 == pytest.approx(S.expected_chi2_per_dof(R), rel=0.05)
    # a model biased by 2 standard errors everywhere has chi2/dof ~ 1.2 + 4
    assert S.reduced_chi2(truth + 2 * 0.05 / np.sqrt(R), mean, sem) > 4


def test_bin_average_is_exact_for_piecewise_linear_and_plane_bins_are_weighted():
    z = np.array([0.0, 1.0, 3.0])
    v = np.array([0.0, 1.0, 5.0])  # slope 1 then 2
    got = S.bin_average_piecewise_linear(z, v, np.array([0.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, [(0.5 + 2.0) / 2, 4.0])
    planes = np.array([1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(S.bin_planes(planes, np.array([2, 1, 2, 1]), 2), [2 / 3, 2 / 3])


def test_front_position_of_a_step_and_with_noise():
    edges = np.linspace(0, 100, 101)
    zc = 0.5 * (edges[1:] + edges[:-1])
    x = np.where(zc < 40.0, 1.0, 0.0)
    assert binned_front(zc, edges, x, "left") == pytest.approx(40.0, abs=0.5)
    assert binned_front(zc, edges, x[::-1], "right") == pytest.approx(60.0, abs=0.5)
    # a spurious dip below 0.55 deep in the Br segment is ignored (nearest to the integral front)
    noisy = x.copy()
    noisy[5] = 0.4
    assert binned_front(zc, edges, noisy, "left") == pytest.approx(40.0, abs=0.6)
    # no crossing: fully Br -> the Cl-side end
    assert binned_front(zc, edges, np.ones(100), "left") == 100.0


def test_front_agreement_flags_a_shift():
    rng = np.random.default_rng(3)
    fronts = 50 + rng.standard_normal((16, 3))
    ok = S.front_agreement(fronts, fronts.mean(axis=0) + 0.1)
    assert ok["all_within"]
    bad = S.front_agreement(fronts, fronts.mean(axis=0) + 3.0)
    assert not bad["all_within"]


def test_rectification_ratio_and_its_error_propagation():
    from ionwire.coupling.statistics import rectification

    rng = np.random.default_rng(4)
    fwd = -10.0 + 0.5 * rng.standard_normal((4000, 2))
    rev = 1.0 + 0.1 * rng.standard_normal((4000, 2))
    r = rectification(fwd, rev, np.array([-10.0, -10.0]), np.array([1.0, 1.0]), resolution=0.0)
    assert r["continuum_ratio"] == pytest.approx(10.0)
    assert r["kmc_ratio"] == pytest.approx(10.0, rel=5 * 0.0016)  # ~5 SEM of the ratio
    # first-order propagation: 10 sqrt((0.5/10)^2 + (0.1/1)^2) / sqrt(4000)
    assert r["kmc_ratio_err"] == pytest.approx(10 * math.hypot(0.05, 0.1) / math.sqrt(4000), rel=0.05)
    r2 = rectification(fwd, rev, np.array([-10.0, -10.0]), np.array([1.0, 1.0]), resolution=0.1)
    assert r2["kmc_ratio_err"] > r2["kmc_ratio_err_sem_only"] == pytest.approx(r["kmc_ratio_err"])
    assert r2["kmc_ratio_err"] == pytest.approx(
        r2["kmc_ratio"] * math.hypot(math.hypot(r2["kmc_forward_length_sem"][-1], 0.1) / r2["kmc_forward_length"][-1],
                                     math.hypot(r2["kmc_reverse_length_sem"][-1], 0.1) / r2["kmc_reverse_length"][-1]))
