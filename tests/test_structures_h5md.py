"""Device-kMC trajectories (kmc/h5md.py, written by its own writer) -> ASE and pictures, and the file's
H5MD compatibility checked with the standard reader pyh5md."""
import matplotlib.image
import numpy as np
import pyh5md  # the standard H5MD reader (test extra)
import pytest
from ase.io import read

from ionwire.coupling.cli import main
from ionwire.kmc.h5md import OBSERVABLES, TrajectoryWriter, open_trajectory
from ionwire.structures.atoms import occupancy_from_atoms
from ionwire.structures.lattice import AnionLattice

LATTICE = AnionLattice(3, 2, 6, periodic_z=False)
TIMES = np.array([0.0, 2.5e-9, 5.0e-9, 1.0e-8])
STEPS = np.array([0, 100, 200, 400])


def _states():
    """A Br | Cl junction whose front moves one plane per frame, with a few vacancies."""
    rng = np.random.default_rng(12)
    plane = LATTICE.plane_index()
    out = []
    for f in range(len(TIMES)):
        occ = np.where(plane < LATTICE.n_planes // 2 - f, 0, 1).astype(np.uint8)
        occ[rng.choice(LATTICE.n_sites, 4, replace=False)] = 2
        out.append(occ)
    return out


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5md") / "device.h5"
    zeros = np.zeros(LATTICE.n_planes)
    with TrajectoryWriter.create(path, LATTICE, config={"run": "test"}, seed=5, counter_names=("events", "hops")) as w:
        for step, t, occ in zip(STEPS, TIMES, _states()):
            w.write_frame(int(step), float(t), occ, {name: zeros for name in OBSERVABLES}, np.array([step, step]))
    return path


def test_reader_sees_what_was_written(trajectory):
    with open_trajectory(trajectory) as traj:
        assert traj.n_frames == len(TIMES) and np.array_equal(traj.times_s, TIMES)
        assert traj.lattice == LATTICE
        for i, occ in enumerate(_states()):
            assert np.array_equal(traj.species(i), occ)


@pytest.mark.parametrize("suffix", ["extxyz", "traj"])
def test_h5md_to_ase_round_trip_same_species_at_same_sites(trajectory, tmp_path, suffix):
    out = tmp_path / f"frames.{suffix}"
    # the model's axes (the default export turns the wire along x for viewers)
    assert main(["export", str(trajectory), "-o", str(out), "--wire-axis", "z"]) == 0
    images = read(out, index=":")
    states = _states()
    assert len(images) == len(TIMES)
    for i, atoms in enumerate(images):
        assert atoms.info["time_s"] == pytest.approx(TIMES[i], rel=1e-12, abs=0)
        assert atoms.info["frame"] == i
        assert np.array_equal(occupancy_from_atoms(atoms, LATTICE), states[i])
        sym = np.array(atoms.get_chemical_symbols())
        # stoichiometry per frame: one Pb and one Cs per cell, 3 anion sites per cell minus vacancies
        assert np.sum(sym == "Pb") == np.sum(sym == "Cs") == LATTICE.n_cells
        assert np.sum(sym == "Br") == np.sum(states[i] == 0) and np.sum(sym == "Cl") == np.sum(states[i] == 1)
        assert np.sum(sym == "Br") + np.sum(sym == "Cl") + 4 == 3 * LATTICE.n_cells
        assert tuple(atoms.pbc) == (True, True, False)
        assert np.allclose(atoms.cell.lengths(), LATTICE.cell_A)
    # the halide positions are the positions stored in the H5MD file (float32 there)
    with open_trajectory(trajectory) as traj:
        stored = traj.positions_A()
    site = images[0].arrays["anion_site"] if suffix == "extxyz" else None
    if site is not None:
        halide = site >= 0
        assert np.allclose(images[0].positions[halide], stored[site[halide]], atol=1e-5)


def test_export_frame_slice_and_errors(trajectory, tmp_path, capsys):
    out = tmp_path / "some.extxyz"
    assert main(["export", str(trajectory), "-o", str(out), "--frames", "1::2"]) == 0
    assert [a.info["frame"] for a in read(out, index=":")] == [1, 3]
    capsys.readouterr()
    for frames, message in (("4", "frame 4 is out of range: the trajectory has 4 frames"),
                            ("1:2:0", "STEP must not be zero"), ("x", "bad frame selection")):
        assert main(["export", str(trajectory), "-o", str(tmp_path / "e.traj"), "--frames", frames]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ionwire export: error: --frames: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "e.traj").exists()


def test_truncated_file_is_one_clear_error(trajectory, tmp_path, capsys):
    data = trajectory.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 3])
    assert main(["export", str(bad), "-o", str(tmp_path / "t.traj")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire export: error: ") and str(bad) in err and err.count("\n") == 1
    assert main(["snapshot", str(bad), "-o", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire snapshot: error: cannot read") and err.count("\n") == 1


def test_snapshot_of_a_trajectory_frame(trajectory, tmp_path, capsys):
    out = tmp_path / "frame.png"
    assert main(["snapshot", str(trajectory), "--frame", "1", "-o", str(out), "--size", "640x240",
                 "--renderer", "png"]) == 0
    assert "frame 1 (t = 2.5e-09 s)" in capsys.readouterr().out
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (240, 640)
    from ionwire.structures.snapshot import ELEMENT_COLOURS
    for element in ("Br", "Cl", "Cs", "Pb"):
        assert np.any(np.all(np.abs(image[..., :3] - ELEMENT_COLOURS[element]) < 0.02, axis=-1)), element
    assert main(["snapshot", str(trajectory), "--frame", "-5", "-o", str(out)]) == 2
    assert "--frame -5 is out of range: the trajectory has 4 frames" in capsys.readouterr().err


def test_trajectory_opens_in_the_standard_h5md_reader_pyh5md(trajectory):
    """The file is H5MD 1.1 as the pyh5md reader understands it: the /h5md metadata group, a
    particles group with its box, time-independent positions and time-dependent species."""
    with pyh5md.File(str(trajectory), "r") as f:  # pyh5md checks /h5md/author and /h5md/creator
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/author"].attrs["name"]
        assert f["h5md/creator"].attrs["name"] == "ionwire" and "version" in f["h5md/creator"].attrs
        anions = f.particles_group("anions")
        box = anions["box"]
        assert int(box.attrs["dimension"]) == 3
        assert [b.decode() if isinstance(b, bytes) else b for b in box.attrs["boundary"]] == \
            ["periodic", "periodic", "none"]
        assert np.allclose(pyh5md.element(box, "edges").value[()], LATTICE.cell_A)
        position = pyh5md.element(anions, "position")
        assert position.element_type == "FixedElement"
        assert np.allclose(position.value[()], LATTICE.positions_A(), atol=1e-5)
        species = pyh5md.element(anions, "species")
        assert species.element_type == "TimeElement"
        assert np.array_equal(species.step[()], STEPS)
        assert np.allclose(species.time[()], TIMES, rtol=1e-15)
        for i, occ in enumerate(_states()):
            assert np.array_equal(species.get_by_idx(i), occ)
        for name in OBSERVABLES + ("counters",):
            obs = pyh5md.element(f["observables"], name)
            assert obs.element_type == "TimeElement" and obs.value.shape[0] == len(TIMES)
            assert np.array_equal(obs.step[()], STEPS)
