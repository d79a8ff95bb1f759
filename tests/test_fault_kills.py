"""Kill and interrupt real ``ionwire`` processes in every phase: set-up, prepare (a calibration),
runs, reduce; SIGINT (Ctrl-C), SIGTERM (``kill``, a batch time limit) and SIGKILL.

Each scenario asserts the exit status, the one line the interrupted process prints, that no
worker outlives the killed process by more than a few seconds, and that ``--resume`` (or a new
run on the same output) is accepted at once and completes.  The run types ``SlowToy`` below are
the campaign toy of tests/campaign_toy.py with a prepare() and a reduce() that wait, so that a
signal can be sent while the campaign is inside them.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from process_helpers import foreground_signals

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from campaign_toy import Toy  # noqa: E402

WAIT_S = 180.0  # the longest any phase may take to show up on this loaded machine


class SlowToy(Toy):
    """The toy with a prepare() and a reduce() that announce themselves in a file and wait."""

    name = "slow_toy"

    @staticmethod
    def prepare(config):
        _phase("prepare")
        time.sleep(float(os.environ.get("SLOW_TOY_PREPARE_S", "0")))
        return {"scale": 1.0}

    @staticmethod
    def bind(config, prepared):
        return config

    @staticmethod
    def reduce(config, points, results, outdir):
        (Path(outdir) / "reduce_started.txt").write_text("reduce output")
        _phase("reduce")
        time.sleep(float(os.environ.get("SLOW_TOY_REDUCE_S", "0")))
        return Toy.reduce(config, points, results, outdir)


class GilToy(Toy):
    """The toy whose runs spend minutes in one C call that holds the GIL (no other Python thread
    of the worker runs meanwhile, so a parent watch written as a Python thread cannot act)."""

    name = "gil_toy"

    @staticmethod
    def run(config, point, outdir):
        (Path(outdir) / "started").write_text("")
        sum(range(10**11))  # about an hour of C loop; the tests kill it within seconds
        return Toy.run(config, point, outdir)


def _phase(name: str) -> None:
    path = os.environ.get("SLOW_TOY_PHASES")
    if path:
        with open(path, "a") as fh:
            fh.write(name + "\n")


TOY = """run = "test_fault_kills:SlowToy"
samples = 500
seed = 7
sleep_s = {sleep}
[sweep]
dimension = [2, 3, 4, 5]
replicas = 2
"""

DEVICE = """run = "device"
[vacancies]
equilibrium_fraction = {{Br = 2e-2}}
[geometry]
wire_length_um = 0.0116
contact_width_um = 0.00116
gap_um = 0.00928
[electrodes]
alpha_um_per_V_s = {{Br = 2e3, Cl = 60.0}}
[kmc]
nx = 2
ny = 2
field_V_per_um = 1.0
duration_s = {duration}
seed = 3
[output]
frame_interval_s = {interval}
species = true
"""


def _env(tmp_path: Path, **extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["SLOW_TOY_PHASES"] = str(tmp_path / "phases.txt")
    env["IONWIRE_QUIET_COMPILE"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _start(argv, env, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ionwire.coupling.cli", *map(str, argv)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=foreground_signals)


def _run(argv, env, cwd, timeout=WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ionwire.coupling.cli", *map(str, argv)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _wait_for(predicate, what: str, timeout=WAIT_S) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _phases(tmp_path: Path) -> list[str]:
    p = tmp_path / "phases.txt"
    return p.read_text().split() if p.exists() else []


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=WAIT_S)
    return proc.returncode, out, err


# --------------------------------------------------------------------------------------------
# campaigns: a signal in each phase, then --resume at once
# --------------------------------------------------------------------------------------------
def _campaign(tmp_path, sleep=0.0, **env_extra):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(TOY.format(sleep=sleep))
    out = tmp_path / "out"
    argv = ["campaign", cfg, "-o", out, "--workers", "2", "--no-progress"]
    return argv, out, _env(tmp_path, **env_extra)


def _resume_completes(argv, env, tmp_path, out):
    res = _run(argv + ["--resume", "--json"], env.copy() | {"SLOW_TOY_PREPARE_S": "0", "SLOW_TOY_REDUCE_S": "0"},
               tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["n_runs"] == 8 and report["n_failed"] == 0
    assert report["n_resumed"] + report["n_new"] == 8
    assert json.loads((out / "summary.json").read_text())["volumes"]["2"]["replicas"] == 2
    return report


def _kill_and_check_no_orphans(proc, sig):
    workers = _descendants(proc.pid)
    os.kill(proc.pid, sig)
    rc, out, err = _finish(proc)
    _wait_for(lambda: not any(_alive(p) for p in workers), "the workers to exit after their parent", timeout=10)
    return rc, out, err


# the default test run kills one campaign in its runs and one in prepare(); the other signals
# and phases run with -m validate (each scenario takes 10-20 s on a loaded machine)
VALIDATE = pytest.mark.validate


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGKILL, marks=VALIDATE),
                                 pytest.param(signal.SIGINT, marks=VALIDATE)], ids=["TERM", "KILL", "INT"])
def test_campaign_signal_during_the_runs_then_resume(tmp_path, sig):
    argv, out, env = _campaign(tmp_path, sleep=1.0)
    proc = _start(argv, env, tmp_path)
    _wait_for(lambda: (out / "runs" / ".partial").is_dir() and any((out / "runs" / ".partial").iterdir()),
              "a run to start")
    time.sleep(0.3)
    rc, _, err = _kill_and_check_no_orphans(proc, sig)
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
    else:
        assert rc == 130, err
        assert len(_lines(err)) == 1 and _lines(err)[0].startswith("ionwire campaign: interrupted, ")
        assert _lines(err)[0].endswith("--resume")
    t0 = time.monotonic()
    report = _resume_completes(argv, env, tmp_path, out)
    assert report["n_new"] >= 1
    assert time.monotonic() - t0 < WAIT_S


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGTERM, marks=VALIDATE), signal.SIGKILL], ids=["TERM", "KILL"])
def test_campaign_signal_during_prepare_then_resume(tmp_path, sig):
    argv, out, env = _campaign(tmp_path, SLOW_TOY_PREPARE_S=60)
    proc = _start(argv, env, tmp_path)
    _wait_for(lambda: "prepare" in _phases(tmp_path), "prepare() to start")
    rc, _, err = _kill_and_check_no_orphans(proc, sig)
    assert rc == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    if sig == signal.SIGTERM:
        assert len(_lines(err)) == 1 and _lines(err)[0].startswith("ionwire campaign: interrupted, 0 of 8")
    assert not (out / "prepare.json").exists()
    report = _resume_completes(argv, env, tmp_path, out)
    assert report["n_new"] == 8


@pytest.mark.validate
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_campaign_signal_during_reduce_then_resume_and_overwrite(tmp_path, sig):
    argv, out, env = _campaign(tmp_path, SLOW_TOY_REDUCE_S=60)
    proc = _start(argv, env, tmp_path)
    _wait_for(lambda: "reduce" in _phases(tmp_path), "reduce() to start")
    rc, _, err = _kill_and_check_no_orphans(proc, sig)
    assert rc == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    assert not (out / "summary.json").exists()
    report = _resume_completes(argv, env, tmp_path, out)
    assert report["n_resumed"] == 8 and report["n_new"] == 0
    # what the killed reduce() wrote is the campaign's: --overwrite may remove it
    res = _run(argv + ["--overwrite"], env | {"SLOW_TOY_REDUCE_S": "0"}, tmp_path)
    assert res.returncode == 0, res.stderr


@pytest.mark.validate
def test_campaign_sigterm_during_set_up_leaves_a_resumable_folder(tmp_path):
    argv, out, env = _campaign(tmp_path, SLOW_TOY_PREPARE_S=60)
    proc = _start(argv, env, tmp_path)
    _wait_for(lambda: (out / "campaign.json").exists(), "the campaign folder")
    rc, _, err = _kill_and_check_no_orphans(proc, signal.SIGTERM)
    assert rc == 130, err
    _resume_completes(argv, env, tmp_path, out)


@pytest.mark.validate
def test_a_second_campaign_on_a_running_folder_is_refused(tmp_path):
    argv, out, env = _campaign(tmp_path, SLOW_TOY_PREPARE_S=60)
    proc = _start(argv, env, tmp_path)
    try:
        _wait_for(lambda: "prepare" in _phases(tmp_path), "prepare() to start")
        res = _run(argv + ["--resume"], env, tmp_path)
        assert res.returncode == 2
        assert _lines(res.stderr) == [f"ionwire campaign: error: {out} is in use by another running campaign "
                                      f"(process {proc.pid})"]
    finally:
        _kill_and_check_no_orphans(proc, signal.SIGKILL)
    _resume_completes(argv, env, tmp_path, out)


# --------------------------------------------------------------------------------------------
# device: Ctrl-C and SIGTERM write a checkpoint; a killed run resumes from the periodic one
# --------------------------------------------------------------------------------------------
def _device(tmp_path, duration=2e-4, interval=2e-6):
    cfg = tmp_path / "device.toml"
    cfg.write_text(DEVICE.format(duration=duration, interval=interval))
    return cfg


def _start_device_and_wait(cfg, out, env, tmp_path, frames=3, extra=()):
    """Start a device run and return once it has reported ``frames`` frames, with the run still
    going.  Lines are read as they come (a blocking read, no sleep between lines), so the test
    never falls behind the run it is about to signal."""
    proc = _start(["device", cfg, "-o", out, *extra], env, tmp_path)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"frame {frames}/"):
            break
    else:
        raise AssertionError(f"the device run ended before frame {frames}: {''.join(seen)}")
    assert proc.poll() is None, f"the device run ended before it could be signalled: {''.join(seen)}"
    return proc, seen


def _trajectory_arrays(path):
    from ionwire.kmc.h5md import open_trajectory

    with open_trajectory(path) as traj:
        return np.asarray(traj.times_s), np.array([traj.species(i) for i in range(traj.n_frames)])


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, marks=VALIDATE), signal.SIGTERM], ids=["INT", "TERM"])
def test_device_interrupt_writes_a_checkpoint_and_resume_is_bit_identical(tmp_path, sig):
    cfg = _device(tmp_path)
    env = _env(tmp_path)
    out = tmp_path / "d.h5"
    proc, seen = _start_device_and_wait(cfg, out, env, tmp_path)
    os.kill(proc.pid, sig)
    rc, _, err = _finish(proc)
    lines = [ln for ln in _lines(err) if not ln.startswith("frame ")]
    assert rc == 130, "".join(seen) + err
    assert len(lines) == 1 and lines[0].startswith("ionwire device: interrupted (checkpoint written at frame ")
    assert f"-o {out} --resume" in lines[0]
    assert Path(str(out) + ".checkpoint").exists()
    res = _run(["device", cfg, "-o", out, "--resume", "--quiet", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["completed"]
    if sig == signal.SIGINT:  # against an uninterrupted run of the same config and seed
        ref = tmp_path / "ref.h5"
        assert _run(["device", cfg, "-o", ref, "--quiet"], env, tmp_path).returncode == 0
        (t1, s1), (t2, s2) = _trajectory_arrays(out), _trajectory_arrays(ref)
        assert np.array_equal(t1, t2) and np.array_equal(s1, s2)
    else:
        times, _ = _trajectory_arrays(out)
        assert len(times) == 101 and times[-1] == pytest.approx(2e-4, rel=1e-12)


@pytest.mark.validate
def test_device_sigkill_resumes_from_the_periodic_checkpoint(tmp_path):
    cfg = _device(tmp_path)
    env = _env(tmp_path)
    out = tmp_path / "d.h5"
    proc, _ = _start_device_and_wait(cfg, out, env, tmp_path, frames=20, extra=("--checkpoint-every", "0.2s"))
    os.kill(proc.pid, signal.SIGKILL)
    assert _finish(proc)[0] == -signal.SIGKILL
    res = _run(["device", cfg, "-o", out, "--resume", "--quiet", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    times, _ = _trajectory_arrays(out)
    assert len(times) == 101


@pytest.mark.validate
def test_two_device_runs_on_one_output(tmp_path):
    cfg = _device(tmp_path)
    env = _env(tmp_path)
    out = tmp_path / "d.h5"
    proc, _ = _start_device_and_wait(cfg, out, env, tmp_path, frames=2)
    try:
        res = _run(["device", cfg, "-o", out, "--overwrite"], env, tmp_path)
        assert res.returncode == 2
        assert _lines(res.stderr) == [f"ionwire device: error: output {out} is in use by another running process "
                                      f"(process {proc.pid})"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _finish(proc)
    # the holder is dead: its lock went with it, the output can be written at once
    res = _run(["device", cfg, "-o", out, "--overwrite", "--quiet"], env, tmp_path)
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------------------------
# bulk and continuum
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=VALIDATE)], ids=["INT", "TERM"])
def test_bulk_stops_at_once_on_an_interrupt(tmp_path, sig):
    """bulk writes no file; its compiled loop runs for minutes without returning to Python, so
    Ctrl-C must end it at once (no traceback, no lingering process)."""
    env = _env(tmp_path)
    proc = _start(["bulk", "--cells", "8", "8", "8", "--events", "1e11", "--replicas", "1"], env, tmp_path)
    time.sleep(4.0)
    assert proc.poll() is None
    t0 = time.monotonic()
    os.kill(proc.pid, sig)
    rc, out, err = _finish(proc)
    assert time.monotonic() - t0 < 5.0
    assert rc == -sig and out == "" and "Traceback" not in err


@pytest.mark.validate
def test_continuum_sigterm_releases_its_output(tmp_path):
    cfg = tmp_path / "c.toml"
    # 30 forward fields on 4000 nodes, tens of seconds of sweep: the signal comes while it runs
    # (six fields on the default mesh can all be done before it)
    fields = ", ".join(f"{4.0 - 0.1 * k:.1f}" for k in range(30))
    cfg.write_text('run = "continuum"\nduration_s = 14400.0\nworkers = 1\n[calibration]\nenabled = false\n'
                   f'[numerics]\nn_nodes = 4000\n[sweep]\nfield_V_per_um = [{fields}]\n')
    env = _env(tmp_path)
    out = tmp_path / "c.h5"
    proc = _start(["continuum", cfg, "-o", out], env, tmp_path)
    _wait_for(lambda: out.exists(), "the continuum output")
    time.sleep(0.5)
    rc, _, err = _kill_and_check_no_orphans(proc, signal.SIGTERM)
    assert rc == 130, err
    assert _lines(err)[-1] == "ionwire: interrupted"
    res = _run(["continuum", cfg, "-o", out], env, tmp_path)
    assert res.returncode == 2 and "exists: pass --overwrite" in res.stderr  # not "in use"


# --------------------------------------------------------------------------------------------
# workers busy in a GIL-holding call: the kernel, not a Python thread, ends them with their parent
# --------------------------------------------------------------------------------------------
GIL_TOY = """run = "test_fault_kills:GilToy"
samples = 500
seed = 7
[sweep]
dimension = [2, 3, 4, 5]
"""


@pytest.mark.parametrize("executor", ["dask-local", pytest.param("process-pool", marks=VALIDATE)])
def test_sigkill_with_workers_inside_a_gil_holding_run_leaves_no_orphans(tmp_path, executor):
    cfg = tmp_path / "gil.toml"
    cfg.write_text(GIL_TOY)
    out = tmp_path / "out"
    argv = ["campaign", cfg, "-o", out, "--workers", "2", "--no-progress"]
    env = _env(tmp_path)
    proc = _start(argv + (["--scheduler", "local"] if executor == "dask-local" else []), env, tmp_path)
    partial = out / "runs" / ".partial"

    def busy():
        return partial.is_dir() and sum((partial / e / "started").exists() for e in os.listdir(partial)) >= 2

    try:
        _wait_for(busy, "both workers to be inside a run")
        workers = _descendants(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        assert _finish(proc)[0] == -signal.SIGKILL
        t0 = time.monotonic()
        _wait_for(lambda: not any(_alive(p) for p in workers), "the workers to die with the campaign", timeout=5)
        assert time.monotonic() - t0 < 5
    finally:
        for p in _descendants(proc.pid) | {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    # the folder is not locked by anything: --resume is accepted at once (and refused only by
    # the config check below, which proves it got past the lock)
    res = _run(["campaign", cfg, "-o", out, "--workers", "1", "--no-progress", "--resume", "--dry-run"], env,
               tmp_path)
    assert res.returncode == 0, res.stderr
    cfg.write_text(GIL_TOY.replace("seed = 7", "seed = 8"))
    res = _run(["campaign", cfg, "-o", out, "--workers", "1", "--no-progress", "--resume"], env, tmp_path, timeout=60)
    assert res.returncode == 2
    assert _lines(res.stderr) == [f"ionwire campaign: error: {out} holds a campaign with a different config "
                                  "(seed changed): choose another folder with -o (only [sweep] may change on --resume)"]


@pytest.mark.validate
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_campaign_signal_during_the_real_calibration_then_resume_at_once(tmp_path, sig):
    """runs/fig1e.toml: prepare() fits alpha_Br, alpha_Cl with continuum runs on the campaign's
    process pool.  A signal while the pool works leaves no worker behind, and --resume gets past
    the folder lock at once (it starts the calibration again: stopped here by SIGTERM)."""
    out = tmp_path / "out"
    argv = ["campaign", HERE.parent / "runs" / "fig1e.toml", "-o", out, "--workers", "2", "--no-progress"]
    env = _env(tmp_path)
    proc = _start(argv, env, tmp_path)
    _wait_for(lambda: (out / "campaign.json").exists() and len(_descendants(proc.pid)) >= 3,
              "the calibration's workers")
    time.sleep(0.2)  # inside the calibration: its three sweeps take a few seconds on 2 workers
    rc, _, err = _kill_and_check_no_orphans(proc, sig)
    assert rc == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    if sig == signal.SIGTERM:
        assert _lines(err)[-1].startswith("ionwire campaign: interrupted, 0 of 17 runs done")
    assert not (out / "prepare.json").exists()
    again = _start(argv + ["--resume"], env, tmp_path)
    t0 = time.monotonic()
    _wait_for(lambda: len(_descendants(again.pid)) >= 3 or again.poll() is not None, "the resumed calibration")
    assert again.poll() is None, again.communicate()
    assert time.monotonic() - t0 < WAIT_S
    rc, _, err = _kill_and_check_no_orphans(again, signal.SIGTERM)
    assert rc == 130, err
    assert _lines(err)[-1].startswith("ionwire campaign: interrupted, 0 of 17 runs done")
