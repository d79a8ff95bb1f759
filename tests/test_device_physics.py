"""Device kMC physics: bookkeeping, exact electrostatics during runs, zero-bias
stationarity, the steady vacancy profile under bias against discrete Poisson-Boltzmann, electrode
reactions with hops off against the exact two-state relaxation, exact restart in-process.

Statistical tests use independent replicas (different seeds) for error bars and 4-sigma
tolerances (a false failure per check has probability ~6e-5 for Gaussian errors)."""
import dataclasses

import numpy as np
import pytest

from ionwire.structures.parameters import electrode_rates
from ionwire.kmc import _device_kernels as dk
from ionwire.kmc.device import DeviceSimulation, device_layout, load_config, plane_sites
from ionwire.kmc.electrostatics import poisson_boltzmann


def _config(**over):
    base = {
        "vacancies": {"equilibrium_fraction": {"Br": 1e-2}},
        "geometry": {"wire_length_um": 0.0232, "contact_width_um": 0.0058, "gap_um": 0.0116},
        "electrodes": {"alpha_um_per_V_s": {"Br": 3e5, "Cl": 1e4}},
        "kmc": {"nx": 8, "ny": 8, "field_V_per_um": 5.0, "duration_s": 1e-7, "seed": 3},
    }
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return load_config(base)


def test_bookkeeping_charge_species_and_potential_during_a_biased_run_with_reactions():
    """Plane counts, plane lists, vacancy cells, and the potential (vs an independent banded
    Poisson solve) stay exact; every event is counted once; charge changes only by reactions;
    halides change only by reactions; the outer-edge planes carry the imposed potentials."""
    cfg = _config(geometry={"potential_imposed_at": "outer", "wire_length_um": 0.0348, "gap_um": 0.0116,
                            "contact_width_um": 0.0058})
    sim = DeviceSimulation(cfg)
    es = sim.layout.electrostatics
    assert es.left_plane > 0 and es.right_plane < sim.lattice.n_planes - 1  # overhangs on both sides
    n_sites = sim.lattice.n_sites
    br0 = int((sim.occupancy == 0).sum())
    for _ in range(6):
        sim.advance(np.inf, 40_000)
        sim.check_bookkeeping()
        c = dict(zip(dk.COUNTER_NAMES, sim.counters))
        created = c["created_left"] + c["created_right"]
        annihilated = c["annihilated_left"] + c["annihilated_right"]
        assert c["events"] == c["hops_Br"] + c["hops_Cl"] + created + annihilated
        assert sim.charge_e().sum() == created - annihilated
        assert created == c["created_from_Br"] + c["created_from_Cl"]
        assert annihilated == c["refilled_Br"] + c["refilled_Cl"]
        assert int((sim.occupancy == 0).sum()) == br0 - c["created_from_Br"] + c["refilled_Br"]
        counts = sim.plane_counts()
        assert counts.sum() == n_sites and counts[:, 2].sum() == sim.n_vacancies
        phi = sim.potential_V()
        assert phi[es.left_plane] == pytest.approx(es.potential_left_V, abs=1e-12)
        assert phi[es.right_plane] == pytest.approx(0.0, abs=1e-12)
    assert created > 20 and annihilated > 20  # the check exercised reactions on both signs
    # reactions only on contact planes: vacancy count changes only there
    changed = np.flatnonzero(sim.plane_counts()[:, :2].sum(axis=1) + sim.plane_counts()[:, 2]
                             != sim.layout.sites_per_plane)
    assert changed.size == 0


def test_same_seed_same_trajectory_and_chunking_and_restart_do_not_matter():
    cfg = _config()
    a = DeviceSimulation(cfg)
    a.advance(3e-8)
    b = DeviceSimulation(cfg)
    for t in np.linspace(0, 3e-8, 17)[1:]:
        b.advance(t, 997)  # odd event budgets split the run at arbitrary points
        while b.time_s < t:
            b.advance(t, 997)
    c = DeviceSimulation(cfg)
    c.advance(1.3e-8)
    c = DeviceSimulation.from_state(cfg, c.state_arrays())  # checkpoint round trip
    c.advance(3e-8)
    for other in (b, c):
        assert other.events == a.events and other.time_s == a.time_s
        assert np.array_equal(other.occupancy, a.occupancy)
        assert np.array_equal(other.counters, a.counters)
        sa, so = a.state_arrays(), other.state_arrays()
        for k in ("rng", "fstate", "L", "istate"):
            assert np.array_equal(sa[k], so[k]), k
    assert a.events > 5_000


def _stationarity_replica(seed):
    cfg = _config(material={"formation_energy_eV": {"Br": 1.32, "Cl": 1.32}}, electrodes={"enabled": False},
                  kmc={"field_V_per_um": 0.0, "seed": seed, "nx": 12, "ny": 12})
    sim = DeviceSimulation(cfg)
    nb = 8
    bins = np.array_split(np.arange(sim.lattice.n_planes), nb)
    n_bin = np.array([sim.layout.sites_per_plane[b].sum() for b in bins])
    x0 = np.array([sim.background[b].sum() for b in bins]) / n_bin
    acc = np.zeros(nb)
    for i in range(40):
        sim.advance(2e-9 + i * 2.5e-10)
        acc += np.array([sim.plane_counts()[b, 2].sum() for b in bins]) / n_bin
    return acc / 40 - x0, sim


def test_zero_bias_no_reactions_profiles_stay_stationary():
    """Equal vacancy formation energies (so x_V^eq is the same in both segments and the
    background is uniform on average), zero bias, no reactions: the binned x_V profile keeps its
    initial values within noise (error bar from 12 replicas, Student t with 11 dof: P(|t| > 5)
    = 4e-4 per bin) and the total charge stays zero."""
    diffs = []
    for seed in range(12):
        d, sim = _stationarity_replica(seed)
        diffs.append(d)
        assert sim.charge_e().sum() == 0 and sim.counters[5:9].sum() == 0
    diffs = np.array(diffs)
    mean = diffs.mean(axis=0)
    err = diffs.std(axis=0, ddof=1) / np.sqrt(len(diffs))
    assert np.all(np.abs(mean) < 5 * err + 1e-12), (mean, err)


@pytest.mark.parametrize("nx,nz,x_v,field,t_warm,t_sample,n_rep", [(24, 20, 5e-3, 5.0, 1.5e-7, 1.2e-7, 12)])
def test_steady_vacancy_profile_under_bias_matches_discrete_poisson_boltzmann(nx, nz, x_v, field, t_warm,
                                                                            t_sample, n_rep):
    _check_pb(nx, nz, x_v, field, t_warm, t_sample, n_rep)


@pytest.mark.validate
def test_steady_vacancy_profile_poisson_boltzmann_long():
    _check_pb(32, 40, 5e-3, 5.0, 6e-7, 1.0e-6, 12)


def _check_pb(nx, nz, x_v, field, t_warm, t_sample, n_rep):
    """No reactions, fixed bias: zero current, so the vacancies reach the Boltzmann distribution of
    their Coulomb energy, whose mean-field form is the discrete Poisson-Boltzmann solution (the
    difference, ion correlations, is of order gamma * lambda_D / h ~ 0.05 kT here).  Planes are
    binned by four (two PbX2 + two CsX planes); error bars from 12 replicas that start from the
    same initial state and background with different kMC streams (Student t with 11 dof:
    P(|t| > 5) = 4e-4 per bin).  The steady state's mean squared z must also be O(1)."""
    length = nz * 5.8e-4
    cfg = load_config({
        "material": {"formation_energy_eV": {"Br": 1.32, "Cl": 1.32}, "barriers_eV": {"Br_in_Br": 0.25, "Br_in_Cl": 0.25, "Cl_in_Br": 0.25, "Cl_in_Cl": 0.25}},
        "vacancies": {"equilibrium_fraction": {"Br": x_v}},
        "geometry": {"wire_length_um": length, "contact_width_um": length / 4, "gap_um": length / 2},
        "electrodes": {"enabled": False},
        "kmc": {"nx": nx, "ny": nx, "field_V_per_um": field}})
    first = DeviceSimulation(cfg, seed=0)
    occ0, bg = first.occupancy.copy(), first.background.copy()
    profiles = []
    for seed in range(n_rep):
        sim = DeviceSimulation.from_occupancy(cfg, occ0, background=bg, seed=seed)
        sim.advance(t_warm)
        acc = np.zeros(sim.lattice.n_planes)
        for i in range(100):
            sim.advance(t_warm + (i + 1) * t_sample / 100)
            acc += sim.plane_counts()[:, 2]
        profiles.append(acc / 100)
    es = first.layout.electrostatics
    theta, phi = poisson_boltzmann(first.layout.sites_per_plane, bg, first.n_vacancies, es)
    expected = theta * first.layout.sites_per_plane
    P = len(expected)
    pairs = np.arange(P) // 4
    kmc = np.array([np.bincount(pairs, weights=p) for p in profiles])
    pb = np.bincount(pairs, weights=expected)
    mean = kmc.mean(axis=0)
    err = kmc.std(axis=0, ddof=1) / np.sqrt(n_rep)
    z = (mean - pb) / np.maximum(err, 1e-3 * pb)
    assert pb.max() / pb.min() > 2.5  # the bias really shapes the profile (test can fail)
    assert np.all(np.abs(z) < 5.0), np.round(z, 1)
    assert np.mean(z**2) < 3.5, np.mean(z**2)  # E = 11/9 for t_11 without bias


def test_hops_off_contact_vacancies_relax_to_rc_over_rc_plus_rd_at_rate_rc_plus_rd():
    """With hops frozen every contact site is an independent two-state Markov chain:
    P(vacant, t) = x_inf (1 - exp(-(r_c + r_d) t)) from an empty start, x_inf = r_c/(r_c + r_d),
    with r_c, r_d from the shared electrode_rates (positive electrode on the Br contact, negative
    on the Cl contact).  Compared at five times with binomial error bars (4 sigma)."""
    cfg = _config(vacancies={"equilibrium_fraction": {"Br": 0.2}}, material={"formation_energy_eV": {"Br": 1.32, "Cl": 1.34}},
                  electrodes={"alpha_um_per_V_s": {"Br": 1e6, "Cl": 3e5},
                              "r_d_form": "detailed_balance"},
                  kmc={"hops": False, "nx": 16, "ny": 16, "field_V_per_um": 1.0},
                  geometry={"wire_length_um": 0.058, "contact_width_um": 0.0116, "gap_um": 0.0348})
    ref = DeviceSimulation(cfg)
    lay = ref.layout
    occ = ref.occupancy.copy()
    occ[occ == 2] = 0  # wrong species in the Cl segment does not matter: refill below uses counts
    for p in range(ref.lattice.n_planes):
        occ[plane_sites(ref.lattice, p)] = 0 if lay.x_cl_initial[p] < 0.5 else 1
    sim = DeviceSimulation.from_occupancy(cfg, occ, seed=7)
    sides = {1: "positive", 2: "negative"}
    x_cl = {1: 0.0, 2: 1.0}
    checked = 0
    for side in (1, 2):
        r_c, r_d = (float(v) for v in electrode_rates(cfg.params, x_cl[side], 1.0, sides[side]))
        assert r_c > 0 and r_d > 0
        k = r_c + r_d
        x_inf = r_c / k
        planes = np.flatnonzero(lay.contact == side)
        n = lay.sites_per_plane[planes].sum()
        for f in (0.25, 0.5, 1.0, 2.0, 4.0):
            s = DeviceSimulation.from_occupancy(cfg, occ, seed=11 + side)
            s.advance(f / k)
            x = s.plane_counts()[planes, 2].sum() / n
            expect = x_inf * (1 - np.exp(-f))
            sigma = np.sqrt(expect * (1 - expect) / n)
            assert abs(x - expect) < 4 * sigma, (side, f, x, expect, sigma)
            checked += 1
        assert sim.plane_counts()[np.flatnonzero(lay.contact == 0), 2].sum() == 0  # nothing outside contacts
    assert checked == 10


@pytest.mark.parametrize("geometry", [
    {"wire_length_um": 0.0232, "contact_width_um": 0.0058, "gap_um": 0.0116},   # no overhang
    {"wire_length_um": 0.0348, "contact_width_um": 0.0058, "gap_um": 0.0116},   # 10 cells of overhang
    {"wire_length_um": 0.0348, "contact_width_um": 0.0087, "gap_um": 0.0116},   # 15 cells: odd planes
])
def test_contacts_cover_the_continuum_contact_volume_on_both_sides(geometry):
    """Plane p stands for the slab [z_p, z_p + a/2] (coupling.compare's mapping): each kMC contact
    holds exactly the planes whose slabs tile its region, and its site count equals the
    continuum's contact volume (the mesh overlap with the region, continuum.model.wire_problem)
    times the anion site density, on the left AND the right contact."""
    from ionwire.continuum.model import wire_problem

    cfg = _config(geometry=geometry)
    lay = device_layout(cfg)
    a_um = cfg.material.lattice_constant_A * 1e-4
    h = 0.5 * a_um
    prob = wire_problem(cfg.params, 5.0)
    z = prob.mesh.z_um
    for side, (lo, hi) in zip((1, 2), cfg.geometry.contacts_um()):
        planes = np.flatnonzero(lay.contact == side)
        # contiguous, tiling [lo, hi] exactly
        assert np.array_equal(planes, np.arange(planes[0], planes[-1] + 1))
        assert lay.plane_z_um[planes[0]] == pytest.approx(lo, abs=1e-9)
        assert lay.plane_z_um[planes[-1]] + h == pytest.approx(hi, abs=1e-9)
        kmc_sites = lay.sites_per_plane[planes].sum()
        cont_len = float(prob.mesh.overlap_um(lo, hi).sum())
        assert cont_len == pytest.approx(hi - lo, rel=1e-9)
        # continuum: length x cross-section x 3 anion sites per a^3 (a plane pair holds 3 nx ny sites)
        expected = cont_len / a_um * 3 * cfg.kmc.nx * cfg.kmc.ny
        n_planes = len(planes)
        if n_planes % 2 == 0:
            assert kmc_sites == round(expected)
        else:  # an odd number of planes: one extra or missing half-cell plane, nx ny / 2 on average
            assert abs(kmc_sites - expected) <= 0.5 * cfg.kmc.nx * cfg.kmc.ny
        assert n_planes == round((hi - lo) / h)
    # the imposed planes are the outer contact planes
    es = lay.electrostatics
    assert lay.contact[es.left_plane] == 1 and lay.contact[es.right_plane] == 2
    assert es.left_plane == np.flatnonzero(lay.contact == 1)[0]
    assert es.right_plane == np.flatnonzero(lay.contact == 2)[-1]
