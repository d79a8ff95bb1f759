"""The shared foundation pieces every run type uses: per-run seeds, replica statistics, the front
observable (x_Br = 0.55) and config composition (a run config holds the parameter set)."""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ionwire.structures import front as F
from ionwire.structures.parameters import DeviceParameters, ParameterError, from_mapping, to_mapping
from ionwire.structures.seeds import derive_seed, point_seed
from ionwire.structures.statistics import mean_and_error, replica_mean_sem

RUNS = Path(__file__).resolve().parent.parent / "runs"


# --------------------------------------------------------------------------------------------
# seeds
# --------------------------------------------------------------------------------------------
def test_derived_seeds_are_distinct_reproducible_63_bit():
    seeds = {derive_seed(1, fi, r) for fi in range(10) for r in range(1000)}
    assert len(seeds) == 10_000 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3)
    assert derive_seed(2, 2, 3) != derive_seed(1, 2, 3) != derive_seed(1, 3, 2)
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(1, -1)


def test_derived_seed_is_the_documented_seed_sequence_word():
    # the compare ensembles and Onsager tables of earlier releases used exactly this derivation,
    # so their seeds (and numbers) are unchanged: SeedSequence([root, *key]), first uint64 >> 1
    for key in ((1, 0, 0), (1, 1, 11), (2026, 0, 300000, 15)):
        ss = np.random.SeedSequence(list(key))
        assert derive_seed(*key) == int(ss.generate_state(1, dtype=np.uint64)[0]) >> 1


def test_point_seeds_depend_on_every_axis_not_on_key_order():
    a = point_seed(7, {"x_cl": 0.3, "replica": 2})
    assert a == point_seed(7, {"replica": 2, "x_cl": 0.3})
    assert a != point_seed(7, {"x_cl": 0.3, "replica": 3}) != point_seed(7, {"x_cl": 0.4, "replica": 2})
    assert a != point_seed(8, {"x_cl": 0.3, "replica": 2})
    assert len({point_seed(0, {"replica": r}) for r in range(2000)}) == 2000


def test_replica_seeds_of_compare_and_onsager_use_the_shared_derivation():
    from ionwire.coupling.compare import replica_seed
    from ionwire.coupling.parameterize import run_seed

    assert replica_seed(1, 1, 5) == derive_seed(1, 1, 5)
    assert run_seed(2026, "host", 0.3, 4) == derive_seed(2026, 1, 300000, 4)


# --------------------------------------------------------------------------------------------
# replica statistics
# --------------------------------------------------------------------------------------------
def test_replica_mean_and_standard_error_exact_values():
    v = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    mean, sem = replica_mean_sem(v)
    np.testing.assert_allclose(mean, [3.0, 12.0])
    # s = 2 and sqrt(12); sem = s / sqrt(3)
    np.testing.assert_allclose(sem, [2.0 / math.sqrt(3.0), 2.0])
    mean1, sem1 = replica_mean_sem(v.T, axis=1)
    np.testing.assert_allclose(mean1, mean) and np.testing.assert_allclose(sem1, sem)
    with pytest.raises(ValueError, match="at least 2"):
        replica_mean_sem(v[:1])
    assert mean_and_error([1.0, 3.0]) == (2.0, 1.0)
    assert mean_and_error([4.0]) == (4.0, None)
    m, e = mean_and_error([1.0, None])
    assert math.isnan(m) and math.isnan(e)


def test_standard_error_covers_the_truth_at_the_stated_rate():
    # 2000 ensembles of R = 10 normal replicas: |mean - truth| < 2 sem holds in P(|t_9| < 2) = 92.4 %
    rng = np.random.default_rng(11)
    mean, sem = replica_mean_sem(rng.normal(5.0, 3.0, size=(10, 2000)))
    frac = float(np.mean(np.abs(mean - 5.0) < 2 * sem))
    assert abs(frac - 0.9234) < 4 * math.sqrt(0.9234 * 0.0766 / 2000), frac


# --------------------------------------------------------------------------------------------
# the front at x_Br = 0.55
# --------------------------------------------------------------------------------------------
def test_crossings_of_a_linear_profile_are_exact():
    z = np.linspace(0.0, 1.0, 11)
    x = 1.0 - z  # crosses 0.55 at z = 0.45
    assert F.crossings(z, x) == pytest.approx([0.45], abs=1e-15)
    # a dip: three crossings, in increasing z
    x2 = np.array([1.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(F.crossings(np.arange(4.0), x2), [0.9, 1.1, 2.45])
    assert F.crossings(z, np.ones(11)).size == 0


def test_front_near_picks_the_crossing_nearest_the_reference():
    z = np.arange(4.0)
    x = np.array([1.0, 0.5, 1.0, 0.0])
    assert float(F.front_near(z, x, 0.0)) == pytest.approx(0.9)
    assert float(F.front_near(z, x, 3.0)) == pytest.approx(2.45)
    assert math.isnan(float(F.front_near(z, np.ones(4), 1.0)))
    both = F.front_near(z, np.stack([x, x]), np.array([0.0, 3.0]))
    np.testing.assert_allclose(both, [0.9, 2.45])


def test_binned_front_uses_the_integral_front_and_the_wire_end():
    edges = np.linspace(0, 100, 101)
    zc = 0.5 * (edges[1:] + edges[:-1])
    x = np.where(zc < 40.0, 1.0, 0.0)
    assert F.integral_front(edges, x, "left") == pytest.approx(40.0)
    assert F.integral_front(edges, x[::-1], "right") == pytest.approx(60.0)
    # interpolation between the centres 39.5 (x = 1) and 40.5 (x = 0): 39.5 + 0.45
    assert float(F.binned_front(zc, edges, x, "left")) == pytest.approx(39.95, abs=1e-12)
    noisy = x.copy()
    noisy[5] = 0.4  # a spurious dip deep in the Br segment is not the front
    assert float(F.binned_front(zc, edges, noisy, "left")) == pytest.approx(39.95, abs=1e-12)
    assert float(F.binned_front(zc, edges, np.ones(100), "left")) == 100.0
    assert float(F.binned_front(zc, edges, np.zeros(100), "left")) == 0.0
    assert float(F.binned_front(zc, edges, np.ones(100), "right")) == 0.0
    with pytest.raises(ValueError, match="br_side"):
        F.binned_front(zc, edges, x, "up")


def test_continuum_and_atoms_fronts_are_the_shared_rule():
    from ionwire.continuum.observables import front_position_um, front_positions_um
    from ionwire.structures.atoms import front_position_um as first_crossing

    z = np.linspace(0.0, 3.0, 300)  # no node at the crossings
    x = np.where((z > 0.5) & (z < 0.7), 0.3, np.clip(2.0 - z, 0.0, 1.0))  # a dip, then the front
    fronts = F.crossings(z, x)
    assert fronts.size == 3
    assert front_position_um(z, x, 1.45) == float(fronts[-1]) == pytest.approx(1.45, abs=1e-12)
    np.testing.assert_array_equal(front_positions_um(z, np.stack([x, x]), 1.45), [fronts[-1]] * 2)
    assert first_crossing(z, x) == float(fronts[0])
    assert first_crossing(z, np.ones_like(z)) == 1.5  # no crossing: the middle


# --------------------------------------------------------------------------------------------
# composed configs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, loader", [
    ("device_small.toml", "ionwire.kmc.device:load_config"),
    ("validate.toml", "ionwire.coupling.compare:load_config"),
    ("fig1e.toml", "ionwire.continuum.experiment:load_config"),
])
def test_run_configs_hold_the_parameter_set_with_the_file_layout_unchanged(name, loader):
    import importlib

    module, _, attr = loader.partition(":")
    load = getattr(importlib.import_module(module), attr)
    mapping = tomllib.loads((RUNS / name).read_text())
    cfg = load(mapping)
    assert type(cfg.params) is DeviceParameters
    assert cfg.params == from_mapping(DeviceParameters, {k: mapping[k] for k in
                                                         ("material", "vacancies", "geometry", "electrodes")
                                                         if k in mapping})
    assert cfg.material is cfg.params.material and cfg.electrodes is cfg.params.electrodes
    flat = to_mapping(cfg)
    assert "params" not in flat and flat["geometry"] == to_mapping(cfg.params.geometry)
    assert load(flat) == cfg  # the mapping round-trips through the same file layout
    el = cfg.with_params(electrodes=from_mapping(type(cfg.electrodes), {"alpha_um_per_V_s": {"Br": 1.0, "Cl": cfg.electrodes.alphas_um_per_V_s[1]}}))
    assert el.electrodes.alphas_um_per_V_s[0] == 1.0 and el.geometry == cfg.geometry
    with pytest.raises(ParameterError, match="params"):
        load({**mapping, "params": {}})  # the set is not a table of the file


def test_kmc_table_means_the_device_settings_everywhere():
    from ionwire.coupling.compare import device_config, load_config
    from ionwire.kmc.device import KMCSettings

    m = tomllib.loads((RUNS / "validate.toml").read_text())
    m["kmc"].update(hops=False, max_events=1234)
    cfg = load_config(m)
    assert isinstance(cfg.kmc, KMCSettings)
    dc = device_config(cfg, -4.0, 99)
    assert dc.params is cfg.params
    assert (dc.kmc.nx, dc.kmc.hops, dc.kmc.max_events, dc.kmc.field_V_per_um, dc.kmc.seed, dc.kmc.duration_s) == (
        8, False, 1234, -4.0, 99, cfg.compare.times_s[-1])
