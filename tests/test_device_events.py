"""The device kMC's event structure (plane trees, bond factors, uniform-field multipliers,
reactions) against a brute-force enumeration written from docs/model.md alone: every possible event's
rate from the lattice's own neighbour/environment tables, the barrier formula, the potential of
an independent Poisson solve and the shared electrode_rates; then the frequency with which the
kernel picks each event from one frozen state against those rates (chi-square)."""
import dataclasses

import numpy as np
from scipy import stats

from ionwire.structures.parameters import electrode_rates
from ionwire.kmc.device import DeviceSimulation, load_config
from ionwire.kmc.electrostatics import solve_potential


def _state():
    cfg = load_config({
        "material": {"preset": "host"},
        "vacancies": {"equilibrium_fraction": {"Br": 0.06}},
        "geometry": {"wire_length_um": 0.0058 * 1.4, "contact_width_um": 0.0058 * 0.3,
                     "gap_um": 0.0058 * 0.6, "potential_imposed_at": "inner"},
        "electrodes": {"alpha_um_per_V_s": {"Br": 2e7, "Cl": 3e6}, "r_d_form": "detailed_balance"},
        "kmc": {"nx": 3, "ny": 3, "field_V_per_um": 40.0, "seed": 2}})
    sim = DeviceSimulation(cfg)
    sim.advance(np.inf, 3000)  # mix Br/Cl, move charge, create and destroy vacancies
    return cfg, sim


def _brute_force(cfg, sim):
    """dict event -> rate (1/s); events: ('hop', src, dst), ('create', site), ('refill', site, species)."""
    lat, lay, mat = sim.lattice, sim.layout, cfg.material
    occ = sim.occupancy
    nb = lat.neighbour_table()
    env = lat.environment_table()
    plane = lat.plane_index()
    phi = solve_potential(sim.charge_e(), lay.electrostatics)
    kT = mat.kT_eV
    E = mat.barriers.as_array()
    rates = {}
    for i in np.flatnonzero(occ == 2):
        for d in range(8):
            j = nb[i, d]
            if j < 0 or occ[j] == 2:
                continue
            x = occ[j]
            n_cl = sum(1 for e in env[i, d] if e >= 0 and occ[e] == 1)
            ea = E[x, 0] + (E[x, 1] - E[x, 0]) * n_cl / 4
            # halide j -> vacancy i: Gamma = nu0 exp(-[E_a + (e/2)(phi_j - phi_i)]/kT)
            g = mat.attempt_frequency_per_s * np.exp(-(ea + 0.5 * (phi[plane[j]] - phi[plane[i]])) / kT)
            key = ("hop", int(i), int(j))
            rates[key] = rates.get(key, 0.0) + g
    counts = sim.plane_counts()
    for side, electrode in ((1, lay.electrode_of_side[0]), (2, lay.electrode_of_side[1])):
        for p in np.flatnonzero(lay.contact == side):
            nh = counts[p, 0] + counts[p, 1]
            x_cl = counts[p, 1] / nh
            r_c, r_d = (float(v) for v in electrode_rates(cfg.params, x_cl, cfg.kmc.field_V_per_um, electrode))
            for site in np.flatnonzero(plane == p):
                if occ[site] == 2:
                    for sp, frac in ((0, counts[p, 0] / nh), (1, counts[p, 1] / nh)):
                        if frac > 0:
                            rates[("refill", int(site), sp)] = r_d * frac
                else:
                    rates[("create", int(site))] = r_c
    return rates


def _which(before, after):
    changed = np.flatnonzero(before != after)
    if len(changed) == 2:
        src = changed[after[changed] != 2][0]  # the vacancy left src
        dst = changed[after[changed] == 2][0]
        return ("hop", int(src), int(dst))
    (site,) = changed
    if after[site] == 2:
        return ("create", int(site))
    return ("refill", int(site), int(after[site]))


def test_total_rate_equals_brute_force_enumeration():
    cfg, sim = _state()
    rates = _brute_force(cfg, sim)
    kinds = {k[0] for k in rates}
    assert kinds == {"hop", "create", "refill"}  # the state exercises every kind of event
    es = sim.layout.electrostatics
    assert es.left_plane > 0 and es.right_plane < sim.lattice.n_planes - 1 and np.any(sim.charge_e() != 0)
    # electrode rates are tabulated on 4097 x_Cl points in the kernel: relative error < 1e-6
    assert sim.total_rate_per_s() == np.float64(sum(rates.values())) or \
        abs(sim.total_rate_per_s() / sum(rates.values()) - 1) < 1e-6


def test_event_selection_frequencies_match_the_rates():
    cfg, sim = _state()
    rates = _brute_force(cfg, sim)
    total = sum(rates.values())
    st = sim.state_arrays()
    before = sim.occupancy.copy()
    n = 3000
    seen = {}
    for trial in range(n):
        s2 = dict(st)
        s2["rng"] = np.random.SeedSequence([7, trial]).generate_state(4, dtype=np.uint64)
        one = DeviceSimulation.from_state(cfg, s2)
        one.advance(np.inf, 1)
        key = _which(before, one.occupancy)
        assert key in rates, key  # never an impossible event
        seen[key] = seen.get(key, 0) + 1
    keys = sorted(rates, key=lambda k: -rates[k])
    expected = np.array([n * rates[k] / total for k in keys])
    observed = np.array([seen.get(k, 0) for k in keys])
    # merge the rare events into one bin so that every expected count is >= 5
    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-2].tolist() + [obs[-2:].sum()], exp[:-2].tolist() + [exp[-2:].sum()]
    chi2, pval = stats.chisquare(obs, exp)
    assert len(exp) >= 10 and pval > 1e-4, (chi2, len(exp), pval)
