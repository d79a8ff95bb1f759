"""Set-up memory of the kMC engines: the peak while a state is built stays close to the state.

tracemalloc sees every numpy allocation, so the peaks below are deterministic.  The per-site
arrays of the lattice are computed by integer arithmetic in blocks; the bulk state is drawn with
the same random permutation as ``Generator.permutation`` but held in 4 bytes per site.
"""
import tracemalloc

import numpy as np

from ionwire.kmc import device as D
from ionwire.kmc._kernels import VACANCY, rng_state_from_seed
from ionwire.kmc.bulk import BulkKMC
from ionwire.kmc.state import BulkState, _seed_sequences
from ionwire.structures.lattice import AnionLattice


def _peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _reference_cells(lat):
    idx = np.arange(lat.n_sites)
    c = idx // 3
    return np.stack([c % lat.nx, (c // lat.nx) % lat.ny, c // (lat.nx * lat.ny), idx % 3], axis=1)


def test_per_site_arrays_match_their_definition_across_blocks(monkeypatch):
    import ionwire.structures.lattice as L

    monkeypatch.setattr(L, "_CHUNK", 37)  # many blocks, the last one partial
    lat = AnionLattice(5, 3, 4)
    ref = _reference_cells(lat)
    assert np.array_equal(lat.site_cells(), ref)
    assert np.array_equal(lat.cells_of(np.arange(lat.n_sites)[::-7]), ref[::-7])
    half = 2 * ref[:, :3] + np.eye(3, dtype=np.int64)[ref[:, 3]]
    assert np.array_equal(lat.half_unit_positions(), half)
    assert np.array_equal(lat.positions_A(), 0.5 * lat.lattice_constant_A * half.astype(float))
    assert np.array_equal(lat.plane_index(), 2 * ref[:, 2] + (ref[:, 3] == 2))
    assert lat.cells_of(np.zeros(0, dtype=np.int64)).shape == (0, 4)


def test_bulk_random_state_is_the_permutation_draw():
    """The lean draw gives exactly the configuration of rng.permutation (same seed, same state)."""
    lat = AnionLattice(6, 5, 4)
    n_vac, x_cl = 17, 0.3
    state = BulkState.random(lat, x_cl, n_vac, seed=11)
    config_ss, events_ss = _seed_sequences(11)
    perm = np.random.default_rng(config_ss).permutation(lat.n_sites)
    n_cl = int(round(x_cl * (lat.n_sites - n_vac)))
    occ = np.zeros(lat.n_sites, dtype=np.uint8)
    occ[perm[:n_vac]] = VACANCY
    occ[perm[n_vac:n_vac + n_cl]] = 1
    assert np.array_equal(state.occupancy, occ)
    assert np.array_equal(state.rng_state, rng_state_from_seed(events_ss))
    state.check()


def test_bulk_set_up_peak_is_within_1p5_of_the_state():
    lat = AnionLattice(40, 40, 40)  # 192,000 sites: far above the O(n_vac) and fixed parts
    BulkKMC(BulkState.random(AnionLattice(4, 4, 4), 0.5, 3, 0))  # compile outside the measurement
    engine, peak = _peak(lambda: BulkKMC(BulkState.random(lat, 0.5, int(0.01 * lat.n_sites), 1)))
    state = engine.nbytes
    assert 14.0 < state / lat.n_sites < 15.0
    assert peak <= 1.5 * state, (peak / lat.n_sites, state / lat.n_sites)
    assert peak / lat.n_sites <= 25.0


def test_device_set_up_peak_is_within_1p5_of_the_state():
    D.DeviceSimulation(D.benchmark_config((4, 4, 64)))  # compile outside the measurement
    config = D.benchmark_config((16, 16, 512))
    sim, peak = _peak(lambda: D.DeviceSimulation(config))
    state = sim.memory_bytes()
    assert peak <= 1.5 * state, (peak / sim.lattice.n_sites, state / sim.lattice.n_sites)
    sim.check_bookkeeping()


def test_device_plane_lists_as_built_by_the_loop():
    planes = np.array([0, 0, 0, 2, 5, 5, 6], dtype=np.int64)
    head, tail, nxt, prv = D._sorted_plane_lists(planes, 8)
    assert head.tolist() == [0, -1, 3, -1, -1, 4, 6, -1]
    assert tail.tolist() == [2, -1, 3, -1, -1, 5, 6, -1]
    assert nxt.tolist() == [1, 2, -1, -1, 5, -1, -1]
    assert prv.tolist() == [-1, 0, 1, -1, -1, 4, -1]
    empty = D._sorted_plane_lists(np.zeros(0, dtype=np.int64), 3)
    assert [a.tolist() for a in empty] == [[-1] * 3, [-1] * 3, [], []]


def test_device_initial_state_is_the_per_plane_draw():
    """The lean device set-up gives exactly the state of the plain per-plane construction (same
    seed, same random draws), so trajectories are unchanged."""
    config = D.benchmark_config((6, 5, 80), seed=7)
    sim = D.DeviceSimulation(config)
    lat, lay = sim.lattice, sim.layout
    rng = np.random.default_rng(np.random.SeedSequence(sim.seed).spawn(2)[0])
    occ = np.empty(lat.n_sites, dtype=np.uint8)
    vac = []
    for p in range(lat.n_planes):
        sites = D.plane_sites(lat, p)
        occ[sites] = 0 if lay.x_cl_initial[p] < 0.5 else 1
        n_v = rng.binomial(len(sites), lay.x_v_eq[p])
        if n_v:
            chosen = np.sort(rng.choice(len(sites), size=n_v, replace=False))
            occ[sites[chosen]] = 2
            vac.append(sites[chosen])
    vac_site = np.concatenate(vac)
    planes = 2 * (vac_site // (3 * lat.nx * lat.ny)) + (vac_site % 3 == 2)
    head = np.full(lat.n_planes, -1)
    tail = np.full(lat.n_planes, -1)
    nxt = np.full(len(vac_site), -1)
    prv = np.full(len(vac_site), -1)
    for v, p in enumerate(planes):
        prv[v] = tail[p]
        if tail[p] >= 0:
            nxt[tail[p]] = v
        else:
            head[p] = v
        tail[p] = v
    got = sim.state.checkpoint()
    assert len(vac_site) > 10
    assert np.array_equal(got["occ"], occ) and np.array_equal(got["vac_site"], vac_site)
    assert np.array_equal(got["vac_cell"], _reference_cells(lat)[vac_site])
    for key, ref in (("head", head), ("tail", tail), ("nxt", nxt), ("prv", prv)):
        assert np.array_equal(got[key], ref), key
    assert np.array_equal(got["background"], np.bincount(planes, minlength=lat.n_planes))
