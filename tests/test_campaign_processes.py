"""Campaigns as real processes: SIGKILL at arbitrary moments then --resume (nothing lost, nothing
duplicated), Ctrl-C (exit 130, one line, resumable, no stray workers), and execution through a
real ``dask scheduler`` + ``dask worker`` on 127.0.0.1 and through ``--scheduler local``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from process_helpers import foreground_signals

from ionwire.coupling import campaign as cp

TESTS = Path(__file__).resolve().parent
CONFIG = """
run = "campaign_toy:Toy"
samples = 2000
seed = 3
sleep_s = {sleep}
[sweep]
dimension = [2, 3, 4, 5]
replicas = {replicas}
"""


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), e.get("PYTHONPATH", "")) if p)
    return e


def campaign_cmd(cfg, out, *extra):
    return [sys.executable, "-m", "ionwire.coupling.cli", "campaign", str(cfg), "-o", str(out), "--no-progress", *extra]


def start(cmd):
    # own process group: the test can signal the campaign and its workers like a terminal does
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=foreground_signals)


def live_in_group(pgid: int) -> list[int]:
    """Pids of non-zombie processes in process group ``pgid``."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(d))
    return pids


def wait_gone(pgid: int, timeout: float = 10.0) -> list[int]:
    t = time.monotonic() + timeout
    while live_in_group(pgid) and time.monotonic() < t:
        time.sleep(0.1)
    left = live_in_group(pgid)
    for pid in left:  # never leave anything behind, even when the assertion fails
        os.kill(pid, signal.SIGKILL)
    return left


def done_ids(out: Path) -> set[str]:
    runs = out / "runs"
    return {p.name for p in runs.iterdir() if p.name != cp.PARTIAL} if runs.is_dir() else set()


def expected(spec, point):
    with tempfile.TemporaryDirectory() as d:
        return spec.run_type.run(spec.config, dict(point), Path(d))


def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(tmp_path):
    cfg = tmp_path / "kill.toml"
    # 24 runs of ~0.15 s on 2 workers: ~1.8 s of work, while an attempt lives at most 0.9 s
    cfg.write_text(CONFIG.format(sleep=0.15, replicas=6))
    out = tmp_path / "out"
    spec = cp.load_spec(cfg)
    ids = [rp.id for rp in spec.points]
    rng = np.random.default_rng(11)
    seen: dict[str, str] = {}  # id -> result.json text when first seen finished
    kills = 0
    for attempt in range(6):
        proc = start(campaign_cmd(cfg, out, "--workers", "2", *(["--resume"] if attempt else [])))
        time.sleep(rng.uniform(0.2, 0.9))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
        assert wait_gone(proc.pid) == []
        # every run finished before the kill is still there, byte for byte (never redone)
        for rid in done_ids(out):
            text = (out / "runs" / rid / "result.json").read_text()
            assert seen.setdefault(rid, text) == text
        if proc.returncode == 0:
            break
    assert kills >= 2, "the campaign finished before it could be killed twice; make runs longer"
    final = subprocess.run(campaign_cmd(cfg, out, "--workers", "2", "--resume", "--json"), env=env(),
                           capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    rep = json.loads(final.stdout)
    assert rep["n_resumed"] + rep["n_new"] == len(ids)
    assert rep["n_resumed"] >= len(seen)
    # exactly one folder per run, no leftovers, an index that lists each run once, all done
    assert done_ids(out) == set(ids)
    assert list((out / "runs" / cp.PARTIAL).iterdir()) == []
    index = json.loads((out / "index.json").read_text())
    assert [r["id"] for r in index["runs"]] == ids
    assert all(r["status"] == "done" for r in index["runs"])
    for rp, row in zip(spec.points, index["runs"]):
        assert row["result"] == expected(spec, rp.point)
    assert (out / "summary.json").is_file()


def test_ctrl_c_exits_130_with_one_line_and_leaves_a_resumable_campaign(tmp_path):
    cfg = tmp_path / "int.toml"
    cfg.write_text(CONFIG.format(sleep=0.3, replicas=3))  # 12 runs, ~2 s on 2 workers
    out = tmp_path / "out"
    proc = start(campaign_cmd(cfg, out, "--workers", "2"))
    deadline = time.monotonic() + 30
    while not done_ids(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], err
    assert wait_gone(proc.pid) == []  # workers stopped with the campaign
    n_before = len(done_ids(out))
    assert 1 <= n_before < 12
    res = subprocess.run(campaign_cmd(cfg, out, "--workers", "2", "--resume", "--json"), env=env(),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert (rep["n_runs"], rep["n_resumed"], rep["n_new"]) == (12, n_before, 12 - n_before)


def _dask(*args):
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_campaign_through_a_real_dask_scheduler_and_workers(tmp_path):
    cfg = tmp_path / "dask.toml"
    cfg.write_text(CONFIG.format(sleep=0.05, replicas=2))
    sched_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                           "--scheduler-file", str(sched_file)))
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(_dask("worker", "--scheduler-file", str(sched_file), "--nworkers", "2", "--nthreads", "1",
                           "--no-dashboard", "--host", "127.0.0.1"))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "out"
        res = subprocess.run(campaign_cmd(cfg, out, "--scheduler", address, "--json"), env=env(),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        assert rep["n_new"] == 8 and address in rep["executor"]
        spec = cp.load_spec(cfg)
        index = json.loads((out / "index.json").read_text())
        assert [r["id"] for r in index["runs"]] == [rp.id for rp in spec.points]
        for rp, row in zip(spec.points, index["runs"]):
            assert row["status"] == "done" and row["result"] == expected(spec, rp.point)
        # the runs really ran in the dask worker processes, not in the campaign process
        pids = {json.loads((out / "runs" / rp.id / "result.json").read_text())["pid"] for rp in spec.points}
        worker_pids = set()
        for p in procs[1:]:
            worker_pids |= set(live_in_group(p.pid))
        assert pids and pids <= worker_pids
    finally:
        # workers (nanny + worker processes, one group) are killed: their graceful shutdown takes
        # ~8 s; the scheduler stops on SIGINT.  Both bounded, both always torn down.
        for p, sig in zip(reversed(procs), (signal.SIGKILL, signal.SIGINT) if len(procs) == 2 else (signal.SIGINT,)):
            os.killpg(p.pid, sig)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            wait_gone(p.pid)


def test_campaign_on_a_dask_local_cluster(tmp_path):
    cfg = tmp_path / "local.toml"
    cfg.write_text(CONFIG.format(sleep=0.0, replicas=2))
    proc = start(campaign_cmd(cfg, tmp_path / "out", "--scheduler", "local", "--workers", "2", "--json"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    rep = json.loads(out)
    assert rep["n_new"] == 8 and "LocalCluster" in rep["executor"]
    assert json.loads((tmp_path / "out" / "index.json").read_text())["n_done"] == 8
    assert wait_gone(proc.pid) == []


def _slow_shutdown(monkeypatch, pool):
    """Make the pool's shutdown() start 0.5 s late, as on a loaded machine, so that the manager
    thread has time to notice stopped workers first if they were stopped before it."""
    shutdown = pool.pool.shutdown

    def slow_shutdown(*args, **kwargs):
        time.sleep(0.5)
        return shutdown(*args, **kwargs)

    monkeypatch.setattr(pool.pool, "shutdown", slow_shutdown)


def _thread_errors(monkeypatch) -> list:
    import threading

    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_type))
    return errors


def test_stopping_a_local_pool_with_queued_runs_raises_nothing_in_its_manager_thread(monkeypatch):
    """``LocalPool.abort`` with runs running and queued: the pool's manager thread must end
    without an exception even when it would notice the stopped workers before shutdown()."""
    errors = _thread_errors(monkeypatch)
    pool = cp.LocalPool(2)
    futures = [pool.submit(time.sleep, 30) for _ in range(6)]
    deadline = time.monotonic() + 60
    while sum(f.running() for f in futures) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(f.running() for f in futures) >= 2
    manager = pool.pool._executor_manager_thread
    procs = list(pool.pool._processes.values())
    _slow_shutdown(monkeypatch, pool)
    pool.abort(futures)
    assert not manager.is_alive()
    assert not any(p.is_alive() for p in procs)
    assert errors == []
    assert all(f.done() for f in futures)


def test_an_error_while_consuming_a_local_mapper_stops_its_pool_cleanly(monkeypatch):
    """An exception in the loop over ``local_mapper``'s map (e.g. a failed write of a result):
    leaving the loop cancels the queued calls, then the pool is stopped; its manager thread must
    end without an exception."""
    errors = _thread_errors(monkeypatch)
    made = []
    original = cp.LocalPool.__init__

    def init(self, workers):
        original(self, workers)
        made.append(self)

    monkeypatch.setattr(cp.LocalPool, "__init__", init)
    with pytest.raises(RuntimeError, match="write failed"):
        with cp.local_mapper(2) as mapper:
            pool = made[0]
            _slow_shutdown(monkeypatch, pool)
            for _ in mapper(time.sleep, [0.0] + [30.0] * 6):
                # the first call has returned: the workers and the manager thread run
                manager = pool.pool._executor_manager_thread
                procs = list(pool.pool._processes.values())
                raise RuntimeError("write failed")
    assert not manager.is_alive()
    assert procs and not any(p.is_alive() for p in procs)
    assert errors == []
