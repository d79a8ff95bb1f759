"""Atomistic CsPbX3 structures (structures/atoms.py): composition, geometry, sampling, round trips."""
import numpy as np
import pytest
from ase.io import read, write
from ase.neighborlist import neighbor_list
from hypothesis import given, settings, strategies as st

from ionwire.structures.atoms import (BR, CL, VACANCY, crop_cells, front_position_um, heterojunction, occupancy_from_atoms,
                              occupancy_from_profile, perovskite_atoms, sample_continuum_window, select_frames,
                              trajectory_atoms)
from ionwire.structures.lattice import AnionLattice

A = 5.8


def _random_occupancy(lattice, rng, p=(0.45, 0.45, 0.10)):
    return rng.choice(np.array([BR, CL, VACANCY], dtype=np.uint8), size=lattice.n_sites, p=p)


@pytest.mark.parametrize("periodic_z", [True, False])
def test_counts_and_stoichiometry(periodic_z):
    lat = AnionLattice(3, 4, 5, periodic_z=periodic_z)
    occ = _random_occupancy(lat, np.random.default_rng(1))
    n_br, n_cl, n_v = (int(np.sum(occ == c)) for c in (BR, CL, VACANCY))
    assert n_v > 0 and n_br > 0 and n_cl > 0
    atoms = perovskite_atoms(lat, occ)
    sym = np.array(atoms.get_chemical_symbols())
    assert np.sum(sym == "Pb") == np.sum(sym == "Cs") == lat.n_cells == 60
    assert np.sum(sym == "Br") == n_br and np.sum(sym == "Cl") == n_cl
    assert len(atoms) == 2 * lat.n_cells + n_br + n_cl
    # CsPbX_{3-delta}: halides + vacancies = 3 per formula unit
    assert np.sum(sym == "Br") + np.sum(sym == "Cl") + n_v == 3 * np.sum(sym == "Pb")
    assert "X" not in sym
    marked = perovskite_atoms(lat, occ, vacancies="mark")
    msym = np.array(marked.get_chemical_symbols())
    assert np.sum(msym == "X") == n_v and len(marked) == len(atoms) + n_v
    assert tuple(atoms.pbc) == (True, True, periodic_z)
    assert np.allclose(atoms.cell.array, np.diag([3 * A, 4 * A, 5 * A]))


def test_positions_on_the_5p8_angstrom_lattice():
    lat = AnionLattice(3, 3, 4)
    atoms = perovskite_atoms(lat, np.zeros(lat.n_sites, dtype=np.uint8))  # pure CsPbBr3
    sym = np.array(atoms.get_chemical_symbols())
    pos = atoms.positions
    assert np.allclose(pos[sym == "Pb"] / A, np.round(pos[sym == "Pb"] / A))  # corners
    cs = pos[sym == "Cs"] / A - 0.5
    assert np.allclose(cs, np.round(cs))  # body centres
    # halides exactly at the anion sites of the lattice: one half-integer coordinate (units of a)
    x = pos[sym == "Br"] / (A / 2)
    assert np.allclose(x, np.round(x))
    assert np.all((np.round(x).astype(int) % 2).sum(axis=1) == 1)
    assert np.allclose(pos[sym == "Br"], lat.positions_A())
    # perovskite coordination, measured with ASE's neighbour list (periodic in all directions):
    # each Pb has 6 X at a/2 (octahedron), each Cs 12 X at a/sqrt(2), each X 2 Pb at a/2
    i, j, d = neighbor_list("ijd", atoms, A / np.sqrt(2) + 0.01)
    for centre, other, dist, count in (("Pb", "Br", A / 2, 6), ("Cs", "Br", A / np.sqrt(2), 12),
                                       ("Br", "Pb", A / 2, 2)):
        sel = (sym[i] == centre) & (sym[j] == other)
        assert np.allclose(d[sel], dist)
        assert np.all(np.bincount(i[sel], minlength=len(atoms))[sym == centre] == count)
    # nothing closer than a/2 (no overlapping atoms)
    assert d.min() == pytest.approx(A / 2)


@settings(max_examples=25, deadline=None)
@given(nx=st.integers(2, 4), ny=st.integers(2, 4), nz=st.integers(1, 4), periodic_z=st.booleans(),
       seed=st.integers(0, 2**32 - 1), mark=st.booleans())
def test_occupancy_round_trip_through_positions(nx, ny, nz, periodic_z, seed, mark):
    nz = max(nz, 2) if periodic_z else nz
    lat = AnionLattice(nx, ny, nz, periodic_z=periodic_z)
    occ = _random_occupancy(lat, np.random.default_rng(seed))
    atoms = perovskite_atoms(lat, occ, vacancies="mark" if mark else "omit")
    atoms.rattle(0.01, seed=seed)  # within the 0.05 A tolerance
    assert np.array_equal(occupancy_from_atoms(atoms, lat), occ)
    # the per-atom site array names the same sites
    site = atoms.arrays["anion_site"]
    halide = site >= 0
    code = {"Br": BR, "Cl": CL, "X": VACANCY}
    assert np.array_equal(occ[site[halide]], [code[s] for s in np.array(atoms.get_chemical_symbols())[halide]])


@pytest.mark.parametrize("suffix", ["traj", "extxyz"])
def test_file_round_trip_keeps_species_sites_and_time(tmp_path, suffix):
    lat = AnionLattice(2, 3, 4, periodic_z=False)
    rng = np.random.default_rng(7)
    states = [_random_occupancy(lat, rng) for _ in range(3)]
    frames = [perovskite_atoms(lat, occ, time_s=1e-9 * k) for k, occ in enumerate(states)]
    path = tmp_path / f"frames.{suffix}"
    write(path, frames)
    back = read(path, index=":")
    assert len(back) == 3
    for k, (occ, atoms) in enumerate(zip(states, back)):
        assert np.array_equal(occupancy_from_atoms(atoms, lat), occ)
        assert atoms.info["time_s"] == pytest.approx(1e-9 * k, rel=1e-12, abs=0)
        assert tuple(atoms.pbc) == (True, True, False)


def test_off_lattice_atom_and_bad_occupancy_are_errors():
    lat = AnionLattice(2, 2, 2)
    atoms = perovskite_atoms(lat, np.zeros(lat.n_sites, dtype=np.uint8))
    atoms.positions[-1] += [0.3, 0.0, 0.0]
    with pytest.raises(ValueError, match="not on an anion site"):
        occupancy_from_atoms(atoms, lat)
    with pytest.raises(ValueError, match="shape"):
        perovskite_atoms(lat, np.zeros(lat.n_sites - 1, dtype=np.uint8))
    with pytest.raises(ValueError, match="codes"):
        perovskite_atoms(lat, np.full(lat.n_sites, 3, dtype=np.uint8))
    with pytest.raises(ValueError, match="vacancies"):
        perovskite_atoms(lat, np.zeros(lat.n_sites, dtype=np.uint8), vacancies="show")


def test_profile_sampling_is_stratified_per_plane_and_unbiased():
    lat = AnionLattice(3, 3, 6, periodic_z=False)
    n_planes = lat.n_planes
    x_v = np.linspace(0.0, 0.2, n_planes)
    x_br = (1 - x_v) * np.linspace(1.0, 0.0, n_planes)
    n = lat.sites_per_plane()
    plane = lat.plane_index()
    counts = []
    for seed in range(300):
        occ = occupancy_from_profile(lat, x_br, x_v, rng=seed)
        c = np.stack([np.bincount(plane[occ == code], minlength=n_planes) for code in (BR, CL, VACANCY)])
        # each plane within one site of its target, for every sample
        assert np.all(np.abs(c[0] - x_br * n) < 1) and np.all(np.abs(c[2] - x_v * n) < 1)
        assert np.array_equal(c.sum(axis=0), n)
        counts.append(c)
    mean = np.mean(counts, axis=0)
    # stochastic rounding: per-sample sd <= 1/2, so the mean of 300 has sd <= 0.029; 5 sd bound
    assert np.all(np.abs(mean[0] - x_br * n) < 5 * 0.5 / np.sqrt(300))
    assert np.all(np.abs(mean[2] - x_v * n) < 5 * 0.5 / np.sqrt(300))
    # a function of z gives the same as the per-plane array
    f = occupancy_from_profile(lat, lambda z: np.interp(z, lat.plane_z_A(), x_br),
                               lambda z: np.interp(z, lat.plane_z_A(), x_v), rng=3)
    assert np.array_equal(f, occupancy_from_profile(lat, x_br, x_v, rng=3))
    with pytest.raises(ValueError, match="exceed"):
        occupancy_from_profile(lat, 0.7, 0.4)
    with pytest.raises(ValueError, match="x_br"):
        occupancy_from_profile(lat, np.ones(3))


def test_heterojunction_has_a_sharp_br_cl_interface():
    atoms = heterojunction(3, 3, 4, 6, x_v_br=0.05, x_v_cl=0.01, rng=2)
    sym = np.array(atoms.get_chemical_symbols())
    z = atoms.positions[:, 2]
    assert z[sym == "Br"].max() == pytest.approx(3.5 * A) and z[sym == "Cl"].min() == pytest.approx(4 * A)
    lat = AnionLattice(3, 3, 10, periodic_z=False)
    occ = occupancy_from_atoms(atoms, lat)
    plane = lat.plane_index()
    n = lat.sites_per_plane()
    n_v = np.bincount(plane[occ == VACANCY], minlength=lat.n_planes)
    assert np.all(np.abs(n_v[:8] - 0.05 * n[:8]) < 1) and np.all(np.abs(n_v[8:] - 0.01 * n[8:]) < 1)
    assert np.sum(sym == "Pb") == np.sum(sym == "Cs") == 90


def test_continuum_window_follows_the_profile():
    z_um = np.linspace(0.0, 2.0, 2001)
    x_v = np.full_like(z_um, 0.02)
    x_br = (1 - x_v) * 0.5 * (1 - np.tanh((z_um - 1.2) / 0.01))  # front near 1.2 um, ~20 nm wide
    # x_Br = 0.55 where tanh = 1 - 1.1 / 0.98; linear interpolation on the 1 nm grid: error << 1e-5 um
    assert front_position_um(z_um, x_br) == pytest.approx(1.2 + 0.01 * np.arctanh(1 - 1.1 / 0.98), abs=1e-5)
    atoms = sample_continuum_window(z_um, x_br, x_v, n_cells_z=60, cross_section=(3, 5), time_s=10.0, rng=0)
    lat = AnionLattice(3, 5, 60, periodic_z=False)
    assert len(atoms.get_chemical_symbols()) - np.sum(occupancy_from_atoms(atoms, lat) != VACANCY) == 2 * lat.n_cells
    assert atoms.info["time_s"] == 10.0
    z0 = atoms.info["z0_um"]
    assert z0 == pytest.approx(front_position_um(z_um, x_br) - 30 * A * 1e-4)
    occ = occupancy_from_atoms(atoms, lat)
    plane = lat.plane_index()
    n = lat.sites_per_plane()
    z_planes = z0 + lat.plane_z_A() * 1e-4
    target = np.interp(z_planes, z_um, x_br) * n
    got = np.bincount(plane[occ == BR], minlength=lat.n_planes)
    assert np.all(np.abs(got - target) < 1)
    # the window straddles the front: Br side on the left, Cl side on the right
    assert got[:10].sum() > 0.8 * n[:10].sum() and got[-10:].sum() < 0.2 * n[-10:].sum()
    # explicit window: nz from its length
    w = sample_continuum_window(z_um, x_br, x_v, z_window_um=(0.5, 0.5 + 20 * A * 1e-4), cross_section=(2, 2))
    assert np.sum(np.array(w.get_chemical_symbols()) == "Pb") == 2 * 2 * 20
    with pytest.raises(ValueError, match="inside the profile"):
        sample_continuum_window(z_um, x_br, x_v, z_window_um=(1.9, 2.5))


@pytest.mark.parametrize("spec, expected", [(None, [0, 1, 2, 3, 4]), (":", [0, 1, 2, 3, 4]), ("2", [2]),
                                            ("-1", [4]), ("1:4", [1, 2, 3]), ("::2", [0, 2, 4]),
                                            ("-2:", [3, 4]), ("3:100", [3, 4]), ("::-1", [4, 3, 2, 1, 0])])
def test_select_frames(spec, expected):
    assert select_frames(spec, 5).tolist() == expected


@pytest.mark.parametrize("spec, message", [("5", "out of range"), ("-6", "out of range"), ("a", "bad frame"),
                                           ("1:x", "integers"), ("::0", "zero"), ("4:2", "selects no"),
                                           ("1:2:3:4", "START:STOP"), ("1.5", "bad frame")])
def test_select_frames_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        select_frames(spec, 5)


class _FakeTrajectory:
    """The reader interface of kmc.h5md.Trajectory over in-memory arrays (no file)."""

    def __init__(self, lattice, states, times):
        self.lattice, self._states, self.times_s = lattice, states, np.asarray(times)
        self.n_frames = len(states)

    def species(self, i):
        return self._states[i]


def test_trajectory_atoms_yields_selected_frames_with_time():
    lat = AnionLattice(2, 2, 3, periodic_z=False)
    rng = np.random.default_rng(5)
    states = [_random_occupancy(lat, rng) for _ in range(4)]
    traj = _FakeTrajectory(lat, states, [0.0, 1e-6, 2e-6, 3e-6])
    got = list(trajectory_atoms(traj, [1, 3], vacancies="mark"))
    assert [a.info["frame"] for a in got] == [1, 3]
    assert [a.info["time_s"] for a in got] == [1e-6, 3e-6]
    for k, a in zip([1, 3], got):
        assert np.array_equal(occupancy_from_atoms(a, lat), states[k])


def test_crop_cells_keeps_the_cells_in_the_block():
    lat = AnionLattice(4, 3, 6, periodic_z=False)
    occ = _random_occupancy(lat, np.random.default_rng(11))
    sub, sub_occ = crop_cells(lat, occ, x=(1, 3), z=(2, 5))
    assert (sub.nx, sub.ny, sub.nz, sub.periodic_z) == (2, 3, 3, False)
    i, j, k = lat.site_cells()[:, :3].T
    keep = (i >= 1) & (i < 3) & (k >= 2) & (k < 5)
    # the same species at the same positions, shifted by the block origin (1, 0, 2) cells
    assert np.array_equal(sub_occ, occ[keep])
    assert np.allclose(sub.positions_A() + [A, 0, 2 * A], lat.positions_A()[keep])
    whole, whole_occ = crop_cells(AnionLattice(2, 2, 3), occ[:36])
    assert whole.periodic_z and np.array_equal(whole_occ, occ[:36])
    with pytest.raises(ValueError, match="z cells 4:7"):
        crop_cells(lat, occ, z=(4, 7))
    with pytest.raises(ValueError, match="x cells 3:4"):
        crop_cells(lat, occ, x=(3, 4))


def test_continuum_window_nearest_node_keeps_a_step_sharp():
    z_um = np.linspace(0.0, 1.0, 41)  # 25 nm grid, about 43 cells per spacing
    x_br = np.where(z_um < 0.5, 1.0, 0.0)  # step between the nodes at 0.475 and 0.5 um
    x_v = np.zeros_like(z_um)
    lat = AnionLattice(2, 2, 80, periodic_z=False)
    window = (0.45, 0.45 + 80 * A * 1e-4)
    plane = lat.plane_index()
    z_planes = 0.45 + lat.plane_z_A() * 1e-4
    for method, expected in (("nearest", np.where(z_planes < 0.4875, 1.0, 0.0)),
                             ("linear", np.interp(z_planes, z_um, x_br))):
        atoms = sample_continuum_window(z_um, x_br, x_v, z_window_um=window, cross_section=(2, 2),
                                        interpolation=method, rng=1)
        occ = occupancy_from_atoms(atoms, lat)
        frac = np.bincount(plane[occ == BR], minlength=lat.n_planes) / lat.sites_per_plane()
        assert np.all(np.abs(frac - expected) * lat.sites_per_plane() < 1), method
    # nearest: only pure planes; linear: a ramp with mixed planes over one grid spacing
    assert np.isin(expected, [0.0, 1.0]).sum() < lat.n_planes
    with pytest.raises(ValueError, match="interpolation"):
        sample_continuum_window(z_um, x_br, x_v, interpolation="cubic")
