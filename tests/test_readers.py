"""A fresh device trajectory opened by the H5MD readers of the field: MDAnalysis, ZnH5MD (so
``ase.io``) and pyh5md.  Each reader must see the frames, times, box and (where the reader reads
species) the element counts of the simulated state."""
import numpy as np
import pytest

from ionwire.kmc.device import DeviceSimulation, load_config, run_device
from ionwire.kmc.h5md import SPECIES_Z, open_trajectory
from small_configs import tiny_device

CONFIG = tiny_device(duration_s=4e-9, seed=11)
N_FRAMES = 5
TIMES_S = np.arange(N_FRAMES) * 1e-9


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(path, config, occupancy at t = 0, occupancy at the end) of a fresh 5-frame device run."""
    config = load_config(CONFIG)
    path = tmp_path_factory.mktemp("readers") / "device.h5"
    summary = run_device(config, path)
    assert summary["completed"] and summary["frames"] == N_FRAMES
    first = DeviceSimulation(config).occupancy.copy()
    sim = DeviceSimulation(config)
    sim.advance(CONFIG["kmc"]["duration_s"])
    return path, config, first, sim.occupancy.copy()


def _counts(occupancy):
    """{"Br": n, "Cl": n, "X": n} of occupancy codes (vacancies are ASE's dummy element X)."""
    n = np.bincount(occupancy, minlength=3)
    return {"Br": int(n[0]), "Cl": int(n[1]), "X": int(n[2])}


def test_the_run_is_not_trivial(run):
    path, _, first, last = run
    with open_trajectory(path) as traj:
        assert np.array_equal(traj.species(0), first) and np.array_equal(traj.species(-1), last)
        assert traj.counters()["events"][-1] > 100
        assert repr(traj) == (f"Trajectory({str(path)!r}, 5 frames, t = 0-4e-09 s, 6x4x80 cells, "
                              f"{6 * 4 * 80 * 3} anion sites)")
    assert not np.array_equal(first, last)  # the state changed: frames are distinguishable
    assert _counts(first)["Br"] > 0 and _counts(first)["Cl"] > 0 and _counts(last)["X"] > 0


def test_mdanalysis_reads_frames_times_box_and_positions(run):
    mda = pytest.importorskip("MDAnalysis")
    path, _, _, _ = run
    with open_trajectory(path) as traj:
        lattice = traj.lattice
    # H5MD carries no topology MDAnalysis reads: an empty universe of the right size loads it
    u = mda.Universe.empty(lattice.n_sites, trajectory=False)
    u.load_new(str(path), format="H5MD")
    assert u.trajectory.units["length"] == "Angstrom" and u.trajectory.units["time"] == "s"
    assert len(u.trajectory) == N_FRAMES
    times_ps = [ts.time for ts in u.trajectory]  # MDAnalysis converts to ps
    np.testing.assert_allclose(times_ps, TIMES_S * 1e12, rtol=1e-12, atol=1e-9)
    for ts in (u.trajectory[0], u.trajectory[N_FRAMES - 1]):
        np.testing.assert_allclose(ts.dimensions, [*lattice.cell_A, 90.0, 90.0, 90.0], rtol=1e-6)
        np.testing.assert_allclose(u.atoms.positions, lattice.positions_A(), atol=1e-4)
        assert ts.data["step"] >= 0 and ts.data["x_V"].shape == (lattice.n_planes,)


def test_znh5md_and_ase_read_frames_box_and_elements(run):
    znh5md = pytest.importorskip("znh5md")
    from ase.io import read

    path, _, first, last = run
    with open_trajectory(path) as traj:
        lattice = traj.lattice
        middle = traj.species(2)
    io = znh5md.IO(str(path))
    assert len(io) == N_FRAMES
    images = read(str(path), index=":", format="znh5md")  # the ASE plugin of ZnH5MD
    assert len(images) == N_FRAMES
    for atoms, occ in ((images[0], first), (images[2], middle), (images[-1], last)):
        assert len(atoms) == lattice.n_sites
        symbols = atoms.get_chemical_symbols()
        assert {s: symbols.count(s) for s in ("Br", "Cl", "X")} == _counts(occ)
        np.testing.assert_allclose(atoms.cell.lengths(), lattice.cell_A, rtol=1e-12)
        assert tuple(atoms.pbc) == (True, True, False)
        np.testing.assert_allclose(atoms.positions, lattice.positions_A(), atol=1e-4)
    assert np.array_equal(images[-1].numbers, SPECIES_Z[last])  # site by site, not only counts


def test_pyh5md_reads_frames_times_box_and_elements(run):
    pyh5md = pytest.importorskip("pyh5md")
    path, _, first, last = run
    with open_trajectory(path) as traj:
        lattice = traj.lattice
    with pyh5md.File(str(path), "r") as f:
        anions = f.particles_group("anions")
        species = pyh5md.element(anions, "species")
        position = pyh5md.element(anions, "position")
        edges = pyh5md.element(anions["box"], "edges")
        for element in (species, position, edges):
            assert element.element_type == "TimeElement" and element.value.shape[0] == N_FRAMES
            np.testing.assert_allclose(element.time[()], TIMES_S, rtol=1e-12, atol=1e-24)
        np.testing.assert_allclose(edges.value[()], np.tile(lattice.cell_A, (N_FRAMES, 1)), rtol=1e-12)
        for i, occ in ((0, first), (N_FRAMES - 1, last)):
            z = species.get_by_idx(i)
            assert {35: "Br", 17: "Cl", 0: "X"}.keys() >= set(np.unique(z).tolist())
            assert {"Br": int(np.sum(z == 35)), "Cl": int(np.sum(z == 17)), "X": int(np.sum(z == 0))} == _counts(occ)
            np.testing.assert_allclose(position.get_by_idx(i), lattice.positions_A(), atol=1e-4)


def test_resume_after_reopen_keeps_the_position_dataset_in_step(run, tmp_path):
    """Truncating for a restart drops the virtual frames too: every reader still sees one length."""
    import h5py

    from ionwire.kmc.h5md import TrajectoryWriter

    path, _, _, _ = run
    copy = tmp_path / "copy.h5"
    copy.write_bytes(path.read_bytes())
    TrajectoryWriter.reopen(copy, 3).close()
    with h5py.File(copy, "r") as f:
        lengths = {f[name].shape[0] for name in ("particles/anions/position/value", "particles/anions/species/value",
                                                 "particles/anions/box/edges/value", "observables/x_V/value")}
    assert lengths == {3}
    with open_trajectory(copy) as traj:
        assert traj.n_frames == 3


def test_ovito_opens_the_extxyz_export_of_a_fresh_trajectory(run, tmp_path):
    """OVITO has no H5MD reader: the route is ``ionwire export`` to extxyz, which OVITO opens with
    every frame, the species of the exported structure and the wire along x."""
    ovito_io = pytest.importorskip("ovito.io")
    from collections import Counter

    import ase.io

    from ionwire.coupling.cli import main

    path, _, _, last = run
    out = tmp_path / "junction.extxyz"
    assert main(["export", str(path), "-o", str(out)]) == 0
    pipeline = ovito_io.import_file(str(out))
    assert pipeline.source.num_frames == N_FRAMES
    data = pipeline.compute(N_FRAMES - 1)
    types = data.particles.particle_types
    names = {t.id: t.name for t in types.types}
    ovito_counts = Counter(names[i] for i in types.array)
    ase_counts = Counter(ase.io.read(str(out), index=-1).get_chemical_symbols())
    assert ovito_counts == ase_counts
    # the anions OVITO sees are the simulated ones (vacancies are not exported as atoms)
    assert ovito_counts["Br"] == _counts(last)["Br"] and ovito_counts["Cl"] == _counts(last)["Cl"]
    cell = np.asarray(data.cell[:, :3])
    assert cell[0, 0] > 5 * max(cell[1, 1], cell[2, 2])  # the wire axis is horizontal (x)
