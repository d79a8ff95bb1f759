"""Why the reverse branch of runs/rectify.toml disagrees in x_Br: bulk kMC checks of the
candidates (coupling/field_response.py).

- Nonlinear field response (excluded): at hop bias 0.3 each species drifts at the MAA linear
  response times sinh(b)/b, the single-hop nonlinearity, to within 1 %.
- MAA against the kMC (excluded): at hop bias 0.03 the drift is the MAA linear response to 1.5 %.
- Few biased vacancy passages (the cause): an atom moves only when a vacancy passes it, in a
  correlated burst of hops that the field biases.  After a few passages per atom its displacement
  distribution is skewed along the drift (kappa_3 proportional to kappa_2, skewness falling with
  the passages), which no drift-diffusion (Gaussian-propagator) continuum carries; at zero field
  the skewness vanishes by symmetry.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from ionwire.coupling import field_response as F
from ionwire.structures.parameters import Material, ParameterError


def test_drift_at_hop_bias_0_3_is_linear_response_times_the_single_hop_factor():
    r = F.measure_drift(0.5, 0.3, replicas=6, events=1_000_000, warmup_events=100_000, seed=5)
    for s in ("Br", "Cl"):
        assert r[f"ratio_{s}"] == pytest.approx(math.sinh(0.3) / 0.3, abs=0.01), r
        assert r[f"ratio_{s}_sem"] < 0.005, r


@pytest.mark.validate
def test_drift_at_hop_bias_0_03_is_the_maa_linear_response():
    """Measured (8 replicas x 2e7 hops, x_Cl = 0.1 / 0.5): ratios 0.997-1.009, SEM 0.003-0.016."""
    r = F.measure_drift(0.5, 0.03, replicas=8, events=20_000_000, warmup_events=200_000, seed=1)
    for s in ("Br", "Cl"):
        assert r[f"ratio_{s}"] == pytest.approx(1.0, abs=max(0.015, 3 * r[f"ratio_{s}_sem"])), r


def test_few_biased_passages_skew_the_displacement_along_the_drift():
    """Cl tracers of a Cl-rich alloy (x_Cl = 0.9, the matrix of the reverse Br tail) after 0.5, 2
    and 8 hops per atom.  Measured (8 replicas): skewness -0.90, -0.56, -0.31 (SEM 0.03) at hop
    bias 0.3; |skewness| <= 0.08 at zero field."""
    marks = [0.5, 2.0, 8.0]
    biased = F.tracer_cumulants(0.9, 0.3, marks, replicas=8, seed=3)["Cl"]
    still = F.tracer_cumulants(0.9, 0.0, marks, replicas=8, seed=3)["Cl"]
    skew, sem = np.array(biased["skewness"]), np.array(biased["skewness_sem"])
    k1 = np.array(biased["k1"])
    assert np.all(k1 < 0)  # halides drift against E
    assert np.all(skew < -5 * sem), (skew, sem)  # skewed along the drift, significantly
    assert np.all(np.diff(np.abs(skew)) < 0) and abs(skew[-1]) < 0.5 * abs(skew[0]), skew  # fades with passages
    # compound of bursts: kappa_3 grows like kappa_2 (their ratio within a factor 2 over 16x the hops)
    per_var = np.abs(np.array(biased["k3"]) / np.array(biased["k2"]))
    assert per_var.max() < 2 * per_var.min(), per_var
    # zero field: no skewness (at most a quarter of the biased one at every mark)
    assert np.all(np.abs(still["skewness"]) < 0.25 * np.abs(skew)), (still["skewness"], skew)


def test_bad_input_is_named():
    with pytest.raises(ParameterError, match="hops_per_atom"):
        F.tracer_cumulants(0.5, 0.3, [2.0, 1.0])
    with pytest.raises(ParameterError, match="x_cl"):
        F.measure_drift(1.0, 0.3)
    with pytest.raises(ParameterError, match="random_alloy"):
        F.measure_drift(0.5, 0.3, material=Material(preset="host"))
    with pytest.raises(ParameterError, match="window"):
        F.step_profile_cumulants(np.arange(6.0), np.zeros(5), (10.0, 20.0), 0.29)


def test_step_profile_cumulants_of_a_known_distribution():
    """A step convolved with a known three-point displacement distribution, on unit bins."""
    ze = np.arange(0.0, 21.0)  # 20 bins, edges 0..20 (plane = 1)
    p = {9.0: 0.2, 10.0: 0.5, 12.0: 0.3}  # mass at edges
    x = np.array([sum(w for z, w in p.items() if z > e + 0.5) for e in ze[:-1]])
    k = F.step_profile_cumulants(ze, x, (1.0, 19.0), 1.0)
    zz, ww = np.array(list(p)), np.array(list(p.values()))
    m = (ww * zz).sum()
    assert k[0] == pytest.approx(m)
    assert k[1] == pytest.approx((ww * (zz - m) ** 2).sum())
    assert k[2] == pytest.approx((ww * (zz - m) ** 3).sum())
