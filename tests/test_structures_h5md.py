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
    """The file is H5MD 1.1 as the pyh5md reader understands it: the /h5md metadata group with the
    units module, a particles group with a time-dependent box, time-dependent positions (the
    virtual dataset over the fixed sites) and species stored as atomic numbers."""
    from ionwire.kmc.h5md import SPECIES_Z

    with pyh5md.File(str(trajectory), "r") as f:  # pyh5md checks /h5md/author and /h5md/creator
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/author"].attrs["name"]
        assert f["h5md/creator"].attrs["name"] == "ionwire" and "version" in f["h5md/creator"].attrs
        assert list(f["h5md/modules/units"].attrs["version"]) == [1, 0]
        anions = f.particles_group("anions")
        box = anions["box"]
        assert int(box.attrs["dimension"]) == 3
        assert [b.decode() if isinstance(b, bytes) else b for b in box.attrs["boundary"]] == \
            ["periodic", "periodic", "none"]
        edges = pyh5md.element(box, "edges")
        assert edges.element_type == "TimeElement" and edges.value.shape == (len(TIMES), 3)
        assert np.allclose(edges.value[()], LATTICE.cell_A[None, :], rtol=1e-15)
        position = pyh5md.element(anions, "position")
        assert position.element_type == "TimeElement"
        assert position.value.shape == (len(TIMES), LATTICE.n_sites, 3) and position.value.is_virtual
        assert position.value.attrs["unit"] == "angstrom"
        for i in (0, len(TIMES) - 1):
            assert np.allclose(position.get_by_idx(i), LATTICE.positions_A(), atol=1e-5)
        species = pyh5md.element(anions, "species")
        assert species.element_type == "TimeElement"
        assert np.array_equal(species.step[()], STEPS)
        assert np.allclose(species.time[()], TIMES, rtol=1e-15)
        assert np.allclose(position.time[()], TIMES, rtol=1e-15)
        for i, occ in enumerate(_states()):
            assert np.array_equal(species.get_by_idx(i), SPECIES_Z[occ])
        for name in OBSERVABLES + ("counters",):
            obs = pyh5md.element(f["observables"], name)
            assert obs.element_type == "TimeElement" and obs.value.shape[0] == len(TIMES)
            assert np.array_equal(obs.step[()], STEPS)


def test_species_are_stored_as_atomic_numbers_and_read_back_as_codes(trajectory):
    import h5py

    from ionwire.kmc.h5md import atomic_numbers_to_species, species_to_atomic_numbers

    codes = np.array([0, 1, 2, 2, 0], dtype=np.uint8)
    assert species_to_atomic_numbers(codes).tolist() == [35, 17, 0, 0, 35]
    assert np.array_equal(atomic_numbers_to_species(species_to_atomic_numbers(codes)), codes)
    with pytest.raises(ValueError, match="atomic number 53"):
        atomic_numbers_to_species(np.array([35, 53], dtype=np.uint8))
    with pytest.raises(ValueError, match="occupancy codes"):
        species_to_atomic_numbers(np.array([0, 3], dtype=np.uint8))
    with h5py.File(trajectory, "r") as f:
        raw = f["particles/anions/species/value"][1]
    assert sorted(set(raw.tolist())) == [0, 17, 35]
    with open_trajectory(trajectory) as traj:
        assert np.array_equal(traj.species(1), _states()[1])


def test_format_1_trajectories_are_still_read(tmp_path):
    """A trajectory of the first format (private species codes, time-independent positions) keeps
    reading through open_trajectory; appending to it is refused with one clear error."""
    import h5py

    from ionwire.kmc.h5md import TrajectoryError

    path = tmp_path / "v1.h5"
    occ = _states()
    with h5py.File(path, "w") as f:
        f.create_group("h5md").attrs["version"] = np.array([1, 1], dtype=np.int32)
        a = f.create_group("particles/anions")
        a.create_dataset("position", data=LATTICE.positions_A().astype(np.float32))
        sp = a.create_group("species")
        sp["value"] = np.stack(occ)
        sp["step"], sp["time"] = STEPS, TIMES
        obs = f.create_group("observables")
        for name in OBSERVABLES + ("counters",):
            g = obs.create_group(name)
            g["value"] = np.zeros((len(TIMES), 2 if name == "counters" else LATTICE.n_planes))
            g["step"], g["time"] = STEPS, TIMES
        obs["counters"].attrs["columns"] = np.array([b"events", b"hops"])
        par = f.create_group("parameters")
        par.attrs.update({"format": "ionwire-device-h5md", "format_version": 1, "config": "{}", "seed": 1,
                          "nx": LATTICE.nx, "ny": LATTICE.ny, "nz": LATTICE.nz, "lattice_constant_A": 5.8,
                          "frames_complete": len(TIMES), "species_written": True})
    with open_trajectory(path) as traj:
        assert traj.n_frames == len(TIMES) and traj.format_version == 1
        assert np.array_equal(traj.species(2), occ[2])
        assert np.allclose(traj.positions_A(), LATTICE.positions_A(), atol=1e-5)
    with pytest.raises(TrajectoryError, match="format version 1"):
        TrajectoryWriter.reopen(path, 2)
