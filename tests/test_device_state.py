"""DeviceState: the arrays of a device replica, their memory, checkpoints and slot growth."""
import numpy as np
import pytest

from ionwire.kmc import _device_kernels as dk
from ionwire.kmc.device import DeviceSimulation, load_config
from ionwire.kmc.h5md import TrajectoryError
from ionwire.kmc.state import DEVICE_CHECKPOINT_KEYS, DeviceState


def _config(seed=3):
    return load_config({
        "vacancies": {"equilibrium_fraction": {"Br": 0.03}},
        "geometry": {"wire_length_um": 0.0058 * 3, "contact_width_um": 0.0058 * 0.5, "gap_um": 0.0058 * 2},
        "electrodes": {"alpha_um_per_V_s": {"Br": 2e7, "Cl": 3e6}, "r_d_form": "detailed_balance"},
        "kmc": {"nx": 3, "ny": 4, "field_V_per_um": 20.0, "seed": seed}})


def _same_run(a: DeviceSimulation, b: DeviceSimulation) -> bool:
    ca, cb = a.state_arrays(), b.state_arrays()
    return all(np.array_equal(ca[k], cb[k], equal_nan=ca[k].dtype.kind == "f") for k in DEVICE_CHECKPOINT_KEYS)


def test_memory_is_the_sum_of_every_array():
    sim = DeviceSimulation(_config())
    sim.advance(np.inf, 2000)
    st = sim.state
    groups = (st.vacancies, st.bonds, st.planes, st.clock)
    arrays = [v for g in groups for v in g] + [st.background]
    assert st.nbytes == sum(a.nbytes for a in arrays)
    assert st.vacancies.occ.nbytes == sim.lattice.n_sites  # one byte per site
    tables = [v for g in (sim.geometry, sim.field, sim.rates) for v in g if isinstance(v, np.ndarray)]
    assert sim.memory_bytes() == st.nbytes + sum(a.nbytes for a in tables)
    # the state owns the arrays the simulation exposes
    assert sim.occupancy is st.vacancies.occ and sim.counters is st.clock.counters


def test_checkpoint_round_trip_holds_the_integer_state_only():
    sim = DeviceSimulation(_config())
    sim.advance(np.inf, 2000)
    ck = sim.state.checkpoint()
    assert tuple(ck) == DEVICE_CHECKPOINT_KEYS
    n = sim.n_vacancies
    assert ck["vac_site"].shape == (n,) and ck["vac_cell"].shape == (n, 4) and ck["nxt"].shape == (n,)
    back = DeviceState.from_checkpoint(sim.lattice, ck).checkpoint()
    for k in DEVICE_CHECKPOINT_KEYS:
        assert back[k].dtype == ck[k].dtype and np.array_equal(back[k], ck[k]), k
    # copies, not views: running on never changes a checkpoint taken before
    occ0 = ck["occ"].copy()
    sim.advance(np.inf, 500)
    assert np.array_equal(ck["occ"], occ0) and not np.array_equal(sim.occupancy, occ0)


def test_slot_growth_leaves_the_trajectory_unchanged():
    cfg = _config(seed=5)
    ref = DeviceSimulation(cfg)
    small = DeviceSimulation(cfg)
    cap0, n0 = small.state.capacity, small.n_vacancies
    small.state.grow(n0 + 1)  # the kernel returns STATUS_FULL at once: grow, go on
    assert small.state.capacity < cap0
    for t in (1e-9, 1e-8, 3e-8):
        ref.advance(t)
        small.advance(t)
        assert _same_run(ref, small), t
    assert small.events > 5000 and small.state.capacity > n0 + 1  # it grew (at least once) on the way
    small.check_bookkeeping()
    with pytest.raises(ValueError, match="capacity"):
        small.state.grow(small.n_vacancies - 1)


def test_bad_checkpoints_are_named():
    sim = DeviceSimulation(_config())
    ck = sim.state.checkpoint()
    with pytest.raises(TrajectoryError, match="'rng'"):
        DeviceState.from_checkpoint(sim.lattice, {k: v for k, v in ck.items() if k != "rng"})
    with pytest.raises(TrajectoryError, match="occupancy"):
        DeviceState.from_checkpoint(sim.lattice, dict(ck, occ=ck["occ"][:-3]))
    with pytest.raises(TrajectoryError, match="plane arrays"):
        DeviceState.from_checkpoint(sim.lattice, dict(ck, L=ck["L"][:-1]))


def test_kernel_groups_are_named_tuples_of_the_kernel_types():
    sim = DeviceSimulation(_config())
    st = sim.state
    assert st.vacancies.occ.dtype == np.uint8 and st.vacancies.cell.shape[1] == 4
    assert st.clock.rng.dtype == np.uint64 and st.clock.counters.shape == (dk.N_COUNTERS,)
    assert st.planes.tree.shape[1] == dk.N_COMPONENTS and st.bonds.L.shape == (sim.lattice.n_planes - 1,)
    g = sim.geometry
    assert all(type(x) is int for x in (g.nx, g.ny, g.nz, g.a, g.b)) and g.a < g.b
    assert type(sim.field.gamma) is float and sim.field.c_up * sim.field.c_down == pytest.approx(1.0, rel=1e-15)
