"""Shared kMC kernels (kmc/_kernels.py) against brute force and reference implementations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ionwire.kmc import _kernels as K
from ionwire.structures.lattice import AnionLattice

BARRIERS = np.array([[0.25, 0.27], [0.29, 0.31]])  # all four different: exercises the n_Cl logic


# ---------------------------------------------------------------------------------------------
# sum tree
# ---------------------------------------------------------------------------------------------
def _brute_select(leaves, u):
    """Leaf whose cumulative interval [c_{q-1}, c_q) contains u * total."""
    c = np.cumsum(leaves)
    return int(np.searchsorted(c, u * c[-1], side="right"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e3)), min_size=1, max_size=70),
       st.lists(st.tuples(st.integers(0, 69), st.one_of(st.just(0.0), st.floats(1e-3, 1e3))), max_size=30),
       st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=30))
def test_sum_tree_matches_brute_force(leaves, updates, us):
    leaves = np.array(leaves)
    n = leaves.size
    tree = K.tree_new(n)
    g = tree.size // 10
    assert K.tree_capacity(n) == 8 * g >= n and g & (g - 1) == 0
    tree[2 * g:2 * g + n] = leaves
    K.tree_build(tree)
    for q, r in updates:  # mix single-leaf and 8-leaf updates
        q %= n
        leaves[q] = r
        if q % 2:
            K.tree_update(tree, q, r)
        else:
            first = 8 * (q // 8)
            block = np.zeros(8)
            block[:min(8, n - first)] = leaves[first:first + 8]
            K.tree_update8(tree, first, block)
    assert np.isclose(K.tree_total(tree), leaves.sum(), rtol=1e-12, atol=1e-12)
    for q in range(n):
        assert K.tree_leaf(tree, q) == leaves[q]
    if leaves.sum() == 0:
        assert K.tree_select(tree, 0.5) == -1 and K.tree_select_pair(tree, 0.5) == (-1, -1)
        return
    c = np.cumsum(leaves)
    for u in us:
        q = K.tree_select(tree, u)
        assert 0 <= q < n and leaves[q] > 0  # never a zero-rate leaf
        expected = _brute_select(leaves, u)
        # identical except when u * total sits on an interval edge within round-off
        if q != expected:
            x = u * c[-1]
            assert abs(c[min(q, expected)] - x) <= 1e-9 * c[-1]


def test_sum_tree_selection_frequencies():
    rng = np.random.default_rng(4)
    leaves = rng.random(40) * (rng.random(40) < 0.7)
    tree = K.tree_new(40)
    g = tree.size // 10
    tree[2 * g:2 * g + 40] = leaves
    K.tree_build(tree)
    n = 200_000
    counts = np.bincount([K.tree_select(tree, u) for u in rng.random(n)], minlength=40)
    p = leaves / leaves.sum()
    assert np.all(counts[p == 0] == 0)
    # chi-square goodness of fit, 30ish degrees of freedom: p-value 1e-6 cut
    nz = p > 0
    chi2 = np.sum((counts[nz] - n * p[nz]) ** 2 / (n * p[nz]))
    assert chi2 < 30 + 10 * np.sqrt(2 * 30)


# ---------------------------------------------------------------------------------------------
# random numbers
# ---------------------------------------------------------------------------------------------
def _xoshiro_reference(state, n):
    """Straight transcription of xoshiro256++ (Blackman & Vigna) in Python integers."""
    m = (1 << 64) - 1
    s = [int(v) for v in state]
    out = []
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & m
    for _ in range(n):
        out.append((rotl((s[0] + s[3]) & m, 23) + s[0]) & m)
        t = (s[1] << 17) & m
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def test_xoshiro_matches_reference_and_restores():
    state = K.rng_state_from_seed(123)
    ref = _xoshiro_reference(state.copy(), 50)
    saved = state.copy()
    got = [int(K.rng_next(state)) for _ in range(50)]
    assert got == ref
    state[:] = saved
    u = [K.rng_uniform(state) for _ in range(50)]
    assert u == [(v >> 11) * 2.0**-53 for v in ref]
    assert all(0.0 <= x < 1.0 for x in u)
    assert not np.array_equal(K.rng_state_from_seed(1), K.rng_state_from_seed(2))
    assert np.array_equal(K.rng_state_from_seed(7), K.rng_state_from_seed(7))


# ---------------------------------------------------------------------------------------------
# local environment and rates
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("periodic_z", [True, False])
def test_local10_contains_targets_and_environments(periodic_z):
    lat = AnionLattice(4, 3, 5, periodic_z=periodic_z)
    nx, ny, nz, pz = lat.numba_args()
    nb, env, cells = lat.neighbour_table(), lat.environment_table(), lat.site_cells()
    deltas = K.local_deltas(nx, ny)
    out, out_fast = np.empty(10, np.int64), np.empty(10, np.int64)
    for site in range(lat.n_sites):
        i, j, k, s = cells[site]
        K.local_sites(i, j, k, s, nx, ny, nz, pz, out)
        K.local_sites_fast(i, j, k, s, nx, ny, nz, pz, deltas, out_fast)
        assert np.array_equal(out, out_fast)
        assert np.array_equal(out[:8], nb[site])
        for d in range(8):
            assert np.array_equal(out[K.ENV_LOCAL[s, d]], env[site, d])
        # the two octahedron-opposite sites: 2 half-units (one cell) away along the site's own axis
        for l, sign in ((8, -1), (9, 1)):
            step = np.zeros(3, dtype=np.int64)
            step[s] = sign
            ijk = np.array([i, j, k]) + step
            if not periodic_z and not 0 <= ijk[2] < nz:
                assert out[l] == -1
            else:
                ijk %= np.array([nx, ny, nz])
                assert out[l] == ((ijk[2] * ny + ijk[1]) * nx + ijk[0]) * 3 + s


def _brute_rate(occ, site, target, env_sites, dz, field_half_eV, kT, nu0=1e13):
    if target < 0 or occ[target] == 2:
        return 0.0
    x = occ[target]
    n_cl = sum(1 for e in env_sites if e >= 0 and occ[e] == 1)
    ea = BARRIERS[x, 0] + (BARRIERS[x, 1] - BARRIERS[x, 0]) * n_cl / 4.0
    return nu0 * np.exp(-(ea - dz * field_half_eV) / kT)


@pytest.mark.parametrize("periodic_z", [True, False])
def test_hop_rates_match_model(periodic_z):
    """Rates of every vacancy hop = docs/model.md section 4, field factor exp(+e E dz_vacancy / 2kT)."""
    lat = AnionLattice(4, 3, 5, periodic_z=periodic_z)
    nx, ny, nz, pz = lat.numba_args()
    nb, env, cells, pos = lat.neighbour_table(), lat.environment_table(), lat.site_cells(), lat.half_unit_positions()
    kT, fh = 0.025, 0.004
    table = K.rate_table(BARRIERS, 1e13, kT, fh)
    occ = np.random.default_rng(0).integers(0, 3, lat.n_sites).astype(np.uint8)
    local, rates = np.empty(10, np.int64), np.empty(8)
    for site in range(lat.n_sites):
        i, j, k, s = cells[site]
        K.local_sites(i, j, k, s, nx, ny, nz, pz, local)
        vac = K.hop_rates8(occ, local, s, table, rates)
        for l in range(10):
            assert bool((vac >> l) & 1) == (local[l] >= 0 and occ[local[l]] == 2)
        for d in range(8):
            t = nb[site, d]
            dz = 0
            if t >= 0:
                dz = pos[t, 2] - pos[site, 2]
                if abs(dz) > 1:  # periodic wrap
                    dz = -np.sign(dz)
            assert rates[d] == pytest.approx(_brute_rate(occ, site, t, env[site, d], dz, fh, kT), rel=1e-12)


def test_detailed_balance_of_every_hop():
    """Zero field: a hop and its reverse have the same rate (same environment), so the uniform
    distribution over configurations is stationary.  In a field the ratio is the Boltzmann factor
    of the vacancy's potential-energy change, exp(2 dz field_half / kT)."""
    lat = AnionLattice(3, 3, 4)
    nx, ny, nz, pz = lat.numba_args()
    cells = lat.site_cells()
    rng = np.random.default_rng(1)
    kT = 0.025
    for fh in (0.0, 0.003):
        table = K.rate_table(BARRIERS, 1e13, kT, fh)
        local, rates, back = np.empty(10, np.int64), np.empty(8), np.empty(8)
        for _ in range(30):
            occ = rng.integers(0, 2, lat.n_sites).astype(np.uint8)
            v = rng.integers(lat.n_sites)
            occ[v] = 2
            i, j, k, s = cells[v]
            K.local_sites(i, j, k, s, nx, ny, nz, pz, local)
            K.hop_rates8(occ, local, s, table, rates)
            for d in range(8):
                t = local[d]
                after = occ.copy()
                after[v], after[t] = after[t], 2
                i2, j2, k2, s2 = cells[t]
                loc2 = np.empty(10, np.int64)
                K.local_sites(i2, j2, k2, s2, nx, ny, nz, pz, loc2)
                K.hop_rates8(after, loc2, s2, table, back)
                d_back = int(np.flatnonzero(loc2[:8] == v)[0])
                dz = K.HOP_DZ[s, d]
                assert rates[d] / back[d_back] == pytest.approx(np.exp(2 * dz * fh / kT), rel=1e-12)


def test_incremental_rates_equal_fresh_rates_after_many_events():
    """After every chunk of hops, the tree's leaves equal rates recomputed from scratch: the local
    update after a hop (moved vacancy + vacancies in the local10 of src and dst) is complete."""
    lat = AnionLattice(5, 4, 6)
    nx, ny, nz, _ = lat.numba_args()
    rng = np.random.default_rng(2)
    occ = (rng.random(lat.n_sites) < 0.4).astype(np.uint8)
    vs = rng.choice(lat.n_sites, 40, replace=False).astype(np.int64)  # 11 %: many vacancy pairs
    occ[vs] = 2
    disp = np.zeros((lat.n_sites, 3), np.int32)
    disp[vs, 0] = np.arange(vs.size)
    vc = lat.site_cells()[vs].copy()
    vd = np.zeros((vs.size, 3), np.int64)
    table = K.rate_table(BARRIERS, 1e13, 0.025, 0.002)
    tree = K.tree_new(8 * vs.size)
    K.init_bulk_rates(occ, vc, tree, table, nx, ny, nz, True)
    rs = K.rng_state_from_seed(3)
    coll, hops, clock = np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.zeros(1)
    n0 = occ.size - vs.size
    for _ in range(20):
        assert K.run_bulk_events(occ, disp, vs, vc, vd, tree, table, nx, ny, nz, 500, rs, coll, hops, clock) == 500
        fresh = np.zeros_like(tree)
        K.init_bulk_rates(occ, vc, fresh, table, nx, ny, nz, True)
        g = tree.size // 10
        assert np.array_equal(tree[2 * g:], fresh[2 * g:])
        assert np.allclose(tree[:2 * g], fresh[:2 * g], rtol=1e-12)
        assert np.all(occ[vs] == 2) and np.count_nonzero(occ == 2) == vs.size
        assert np.array_equal(disp[vs, 0], np.arange(vs.size))
        assert np.array_equal(lat.site_cells()[vs], vc)
    assert hops.sum() == 10_000 and np.count_nonzero(occ != 2) == n0
