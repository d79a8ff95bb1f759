"""Device kMC output and restart: H5MD trajectory contents, a run killed with
SIGKILL keeps its flushed frames and resumes bit-identical to the uninterrupted run, bad files
given to --resume are refused with one clear line and left untouched."""
import hashlib
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from ionwire.coupling.cli import main
from ionwire.kmc.device import DeviceSimulation, load_config, run_device
from ionwire.kmc.h5md import (OBSERVABLES, TrajectoryError, checkpoint_path, open_trajectory, read_checkpoint,
                              species_to_atomic_numbers)

CONFIG = """
[vacancies]
equilibrium_fraction = {{Br = 1e-2}}

[geometry]
wire_length_um = 0.0464
contact_width_um = 0.0116
gap_um = 0.0232

[electrodes]
alpha_um_per_V_s = {{Br = 1e5, Cl = 3e3}}

[kmc]
nx = 12
ny = 12
field_V_per_um = 3.0
duration_s = {duration}
seed = 4

[output]
frame_interval_s = {interval}
"""


def _write_config(path, duration=1e-8, interval=1e-9):
    path.write_text(CONFIG.format(duration=duration, interval=interval))
    return str(path)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def test_trajectory_layout_and_reader(tmp_path):
    cfg_path = _write_config(tmp_path / "dev.toml")
    config = load_config(cfg_path)
    out = tmp_path / "dev.h5"
    summary = run_device(config, out)
    assert summary["completed"] and summary["frames"] == 11
    sim = DeviceSimulation(config)
    sim.advance(1e-8)
    with open_trajectory(out) as traj:
        assert traj.n_frames == 11 and np.allclose(traj.times_s, np.arange(11) * 1e-9, rtol=1e-12, atol=0)
        assert (traj.lattice.nx, traj.lattice.ny, traj.lattice.nz, traj.lattice.periodic_z) == (12, 12, 80, False)
        assert np.array_equal(traj.species(-1), sim.occupancy)  # the file holds the simulated state
        assert np.array_equal(traj.species(0), DeviceSimulation(config).occupancy)
        for name in OBSERVABLES:
            assert traj.observable(name).shape == (11, 160)
        assert np.allclose(traj.observable("potential")[-1], sim.potential_V())
        assert traj.counters()["events"][-1] == sim.events
        assert traj.config["kmc"]["seed"] == 4 and traj.attributes["seed"] == 4
        assert np.allclose(traj.positions_A(), traj.lattice.positions_A(), atol=1e-4)
        assert np.array_equal(traj.static("background_vacancies"), sim.background)
    with h5py.File(out, "r") as f:  # the H5MD 1.1 skeleton
        assert list(f["h5md"].attrs["version"]) == [1, 1] and f["h5md/creator"].attrs["name"] == "ionwire"
        assert [str(b) for b in f["particles/anions/box"].attrs["boundary"]] == ["periodic", "periodic", "none"]
        sp = f["particles/anions/species/value"]
        assert sp.dtype == np.uint8 and sp.maxshape == (None, 12 * 12 * 80 * 3) and sp.compression == "gzip"
        assert "library_versions" in f["parameters"].attrs and "code_version" in f["parameters"].attrs


def test_sigkill_then_resume_is_bit_identical_to_the_uninterrupted_run(tmp_path):
    # ~1e6 events (a few seconds): long enough that the kill always lands mid-run
    cfg_path = _write_config(tmp_path / "dev.toml", duration=1e-6, interval=2.5e-8)
    config = load_config(cfg_path)
    ref = tmp_path / "ref.h5"
    run_device(config, ref)  # no checkpoints at all: chunking must not matter either
    out = tmp_path / "run.h5"
    ck = checkpoint_path(out)
    cmd = [sys.executable, "-m", "ionwire.coupling.cli", "device", cfg_path, "-o", str(out), "--checkpoint-every", "100000",
           "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while not os.path.exists(ck) and proc.poll() is None and time.time() - t0 < 120:
        time.sleep(0.02)
    time.sleep(0.1)  # let it write frames past the checkpoint: resume must drop and redo them
    assert proc.poll() is None, "the run finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ref_data = _datasets(ref)
    with open_trajectory(out) as traj:  # every flushed frame is readable and already exact
        n_killed = traj.n_frames
        assert 1 <= n_killed < 41
        for i in range(n_killed):
            assert np.array_equal(species_to_atomic_numbers(traj.species(i)), ref_data["particles/anions/species/value"][i])
    arrays, attrs = read_checkpoint(ck)
    assert not attrs["run_complete"]
    res = subprocess.run(cmd[:-3] + ["--resume", "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = _datasets(out)
    assert set(got) == set(ref_data)
    for name, value in ref_data.items():
        assert np.array_equal(got[name], value), name
    end_ref, _ = read_checkpoint(checkpoint_path(ref))
    end_run, attrs = read_checkpoint(ck)
    assert attrs["run_complete"]
    for k, v in end_ref.items():
        assert np.array_equal(end_run[k], v), k
    assert got["observables/counters/value"][-1, 0] > 100_000  # a real run, not a trivial one


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    cfg_path = _write_config(d / "dev.toml", duration=4e-9, interval=1e-9)
    out = d / "ok.h5"
    run_device(load_config(cfg_path), out)
    return cfg_path, out


def _resume_fails(capsys, cfg_path, path, expect):
    before = _sha(path)
    rc = main(["device", cfg_path, "-o", str(path), "--resume", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("ionwire device: error:")
    assert str(path) in err and expect in err, err
    assert _sha(path) == before  # left untouched


def test_truncated_trajectory_is_refused_and_untouched(finished, tmp_path, capsys):
    cfg_path, good = finished
    bad = tmp_path / "truncated.h5"
    data = open(good, "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    os.link(checkpoint_path(good), checkpoint_path(bad))
    _resume_fails(capsys, cfg_path, bad, "HDF5")


def test_foreign_and_non_hdf5_files_are_refused_and_untouched(finished, tmp_path, capsys):
    cfg_path, _ = finished
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(10)
        f.create_group("h5md")
    _resume_fails(capsys, cfg_path, foreign, "not an ionwire device trajectory")
    text = tmp_path / "text.h5"
    text.write_text("hello\n")
    _resume_fails(capsys, cfg_path, text, "not a readable HDF5 file")


def test_resume_needs_a_matching_checkpoint_and_config(finished, tmp_path, capsys):
    cfg_path, good = finished
    lonely = tmp_path / "lonely.h5"
    lonely.write_bytes(open(good, "rb").read())
    _resume_fails(capsys, cfg_path, lonely, "checkpoint")
    other_cfg = tmp_path / "other.toml"
    other_cfg.write_text(open(cfg_path).read().replace("seed = 4", "seed = 5"))
    before = _sha(good)
    rc = main(["device", str(other_cfg), "-o", str(good), "--resume", "--quiet"])
    assert rc == 2 and "different config" in capsys.readouterr().err and _sha(good) == before
    # a new run does not silently overwrite an existing trajectory
    rc = main(["device", cfg_path, "-o", str(good), "--quiet"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err and _sha(good) == before
    # resuming a finished run is a no-op
    assert main(["device", cfg_path, "-o", str(good), "--resume", "--quiet"]) == 0 and _sha(good) == before


def test_config_errors_name_the_key(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text(CONFIG.format(duration=1e-9, interval=1e-9).replace("nx = 12", "nx = 12\ncolour = 3"))
    assert main(["device", str(p), "-o", str(tmp_path / "x.h5")]) == 2
    assert "kmc.colour" in capsys.readouterr().err
    p.write_text(CONFIG.format(duration=-1e-9, interval=1e-9))
    assert main(["device", str(p), "-o", str(tmp_path / "x.h5")]) == 2
    assert "duration_s" in capsys.readouterr().err
    with pytest.raises(TrajectoryError, match="does not exist"):
        open_trajectory(tmp_path / "missing.h5")


@pytest.mark.validate
def test_device_small_heterojunction_runs_and_is_consistent(tmp_path):
    """runs/device_small.toml end to end through the CLI: all frames, counters consistent with
    the profiles (vacancy number change = created - annihilated), Cl entering the Br segment
    under forward bias never makes a plane's fractions leave [0, 1]."""
    out = tmp_path / "small.h5"
    assert main(["device", "runs/device_small.toml", "-o", str(out), "--quiet"]) == 0
    with open_trajectory(out) as traj:
        assert traj.n_frames == 101
        n_sites = traj.static("sites_per_plane")
        xv = traj.observable("x_V")
        c = traj.counters()
        nv = (xv * n_sites).round().sum(axis=1)
        created = c["created_left"] + c["created_right"]
        annihilated = c["annihilated_left"] + c["annihilated_right"]
        assert np.array_equal(nv - nv[0], created - annihilated)
        total = traj.observable("x_Br") + traj.observable("x_Cl") + xv
        assert np.allclose(total, 1.0)
        assert c["events"][-1] > 500_000 and created[-1] > 100
