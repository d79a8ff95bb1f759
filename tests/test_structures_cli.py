"""`ionwire export` and `ionwire snapshot` (coupling/commands/{export,snapshot}.py) end to end: options and
errors on a device trajectory (kmc.h5md writer) and on a continuum result (continuum.io writer)."""
import json

import matplotlib.image
import numpy as np
import pytest
from ase.io import read

from ionwire.coupling.cli import main
from ionwire.structures.atoms import occupancy_from_atoms
from ionwire.structures.lattice import AnionLattice

LATTICE = AnionLattice(3, 3, 8, periodic_z=False)
TIMES = np.array([0.0, 1e-7, 2e-7, 3e-7, 4e-7])


def _states(seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for f in range(len(TIMES)):
        occ = np.where(LATTICE.plane_index() < LATTICE.n_planes // 2 - f, 0, 1).astype(np.uint8)
        occ[rng.choice(LATTICE.n_sites, 5, replace=False)] = 2
        out.append(occ)
    return out


@pytest.fixture
def trajectory(tmp_path):
    """A device trajectory written by the device kMC's own H5MD writer."""
    from ionwire.kmc.h5md import OBSERVABLES, TrajectoryWriter

    path = tmp_path / "traj.h5"
    zeros = np.zeros(LATTICE.n_planes)
    with TrajectoryWriter.create(path, LATTICE, config={}, seed=0, counter_names=("events",)) as w:
        for k, (t, occ) in enumerate(zip(TIMES, _states())):
            w.write_frame(k, float(t), occ, {name: zeros for name in OBSERVABLES}, np.array([k]))
    return path


@pytest.mark.parametrize("suffix", ["extxyz", "traj"])
@pytest.mark.parametrize("frames, expected", [(None, [0, 1, 2, 3, 4]), ("1::2", [1, 3]), ("-1", [4])])
def test_export_round_trip_same_species_at_same_sites(trajectory, tmp_path, suffix, frames, expected, capsys):
    out = tmp_path / f"out.{suffix}"
    argv = ["export", str(trajectory), "-o", str(out)] + (["--frames", frames] if frames else [])
    assert main(argv) == 0
    assert f"wrote {len(expected)} frame(s)" in capsys.readouterr().out
    images = read(out, index=":")
    states = _states()
    assert [a.info["frame"] for a in images] == expected
    for k, atoms in zip(expected, images):
        assert atoms.info["time_s"] == pytest.approx(TIMES[k], rel=1e-12, abs=0)
        assert np.array_equal(occupancy_from_atoms(atoms, LATTICE), states[k])
        sym = np.array(atoms.get_chemical_symbols())
        assert np.sum(sym == "Pb") == np.sum(sym == "Cs") == LATTICE.n_cells
        assert np.sum(sym == "Br") + np.sum(sym == "Cl") == LATTICE.n_sites - 5
    assert not (tmp_path / f"out.{suffix}.part").exists()


def test_export_marks_vacancies_on_request(trajectory, tmp_path):
    out = tmp_path / "v.extxyz"
    assert main(["export", str(trajectory), "-o", str(out), "--vacancies", "mark", "--frames", "0"]) == 0
    (atoms,) = read(out, index=":")
    assert atoms.get_chemical_symbols().count("X") == 5


@pytest.mark.parametrize("args, message", [
    (["--frames", "7"], "--frames: frame 7 is out of range: the trajectory has 5 frames"),
    (["--frames", "2:1"], "selects no frames"),
    (["--frames", "a:b"], "must be integers"),
    (["-o", "OUT.pdb"], "cannot tell the output format"),
])
def test_export_errors_are_one_line(trajectory, tmp_path, capsys, args, message):
    argv = ["export", str(trajectory), "-o", str(tmp_path / "out.extxyz")] + args
    if "-o" in args:
        argv = ["export", str(trajectory)] + args
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire export: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.extxyz").exists()


def test_export_of_a_missing_or_foreign_file_is_an_error(trajectory, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "o.traj")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    assert main(["export", str(bad), "-o", str(tmp_path / "o.traj")]) == 2
    assert "ionwire export: error: " in capsys.readouterr().err


def test_snapshot_of_a_kmc_frame(trajectory, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["snapshot", str(trajectory), "--frame", "2", "-o", str(out), "--size", "500x200",
                 "--renderer", "png"]) == 0
    assert "frame 2" in capsys.readouterr().out
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (200, 500)


@pytest.mark.parametrize("args, message", [
    (["--frame", "5"], "--frame 5 is out of range: the trajectory has 5 frames"),
    (["--frame", "-6"], "out of range"),
])
def test_snapshot_bad_frame_is_one_error(trajectory, tmp_path, capsys, args, message):
    assert main(["snapshot", str(trajectory), "-o", str(tmp_path / "f.png")] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire snapshot: error: ") and message in err and err.count("\n") == 1


def test_snapshot_time_selects_the_nearest_frame(trajectory, tmp_path, capsys):
    assert main(["snapshot", str(trajectory), "--time-s", "2.6e-7", "-o", str(tmp_path / "t.png"),
                 "--renderer", "png", "--size", "300x100"]) == 0
    assert "frame 3 " in capsys.readouterr().out


def test_snapshot_z_cells_crops_the_wire(trajectory, tmp_path, capsys):
    assert main(["snapshot", str(trajectory), "--z-cells", "2:5", "-o", str(tmp_path / "c.png"),
                 "--renderer", "png", "--size", "300x100", "--frame", "0"]) == 0
    out = capsys.readouterr().out
    assert "cells 2:5 along z" in out
    # 3 cells of 3x3: 27 Pb + 27 Cs + 81 anion sites minus the vacancies among them
    k = LATTICE.site_cells()[:, 2]
    n_vac = int(np.sum(_states()[0][(k >= 2) & (k < 5)] == 2))
    assert f"{27 + 27 + 81 - n_vac} atoms" in out
    assert main(["snapshot", str(trajectory), "--z-cells", "6:9", "-o", str(tmp_path / "c.png")]) == 2
    assert "need 0 <= START < STOP <= 8" in capsys.readouterr().err


@pytest.fixture
def continuum_result(tmp_path):
    """A two-field continuum result file written by the continuum model's own writer."""
    from ionwire.continuum import io

    z = np.linspace(0.0, 4.0, 801)
    x_v = np.full((3, len(z)), 1e-3)
    path = tmp_path / "result.h5"
    io.create(path, config={"run": "test"})
    for field, speed in ((4.0, 0.5), (-4.0, 0.0)):
        x_br = np.stack([(1 - x_v[0]) * (z < 2.0 - speed * k) for k in range(3)])  # sharp front moving left
        io.append_run(path, {"z_um": z, "times_s": np.array([0.0, 3600.0, 7200.0]), "x_br": x_br,
                             "x_cl": 1 - x_v - x_br, "x_v": x_v, "phi_V": np.zeros_like(x_v)},
                      {"field_V_per_um": field})
    return path


def test_snapshot_of_a_continuum_result_samples_a_thin_wire_at_the_front(continuum_result, tmp_path, capsys):
    out = tmp_path / "cont.png"
    assert main(["snapshot", str(continuum_result), "--time-s", "3000", "--cells-z", "30", "--cross-section",
                 "3", "2", "-o", str(out), "--size", "600x200", "--renderer", "png"]) == 0
    msg = capsys.readouterr().out
    assert "field 4 V/um, output time 1 (t = 3600 s)" in msg
    # the window is centred on the front: x_Br = 0.55 between the grid points 1.495 and 1.5 um
    front = 1.495 + 0.005 * (0.999 - 0.55) / 0.999
    z0 = float(msg.split("sampled z0 = ")[1].split(" um")[0])
    assert z0 == pytest.approx(front - 15 * 5.8e-4, abs=6e-4)  # printed with 4 digits
    n_atoms = int(msg.split(" px, ")[1].split(" atoms")[0])
    assert 2 * 3 * 2 * 30 + 0.99 * 3 * 3 * 2 * 30 <= n_atoms <= 2 * 3 * 2 * 30 + 3 * 3 * 2 * 30
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (200, 600)
    for rgb in [(0.12, 0.70, 0.15), (0.15, 0.35, 0.95)]:  # Br and Cl on either side of the front
        assert np.any(np.all(np.abs(image[..., :3] - rgb) < 0.02, axis=-1))


def test_snapshot_of_a_continuum_result_errors(continuum_result, tmp_path, capsys):
    assert main(["snapshot", str(continuum_result), "--frame", "3", "-o", str(tmp_path / "x.png")]) == 2
    assert "--frame 3 is out of range: the continuum result has 3 output times" in capsys.readouterr().err
    assert main(["snapshot", str(continuum_result), "--z-window-um", "3.9", "4.5", "-o",
                 str(tmp_path / "x.png")]) == 2
    assert "inside the profile's range" in capsys.readouterr().err
    junk = tmp_path / "junk.dat"
    junk.write_text("hello")
    assert main(["snapshot", str(junk), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ionwire snapshot: error: cannot read {junk}") and err.count("\n") == 1


def test_snapshot_picks_the_run_of_a_multi_field_result(continuum_result, tmp_path, capsys):
    argv = ["snapshot", str(continuum_result), "--cells-z", "20", "--cross-section", "2", "2", "--size", "300x100",
            "--renderer", "png", "-o", str(tmp_path / "r.png")]
    assert main(argv + ["--field-V-per-um", "-4"]) == 0
    msg = capsys.readouterr().out
    # reverse field: the front stays at 2 um
    assert "field -4 V/um, output time 2 (t = 7200 s)" in msg
    z0 = float(msg.split("sampled z0 = ")[1].split(" um")[0])
    assert z0 == pytest.approx(1.995 + 0.005 * (0.999 - 0.55) / 0.999 - 10 * 5.8e-4, abs=6e-4)
    assert main(argv + ["--field-V-per-um", "1"]) == 2
    assert "no run at field 1.0 V/um" in capsys.readouterr().err


def test_snapshot_xy_cells_crops_the_cross_section(trajectory, tmp_path, capsys):
    argv = ["snapshot", str(trajectory), "-o", str(tmp_path / "c.png"), "--renderer", "png", "--size", "300x100",
            "--frame", "0"]
    assert main(argv + ["--xy-cells", "2", "3", "--z-cells", "0:4"]) == 0
    out = capsys.readouterr().out
    assert "2x3 cells across" in out
    i, j, k = LATTICE.site_cells()[:, :3].T
    n_vac = int(np.sum(_states()[0][(i < 2) & (k < 4)] == 2))
    assert f"{24 + 24 + 72 - n_vac} atoms" in out
    assert main(argv + ["--xy-cells", "4", "3"]) == 2
    assert "x cells 0:4 must satisfy" in capsys.readouterr().err


def test_export_crops_a_block_and_writes_the_wire_along_x(trajectory, tmp_path, capsys):
    from ionwire.structures.atoms import crop_cells

    out = tmp_path / "block.extxyz"
    assert main(["export", str(trajectory), "-o", str(out), "--frames", "0", "--z-cells", "2:5",
                 "--xy-cells", "2", "3"]) == 0
    assert "cells 2:5 along z, 2x3 cells across" in capsys.readouterr().out
    (atoms,) = read(out, index=":")
    a = LATTICE.lattice_constant_A
    # the wire axis (3 cells) is x now; the cross-section (2 x 3 cells) is y, z
    assert np.allclose(atoms.cell.lengths(), [3 * a, 2 * a, 3 * a])
    assert atoms.info["wire_axis"] == "x" and list(atoms.info["origin_cells"]) == [0, 0, 2]
    assert np.ptp(atoms.positions[:, 0]) > np.ptp(atoms.positions[:, 1])
    sym = np.array(atoms.get_chemical_symbols())
    assert np.sum(sym == "Pb") == np.sum(sym == "Cs") == 2 * 3 * 3
    sub, expected = crop_cells(LATTICE, _states()[0], x=(0, 2), y=(0, 3), z=(2, 5))
    assert np.array_equal(occupancy_from_atoms(atoms, sub), expected)


def test_export_keeps_the_model_axes_on_request_and_reports_json(trajectory, tmp_path, capsys):
    out = tmp_path / "z.extxyz"
    assert main(["export", str(trajectory), "-o", str(out), "--frames", "-1", "--wire-axis", "z", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == [4] and report["wire_axis"] == "z" and report["output"] == str(out)
    (atoms,) = read(out, index=":")
    assert len(atoms) == report["atoms_per_frame"] == 2 * LATTICE.n_cells + LATTICE.n_sites - 5
    assert atoms.cell.lengths()[2] == pytest.approx(8 * LATTICE.lattice_constant_A)
    assert np.array_equal(occupancy_from_atoms(atoms, LATTICE), _states()[4])


@pytest.mark.parametrize("args, message", [
    (["--z-cells", "5:12"], "--z-cells 5:12: need 0 <= START < STOP <= 8"),
    (["--z-cells", "a:b"], "--z-cells expected START:STOP"),
    (["--xy-cells", "4", "2"], "--xy-cells: x cells 0:4 must satisfy"),
])
def test_export_bad_crop_is_one_line(trajectory, tmp_path, capsys, args, message):
    out = tmp_path / "o.extxyz"
    assert main(["export", str(trajectory), "-o", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire export: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_snapshot_json_and_default_size(trajectory, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["snapshot", str(trajectory), "-o", str(out), "--renderer", "png", "--json", "--frame", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frame"] == 1 and report["time_s"] == pytest.approx(TIMES[1]) and report["cells"] == [3, 3, 8]
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (report["height_px"], report["width_px"]) and report["width_px"] == 1200
    # as tall as the wire needs: the atoms fill the picture above the annotation strip
    from ionwire.structures.snapshot import strip_height_px

    area = image[: image.shape[0] - strip_height_px(image.shape[0]), :, :3]
    rows, cols = np.nonzero(np.any(area < 0.9, axis=-1))
    assert np.ptp(cols) + 1 >= 0.95 * area.shape[1] and np.ptp(rows) + 1 >= 0.9 * area.shape[0]


def test_snapshot_refuses_a_continuum_window_too_long_to_resolve_atoms(continuum_result, tmp_path, capsys):
    out = tmp_path / "w.png"
    # 0.2 um = 345 cells: a solid band at 1200 px
    assert main(["snapshot", str(continuum_result), "--z-window-um", "1.0", "1.2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire snapshot: error: too long to resolve atoms") and err.count("\n") == 1
    assert "unit cells along the wire fit in 1200 px (this structure has 345)" in err and not out.exists()
    # the same window fits when the picture is wide enough
    assert main(["snapshot", str(continuum_result), "--z-window-um", "1.0", "1.2", "-o", str(out),
                 "--size", "4400x300", "--cross-section", "2", "2", "--renderer", "png"]) == 0
    assert matplotlib.image.imread(out).shape[:2] == (300, 4400)
