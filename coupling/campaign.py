"""Campaigns: fan the runs of one config out over local processes or a dask cluster, resumably.

A campaign config is a TOML file whose top-level ``run = "<run type>"`` names a run type
(:mod:`ionwire.coupling.runtypes` registry, interface in :mod:`ionwire.structures.runtype`); the rest of the file is that run type's config, usually with a
``[sweep]`` table.  Every run gets a stable id, a hash of its canonical parameters (run type,
fingerprint of the config, point), so the same run has the same id in every invocation.

Campaign folder (default ``runs/out/<config stem>/``)::

    campaign.json       what this campaign is: run type, the config as read, its fingerprint
    prepare.json        the cached result of the run type's prepare() (e.g. a calibration fit)
    runs/<id>/          one finished run: result.json + the files the run wrote
    runs/.partial/      runs in progress; leftovers of a killed campaign are removed and redone
    failed/<id>.txt     the traceback of a failed run (retried on --resume)
    index.json          every run in expand order: id, point, status, result, wall time
    summary.json        the run type's reduce() once all runs are done (+ its figures and data)

Why a campaign killed at any moment (even SIGKILL) resumes without losing or duplicating a run:
a run counts as done iff ``runs/<id>/`` exists, and that folder appears by one atomic
``os.rename`` of a complete temporary folder (a second copy of the same run cannot rename over
it and is discarded); every JSON file is written to a temporary name and ``os.replace``-d;
``index.json`` is derived data, rebuilt from ``runs/`` on resume; a lock file stops two
campaigns from sharing one folder.

Python use: ``run_campaign(load_spec(path), outdir, workers=2, resume=True)`` -> CampaignReport; in a
script, call it under ``if __name__ == "__main__":`` (workers start by importing the main module).

Execution: a local process pool (forkserver/spawn context) by default, or dask.distributed with
``scheduler="local"`` (a LocalCluster) or ``scheduler="tcp://host:port"`` (a running cluster,
e.g. one started by dask-jobqueue; its workers must see the campaign folder, as on any cluster
with a shared file system).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import inspect
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ionwire.structures.errors import UserError
from ionwire.structures.parameters import ParameterError, read_toml

from . import runtypes

FORMAT = "ionwire-campaign"
FORMAT_VERSION = 1
ID_LENGTH = 12  # hex digits of sha256: 48 bits, collisions are checked anyway
PLAIN_PROGRESS_S = 10.0
# a write the disk refused (full, quota, I/O error, file too large, read-only)
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS)  # seconds between plain progress lines (output not on a terminal)


class CampaignError(UserError):
    """A campaign cannot start or continue (folder in use, config changed, ...): one line."""


class CampaignInterrupted(Exception):
    """Ctrl-C / SIGTERM: pending runs were cancelled; the campaign folder is resumable."""

    def __init__(self, done: int, total: int, outdir: Path):
        super().__init__(f"interrupted: {done} of {total} runs done in {outdir}")
        self.done, self.total, self.outdir = done, total, outdir


# --------------------------------------------------------------------------------------------
# ids and atomic files
# --------------------------------------------------------------------------------------------
def canonical_json(obj: Any) -> str:
    """Key-sorted, compact JSON: the byte string ids are hashed from (floats as shortest repr)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_id(run_name: str, fingerprint_sha: str, point: Mapping[str, Any]) -> str:
    """The stable id of one run: sha256 of (run type, config fingerprint, point), 12 hex digits."""
    blob = canonical_json({"run": run_name, "config": fingerprint_sha, "point": dict(point)})
    return hashlib.sha256(blob.encode()).hexdigest()[:ID_LENGTH]


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# the campaign spec: run type + validated config + points with ids
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunPoint:
    """One run of a campaign: its stable id, position in expand order and point dict."""

    id: str
    index: int
    point: dict


@dataclass(frozen=True)
class CampaignSpec:
    """A loaded, validated campaign config (nothing executed yet)."""

    path: Path
    run_name: str
    run_type: Any
    config: Any
    raw: dict
    fingerprint: Any
    fingerprint_sha: str
    points: tuple[RunPoint, ...]

    @property
    def stem(self) -> str:
        return self.path.stem


def load_spec(path: str | os.PathLike, mapping: Mapping[str, Any] | None = None) -> CampaignSpec:
    """Read a campaign config (TOML), validate it through its run type and expand the sweep.

    Bad input raises ParameterError naming the key (unknown keys, wrong types, out-of-range
    values are checked by the run type's ``load`` and by :func:`ionwire.structures.runtype.sweep_points`).
    """
    path = Path(path)
    if mapping is None:
        mapping = read_toml(path)[0]
    if "run" not in mapping:
        known = ", ".join(sorted(runtypes.REGISTRY)) or "none registered"
        raise ParameterError(f"run: missing; a campaign config starts with run = \"<run type>\" ({known})")
    run_name = mapping["run"]
    run_type = runtypes.get(run_name)
    body = {k: v for k, v in mapping.items() if k != "run"}
    sweep = body.get("sweep")
    if isinstance(sweep, Mapping):
        # a nested table (TOML dotted keys, e.g. bias.square_wave.period_s) sweeps entries of
        # that top-level table, which the run type resolves
        both = sorted(k for k in sweep if k in body and k != "sweep" and not isinstance(sweep[k], Mapping))
        if both:
            raise ParameterError(f"{both[0]}: set both at the top level and as sweep.{both[0]}; "
                                 "give it in one place only")
    config = run_type.load(body)
    points = run_type.expand(config)
    if not isinstance(points, list) or not points:
        raise ParameterError("sweep: expands to no runs")
    fp = runtypes.fingerprint(run_type, config)
    fp_sha = hashlib.sha256(canonical_json(fp).encode()).hexdigest()
    out, seen = [], {}
    for i, point in enumerate(points):
        if not isinstance(point, dict) or not all(isinstance(k, str) for k in point):
            raise TypeError(f"run type {run_name!r}: expand() must return dicts with str keys, got {point!r}")
        rid = run_id(run_name, fp_sha, point)
        if rid in seen:
            raise ParameterError(f"sweep: points {seen[rid]} and {i} are the same run ({point})")
        seen[rid] = i
        out.append(RunPoint(rid, i, json.loads(canonical_json(point))))
    check_plausible(run_name, run_type, config, out)
    return CampaignSpec(path, run_name, run_type, config, json.loads(json.dumps(dict(mapping), default=str)),
                        fp, fp_sha, tuple(out))


# --------------------------------------------------------------------------------------------
# plausibility: absurd fields, durations, seeds and sizes are refused before any run starts
# --------------------------------------------------------------------------------------------
def check_plausible(run_name: str, run_type: Any, config: Any, points) -> None:
    """ParameterError naming the first run (id and point) and the key whose value is absurd: a
    field beyond structures.parameters.MAX_FIELD_V_PER_UM, a duration beyond a century, a seed
    outside [0, 2^64 - 1], a lattice or a result beyond the machine's memory.  The checks are the
    ones the single-run commands make, applied to every point when the config is loaded (so
    ``--dry-run`` reports them too, and nothing is written).  A run type may define its own
    ``check_plausible(config, point)``; the built-in run types are checked here."""
    check = getattr(run_type, "check_plausible", None) or _PLAUSIBILITY.get(run_name)
    if check is None:
        return
    for rp in points:
        try:
            check(config, rp.point)
        except ParameterError as exc:
            raise ParameterError(f"run {rp.id} ({canonical_json(rp.point)}): {exc}") from None


def _plausible_device(config, point) -> None:
    from ionwire.kmc.device import _check_plausible
    from ionwire.kmc.runtypes import DeviceRun

    _check_plausible(DeviceRun.settings(config, point))  # the checks of `ionwire device`


def _plausible_bulk(config, point) -> None:
    from ionwire.coupling.commands.bulk import BYTES_PER_SITE
    from ionwire.structures.parameters import check_field, check_memory, check_seed

    bulk = config.bulk
    check_field(float(point.get("field_V_per_um", bulk.field_V_per_um)), "bulk.field_V_per_um")
    check_seed(bulk.seed, "bulk.seed")
    cells = tuple(int(c) for c in point.get("cells", bulk.cells))
    n_sites = 3 * cells[0] * cells[1] * cells[2]
    check_memory(n_sites * BYTES_PER_SITE, f"bulk.cells: the lattice ({' x '.join(map(str, cells))} cells, "
                                           f"{n_sites:.3g} sites)")


def _plausible_continuum(config, point) -> None:
    from ionwire.structures.parameters import check_duration, check_field

    check_duration(float(point.get("duration_s", config.duration_s)), "duration_s")
    check_field(float(point.get("field_V_per_um", 0.0)), "field_V_per_um")
    check_continuum_memory(config.numerics, "numerics")


def check_continuum_memory(numerics, where: str) -> None:
    """The stored profiles alone (n_nodes x n_outputs values of each of the 6 profile variables)
    must fit in the machine's memory: a lower bound of what one continuum run needs."""
    from ionwire.structures.parameters import check_memory

    n = int(numerics.n_nodes) * int(numerics.n_outputs)
    check_memory(6 * 8.0 * n, f"the stored profiles ({where}.n_nodes = {numerics.n_nodes} x {where}.n_outputs = "
                              f"{numerics.n_outputs})")


def _plausible_compare(config, point) -> None:
    from ionwire.coupling.compare import device_config
    from ionwire.kmc.device import _check_plausible

    e = float(point.get("field_V_per_um", config.compare.fields_V_per_um[0]))
    _check_plausible(device_config(config, e, config.compare.seed))
    check_continuum_memory(config.numerics, "numerics")


_PLAUSIBILITY: dict[str, Callable[[Any, dict], None]] = {
    "device": _plausible_device, "bulk": _plausible_bulk, "onsager": _plausible_bulk,
    "continuum": _plausible_continuum, "compare": _plausible_compare,
}


def default_outdir(spec: CampaignSpec) -> Path:
    """runs/out/<config stem>/ next to the config's folder when it lives in a ``runs`` folder,
    else ./runs/out/<stem>/."""
    parent = spec.path.resolve().parent
    base = parent if parent.name == "runs" else Path("runs")
    return base / "out" / spec.stem


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
PARTIAL = ".partial"
MANIFEST = ".ionwire-campaign-manifest.json"


def _looks_like_id(name: str) -> bool:
    return len(name) == ID_LENGTH and all(c in "0123456789abcdef" for c in name)


def execute_run(run_type: Any, config: Any, rid: str, point: dict, outdir: str) -> dict:
    """Run one point in a fresh temp folder and rename it to OUT/runs/<rid>/ when complete.

    Returns the run record ({"id", "point", "status": "done"|"failed", "result" or "error",
    "wall_s", ...}).  Exceptions of the run become a "failed" record (the temp folder is
    removed), so nothing half-written is ever taken for a result.
    """
    runs = Path(outdir) / "runs"
    final = runs / rid
    existing = _read_json(final / "result.json")
    if existing is not None:  # another worker finished it first (duplicate submission)
        return existing
    tmp = runs / PARTIAL / f"{rid}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    started = time.time()
    t0 = time.perf_counter()
    c0 = time.process_time()
    base = {"id": rid, "point": point, "host": socket.gethostname(), "pid": os.getpid(),
            "started_unix": started}
    try:
        result = run_type.run(config, dict(point), tmp)
        json.dumps(result)  # a run type must return JSON-able data
        bad = _non_finite(result, finite_keys=getattr(run_type, "finite_keys", FINITE_KEYS))
        if bad is not None:
            raise ValueError(f"run {rid} ({canonical_json(point)}) gave a non-finite result: {bad}")
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "wall_s": time.perf_counter() - t0}
    # cpu_s / wall_s < 1: the run did not have a core to itself (other processes on the machine)
    record = {**base, "status": "done", "result": result, "wall_s": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0}
    with open(tmp / "result.json", "w") as fh:
        json.dump(record, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.rename(tmp, final)  # atomic: the run is done exactly when this succeeds
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        existing = _read_json(final / "result.json")
        if existing is None:
            raise
        return existing
    return record


# result keys whose value must be a number, never NaN (NaN elsewhere can mean "undefined", e.g.
# the correlation factor of a species absent from the lattice); an infinity is never a result
FINITE_KEYS = ("migration_length_um",)


def _non_finite(obj: Any, where: str = "result", finite_keys=FINITE_KEYS) -> str | None:
    """The first infinity in a run's result, or NaN under one of ``finite_keys`` (``"key = nan"``)."""
    import math

    if isinstance(obj, float):
        if math.isinf(obj) or (math.isnan(obj) and where.rpartition(".")[2].split("[")[0] in finite_keys):
            return f"{where} = {obj}"
        return None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for k, v in items:
        key = f"{where}{k}" if str(k).startswith("[") else f"{where}.{k}"
        found = _non_finite(v, key, finite_keys)
        if found is not None:
            return found
    return None


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent thread exits
    (prctl PR_SET_PDEATHSIG); elsewhere a no-op (the polling watch below still applies)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover
        pass


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed parent not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _release_forkserver_alive_fd() -> None:
    """A forkserver-started worker inherits the write end of the pipe that keeps the fork server
    alive (multiprocessing.forkserver: the server exits when every holder has closed it).  With
    the workers holding it, the server outlives a killed campaign process, and so do the workers
    (their parent-death signal waits for the server), while a run that holds the GIL (a compiled
    loop) keeps the polling watch below from acting.  The workers start no processes, so they
    close it: the campaign process is then its only holder."""
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver  # the process-wide ForkServer of the module
        fd = server._forkserver_alive_fd
    except AttributeError:  # another Python's layout: the polling watch still applies
        return
    if fd is None or multiprocessing.parent_process() is None:
        return
    with contextlib.suppress(OSError):
        os.close(fd)
    server._forkserver_alive_fd = None


def _worker_init(main_pid: int) -> None:
    """Local pool workers: Ctrl-C is the campaign process's business (it cancels and terminates
    us), and a worker whose campaign process died (SIGKILL) exits instead of lingering (with
    forkserver the worker's parent is the fork server, so watch the campaign process itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()  # the fork server (our parent) dies with the campaign process ...
    _release_forkserver_alive_fd()  # ... once no worker keeps it alive
    if not _process_alive(main_pid):
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.5)
            if not _process_alive(main_pid):
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ionwire-parent-watch").start()


# --------------------------------------------------------------------------------------------
# executors: the local process pool and dask.distributed behind one small interface
# --------------------------------------------------------------------------------------------
class LocalPool:
    """concurrent.futures process pool; forkserver (or spawn) so workers start clean."""

    def __init__(self, workers: int):
        import concurrent.futures as cf

        self._cf = cf
        self.workers = workers
        self.pool = self._new_pool()
        self.broken = False
        self.window = 2 * workers  # tasks in flight: keeps "stop submitting" meaningful
        self.description = f"{workers} local process{'es' if workers > 1 else ''}"

    def _new_pool(self):
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            # workers fork from a server that has imported numpy and this module once
            ctx.set_forkserver_preload(["ionwire.coupling.campaign"])
        else:
            ctx = multiprocessing.get_context("spawn")
        return self._cf.ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_init,
                                            initargs=(os.getpid(),), mp_context=ctx)

    def submit(self, fn: Callable, *args, key: str = "") -> Any:
        return self.pool.submit(fn, *args)

    def map(self, fn: Callable, iterable) -> Any:
        """``map(fn, iterable)`` over the pool's processes: results in order."""
        return self.pool.map(fn, iterable)

    def wait(self, futures: list, timeout: float) -> list:
        done, _ = self._cf.wait(futures, timeout=timeout, return_when=self._cf.FIRST_COMPLETED)
        return list(done)

    def outcome(self, fut) -> dict | str:
        exc = fut.exception()
        if exc is None:
            return fut.result()
        if isinstance(exc, self._cf.process.BrokenProcessPool):
            # a worker died (segfault, OOM kill): every run in flight fails with this; the pool is
            # replaced (restart) so the rest of the campaign goes on
            self.broken = True
            return f"a worker process died while this run was running or queued ({type(exc).__name__})"
        return f"{type(exc).__name__}: {exc}"

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()
        self.broken = False

    def abort(self, futures: list) -> None:
        # running runs are stopped now rather than waited for (they may take hours); their temp
        # folders are removed and the runs redone on --resume.  _processes is private but has
        # been there since Python 3.2; without it shutdown() would wait for the running runs.
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        # the pool's manager thread (also private, since Python 3.9) is finished here too, as at a
        # normal interpreter exit before multiprocessing's finalizers run: a caller that leaves by
        # os._exit runs those finalizers itself, and they close the queues the thread still reads
        manager = getattr(self.pool, "_executor_manager_thread", None)
        # the queued runs are cancelled by shutdown(), which lets the manager thread cancel them and
        # drop them from its table itself; only then are the workers stopped.  (Cancelling the
        # futures here first, then stopping the workers, left cancelled futures in that table
        # when the thread noticed the stopped workers before shutdown(): it then failed with
        # InvalidStateError, "Exception in thread" on stderr.)  ``futures`` needs nothing more.
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
        if manager is not None:
            manager.join(timeout=5)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@contextlib.contextmanager
def local_mapper(workers: int):
    """A ``map(fn, iterable)`` over ``workers`` local processes (a :class:`LocalPool`), or the
    builtin ``map`` for one worker; the pool is closed (or, on an exception, stopped) on exit.
    For library calls that take a mapper (e.g. the continuum calibration and sweep)."""
    if workers <= 1:
        yield map
        return
    pool = LocalPool(workers)
    try:
        yield pool.map
    except BaseException:
        pool.abort([])
        raise
    pool.close()


def _takes_mapper(fn: Callable) -> bool:
    try:
        return "mapper" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def check_scheduler(address: str | None, timeout_s: float = 10.0) -> None:
    """CampaignError unless ``address`` is None, "local" or a reachable dask scheduler address
    (``tcp://host:port`` is probed with one TCP connection; other protocols are left to dask)."""
    if address is None or address == "local":
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        port = parts.port
    except ValueError as exc:
        raise CampaignError(f"--scheduler {address}: not 'local' or a scheduler address ({exc})") from None
    if parts.scheme == "tcp" and (port is None or not parts.hostname):
        raise CampaignError(f"--scheduler {address}: not 'local' or a scheduler address like tcp://host:8786")
    if parts.scheme != "tcp":
        return
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        raise CampaignError(f"cannot reach dask scheduler {address}: {exc}") from None


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _connect_client(distributed, address: str, timeout_s: float):
    """(Client, number of workers) of the scheduler at ``address``, or CampaignError after
    ``timeout_s`` seconds: a TCP service that is not a dask scheduler accepts the connection and
    then never answers the handshake, so the connection is made in a thread and waited for."""
    box: dict = {}

    def connect():
        try:
            client = distributed.Client(address, timeout=f"{max(timeout_s, 1.0):g}s")
            box["n"] = len(client.scheduler_info().get("workers", {}))
            box["client"] = client
        except BaseException as exc:  # reported by the waiting thread
            box["error"] = exc

    t = threading.Thread(target=connect, daemon=True, name="ionwire-dask-connect")
    t.start()
    t.join(timeout_s + 5.0)
    if "client" in box:
        return box["client"], box["n"]
    if "error" in box:
        exc = box["error"]
        raise CampaignError(f"cannot use dask scheduler {address}: {type(exc).__name__}: {exc}") from None
    raise CampaignError(f"no dask scheduler answered at {address} within {timeout_s:g} s (is it a dask "
                        "scheduler? see --scheduler-timeout)")


_WATCHED_PARENT: list[int] = []  # in a LocalCluster worker: the campaign process it dies with


def _in_local_dask_worker(main_pid: int, fn: Callable, *args) -> Any:
    """Run ``fn(*args)`` in a worker of the campaign's own LocalCluster, first making sure (once
    per worker process) that the worker dies with the campaign process: the kernel kills it
    (PR_SET_PDEATHSIG) when its parent, the campaign process that runs the nannies, dies,
    even while a compiled loop holds the GIL and dask's own parent watch (a Python thread)
    cannot run.  A worker whose campaign process is already gone exits at once."""
    if not _WATCHED_PARENT:
        _die_with_parent()
        _WATCHED_PARENT.append(main_pid)
        if not _process_alive(main_pid):
            os._exit(1)
    return fn(*args)


class DaskPool:
    """dask.distributed: ``"local"`` starts a LocalCluster, anything else is a scheduler address."""

    def __init__(self, address: str, workers: int, timeout_s: float = 30.0):
        import logging

        import distributed

        self._d = distributed
        self.cluster = None
        try:
            if address == "local":
                # worker processes inherit an ignored SIGINT: Ctrl-C in the terminal reaches the
                # whole process group, and stopping the workers is the campaign's job (abort())
                with _sigint_ignored():
                    self.cluster = distributed.LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
                self.description = f"dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}"
            else:
                check_scheduler(address)  # a wrong address fails now, not after the client's retries
                self.client, n = _connect_client(distributed, address, timeout_s)
                self.description = f"dask scheduler {address} ({n} workers now)"
        except (OSError, ValueError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise CampaignError(f"cannot use dask scheduler {address}: {exc}") from None
        self.window = 1 << 30  # submit everything: the scheduler balances (and jobqueue scales)

    def _local(self, fn: Callable) -> Callable:
        """``fn`` as run on the workers: in the campaign's own LocalCluster, wrapped so that the
        workers die with this process (workers of an external scheduler are not ours)."""
        if self.cluster is None:
            return fn
        return functools.partial(_in_local_dask_worker, os.getpid(), fn)

    def submit(self, fn: Callable, *args, key: str = "") -> Any:
        return self.client.submit(self._local(fn), *args, key=f"ionwire-{key}-{uuid.uuid4().hex[:8]}", pure=False)

    def map(self, fn: Callable, iterable) -> Any:
        """``map(fn, iterable)`` over the dask workers: results in order."""
        futures = self.client.map(self._local(fn), list(iterable), pure=False)
        return (f.result() for f in futures)

    def wait(self, futures: list, timeout: float) -> list:
        try:
            done, _ = self._d.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return list(done)

    @staticmethod
    def outcome(fut) -> dict | str:
        if fut.status == "finished":
            return fut.result()
        try:
            exc = fut.exception()
        except Exception as e:  # cancelled futures raise on .exception()
            exc = e
        return f"{type(exc).__name__}: {exc}"

    def abort(self, futures: list) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


# --------------------------------------------------------------------------------------------
# the campaign folder
# --------------------------------------------------------------------------------------------
@dataclass
class CampaignReport:
    """What a campaign invocation did."""

    outdir: Path
    n_runs: int
    n_resumed: int  # already done before this invocation
    n_new: int  # finished by this invocation
    failed: dict[str, str]  # id -> error of runs that failed in this invocation
    wall_s: float
    run_wall_s: float  # sum of the wall times of the new runs (measured inside the workers)
    prepare_wall_s: float
    executor: str
    summary_path: Path | None = None
    summary: Any = None
    records: list = field(default_factory=list)


class CampaignFolder:
    """The on-disk state of one campaign (layout in the module docstring)."""

    def __init__(self, outdir: Path):
        self.root = Path(outdir)
        self.runs = self.root / "runs"
        self.partial = self.runs / PARTIAL
        self.failed = self.root / "failed"
        self._lock = None

    def lock(self) -> None:
        """Hold ``.lock`` (removed again by unlock()): a POSIX record lock, released by the kernel when this process dies
        (however it dies) and not inherited by processes it forks, so neither a killed campaign
        nor an orphaned worker of one keeps the folder locked."""
        from .commands._output import FileLock, OutputInUseError

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = FileLock(self.root / ".lock", str(self.root)).acquire()
        except OutputInUseError as exc:
            raise CampaignError(f"{self.root} is in use by another running campaign "
                                f"({str(exc).rpartition('(')[2].rstrip(')') or 'lock held'})") from None

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # what this module writes at the top of the folder; anything else is the user's (or a run
    # type's reduce(), recorded in the manifest)
    OWN = frozenset({"campaign.json", "prepare.json", "index.json", "summary.json", "runs", "failed",
                     ".lock", MANIFEST})

    def manifest(self) -> dict:
        return _read_json(self.root / MANIFEST) or {"format": FORMAT + "-manifest", "written": []}

    def mark_reduce_started(self) -> None:
        """Record the folder's names before reduce() writes its figures and data (kept from an
        earlier, killed reduce: what appeared since then is the campaign's too)."""
        m = self.manifest()
        if m.get("reduce_started_with") is None:
            m["reduce_started_with"] = sorted(os.listdir(self.root))
            atomic_write_json(self.root / MANIFEST, m)

    def mark_reduce_done(self) -> None:
        """Add what reduce() wrote to the manifest."""
        m = self.manifest()
        started = set(m.pop("reduce_started_with", None) or os.listdir(self.root))
        m["written"] = sorted(set(m.get("written", [])) | (set(os.listdir(self.root)) - started))
        atomic_write_json(self.root / MANIFEST, m)

    def foreign(self) -> list[str]:
        """Names in the folder that no campaign wrote here (an empty list: all ours)."""
        if not self.root.is_dir():
            return []
        m = self.manifest()
        ours = set(self.OWN) | set(m.get("written", []))
        started = m.get("reduce_started_with")
        names = sorted(os.listdir(self.root))
        if started is not None:  # killed during reduce(): what appeared since then is its output
            ours |= set(names) - set(started)
        ours -= set(m.get("preexisting", []))
        out = [n for n in names if n not in ours and not (n.startswith(".") and n.endswith(".tmp"))]
        if self.runs.is_dir() and "runs" not in out:
            out += [f"runs/{e}" for e in sorted(os.listdir(self.runs))
                    if e != PARTIAL and not _looks_like_id(e)]
        return out

    def finished(self, ids: set[str]) -> dict[str, dict]:
        """Records of the finished runs among ``ids`` (runs/<id>/result.json)."""
        out = {}
        if not self.runs.is_dir():
            return out
        for entry in os.scandir(self.runs):
            if entry.name in ids and entry.is_dir():
                rec = _read_json(Path(entry.path) / "result.json")
                if rec is not None and rec.get("id") == entry.name and rec.get("status") == "done":
                    out[entry.name] = rec
                else:  # cannot happen through execute_run; do not trust it, redo the run
                    self.partial.mkdir(parents=True, exist_ok=True)
                    os.rename(entry.path, self.partial / f"{entry.name}.invalid.{uuid.uuid4().hex[:8]}")
        return out

    def remove_campaign(self) -> None:
        """Delete the files of a previous campaign: only what the campaign wrote (its fixed
        names and the manifest's); CampaignError, with nothing removed, if the folder holds
        anything else."""
        foreign = self.foreign()
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise CampaignError(f"--overwrite refused: {self.root} holds files no campaign wrote ({shown}); "
                                "nothing was removed; choose another folder with -o")
        m = self.manifest()
        names = (set(self.OWN) | set(m.get("written", []))) - {".lock", MANIFEST}
        if m.get("reduce_started_with") is not None:
            names |= set(os.listdir(self.root)) - set(m["reduce_started_with"])
        for name in sorted(names - {".lock", MANIFEST}):
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.root / MANIFEST)

    def clear_partial(self) -> int:
        """Remove temp folders of runs that never completed; returns how many."""
        if not self.partial.is_dir():
            return 0
        n = 0
        for entry in os.scandir(self.partial):
            shutil.rmtree(entry.path, ignore_errors=True)
            n += 1
        return n

    def write_index(self, spec: CampaignSpec, records: Mapping[str, dict], failed: Mapping[str, str]) -> None:
        rows = []
        for rp in spec.points:
            rec = records.get(rp.id)
            if rec is not None:
                rows.append({"id": rp.id, "point": rp.point, "status": "done", "result": rec.get("result"),
                             "wall_s": rec.get("wall_s")})
            elif rp.id in failed:
                rows.append({"id": rp.id, "point": rp.point, "status": "failed", "error": failed[rp.id]})
            else:
                rows.append({"id": rp.id, "point": rp.point, "status": "pending"})
        atomic_write_json(self.root / "index.json", {
            "format": FORMAT, "version": FORMAT_VERSION, "run": spec.run_name, "config": str(spec.path),
            "n_runs": len(rows), "n_done": sum(r["status"] == "done" for r in rows),
            "n_failed": sum(r["status"] == "failed" for r in rows), "runs": rows})


def _describe_change(old: Any, new: Any, prefix: str = "") -> str:
    """The first dotted key where two fingerprints differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if old.get(k, "<missing>") != new.get(k, "<missing>"):
                return _describe_change(old.get(k), new.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


#: set by the campaign's SIGINT/SIGTERM handler: a KeyboardInterrupt raised while the main thread
#: runs a finalizer (a ``__del__``, a weakref callback) is reported as unraisable and lost, so the
#: run loop also checks this flag (:func:`_raise_if_interrupted`)
_INTERRUPTED = threading.Event()


def _raise_if_interrupted() -> None:
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a batch system's time limit, ``kill``) stops a campaign like Ctrl-C; both are
    remembered in :data:`_INTERRUPTED` as well as raised."""
    _INTERRUPTED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, handler)
    old_int = signal.signal(signal.SIGINT, handler) if signal.getsignal(signal.SIGINT) is signal.default_int_handler \
        else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)


def run_campaign(spec: CampaignSpec, outdir: str | os.PathLike | None = None, *, workers: int | None = None,
                 scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
                 progress: bool = True,
                 index_interval_s: float = 2.0, connect_timeout_s: float = 30.0) -> CampaignReport:
    """Run every not-yet-finished point of ``spec``; then reduce if all runs are done.

    ``workers``: local processes (default: the usable CPU count) or LocalCluster workers;
    ``scheduler``: None (local process pool), "local" (dask LocalCluster) or a dask scheduler
    address.  ``overwrite`` first removes a previous campaign's files from the folder.  Raises
    CampaignError if the folder already holds a campaign and neither ``resume`` nor ``overwrite``
    is set, or if ``resume`` finds a campaign with a different config; CampaignInterrupted on Ctrl-C or
    SIGTERM (pending runs cancelled, running ones stopped, the folder resumable).
    """
    t_start = time.perf_counter()
    out = Path(outdir) if outdir is not None else default_outdir(spec)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers < 1:
        raise ParameterError(f"--workers: must be >= 1, got {workers}")
    if out.exists() and not out.is_dir():
        raise CampaignError(f"{out} exists and is not a folder (-o names the campaign folder)")
    check_scheduler(scheduler)  # before prepare(), which may take minutes
    folder = CampaignFolder(out)
    _check_folder(folder, overwrite)  # before anything is written (the lock file included)
    with _sigterm_as_interrupt():  # set-up, prepare, runs and reduce: SIGTERM stops like Ctrl-C
        try:
            folder.lock()
            try:
                return _run_locked(spec, folder, workers, scheduler, resume, overwrite, progress,
                                   index_interval_s, t_start, connect_timeout_s)
            finally:
                folder.unlock()
        except KeyboardInterrupt:
            done = len(folder.finished({rp.id for rp in spec.points})) if folder.runs.is_dir() else 0
            raise CampaignInterrupted(done, len(spec.points), out) from None
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            raise CampaignError(f"cannot write in {out}{where}: {exc.strerror or exc}; finished runs are kept; "
                                "free some space, then continue with --resume") from None


def _check_folder(folder: "CampaignFolder", overwrite: bool) -> None:
    """CampaignError unless the folder is new, empty or holds only what a campaign wrote."""
    foreign = folder.foreign()
    if not foreign:
        return
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    if overwrite:
        raise CampaignError(f"--overwrite refused: {folder.root} holds files no campaign wrote ({shown}); "
                            "nothing was removed; choose another folder with -o")


def _note(progress: bool, text: str) -> None:
    """A progress note the user sees (the command line's log handler, or Python's last-resort
    handler on stderr in a notebook) when ``progress`` is on."""
    if progress:
        logging.getLogger(__name__).warning(text)


def _run_locked(spec, folder, workers, scheduler, resume, overwrite, progress, index_interval_s, t_start,
                connect_timeout_s=30.0):
    out = folder.root
    meta_path = out / "campaign.json"
    meta = _read_json(meta_path)
    ids = {rp.id for rp in spec.points}
    if overwrite:
        folder.remove_campaign()
        meta = None
    if meta is not None:
        if not resume:
            n_done = len(folder.finished(ids))
            raise CampaignError(f"{out} already holds a campaign ({n_done} of {len(ids)} runs of this config "
                                "done): add --resume to continue it, --overwrite to start again, or -o for another folder")
        if meta.get("run") != spec.run_name or meta.get("fingerprint_sha") != spec.fingerprint_sha:
            where = ("run" if meta.get("run") != spec.run_name
                     else _describe_change(meta.get("fingerprint"), json.loads(canonical_json(spec.fingerprint))))
            raise CampaignError(f"{out} holds a campaign with a different config ({where} changed): "
                                "choose another folder with -o (only [sweep] may change on --resume)")
    else:
        # what the folder held before this campaign is never the campaign's to remove
        atomic_write_json(out / MANIFEST, {"format": FORMAT + "-manifest", "written": [],
                                           "preexisting": sorted(set(os.listdir(out)) - {".lock", MANIFEST})})
        atomic_write_json(meta_path, {
            "format": FORMAT, "version": FORMAT_VERSION, "run": spec.run_name, "config_file": str(spec.path),
            "config": spec.raw, "fingerprint": json.loads(canonical_json(spec.fingerprint)),
            "fingerprint_sha": spec.fingerprint_sha, "created_unix": time.time()})
    folder.runs.mkdir(parents=True, exist_ok=True)
    folder.clear_partial()
    records = folder.finished(ids)
    n_resumed = len(records)

    # prepare once per campaign; cached (keyed by the config fingerprint) for --resume.  A
    # prepare(config, mapper) runs its own tasks on the campaign's pool (one pool per campaign)
    config = spec.config
    prepare_wall = 0.0
    pool = None
    if callable(getattr(spec.run_type, "prepare", None)):
        cache = _read_json(out / "prepare.json")
        if cache is not None and cache.get("fingerprint_sha") == spec.fingerprint_sha:
            prepared = cache["prepared"]
        else:
            t0 = time.perf_counter()
            _note(progress, f"campaign {spec.stem}: preparing the {spec.run_name} runs "
                            "(e.g. a calibration fit; cached for --resume) ...")
            try:
                if _takes_mapper(spec.run_type.prepare):
                    pool = DaskPool(scheduler, workers, connect_timeout_s) if scheduler else LocalPool(workers)
                    prepared = spec.run_type.prepare(config, mapper=pool.map)
                else:
                    prepared = spec.run_type.prepare(config)
            except KeyboardInterrupt:
                if pool is not None:
                    pool.abort([])
                raise CampaignInterrupted(len(records), len(spec.points), out) from None
            except BaseException:
                if pool is not None:
                    pool.abort([])
                raise
            prepare_wall = time.perf_counter() - t0
            _note(progress, f"campaign {spec.stem}: prepared in {prepare_wall:.1f} s")
            atomic_write_json(out / "prepare.json", {"fingerprint_sha": spec.fingerprint_sha,
                                                     "prepared": prepared, "wall_s": prepare_wall})
            prepared = json.loads(json.dumps(prepared))  # the cached form, identical on resume
        config = spec.run_type.bind(config, prepared)

    todo = [rp for rp in spec.points if rp.id not in records]
    failed: dict[str, str] = {}
    run_wall = 0.0
    executor = "nothing to run"
    bar = None
    if todo:
        from tqdm.auto import tqdm

        if pool is None:
            pool = DaskPool(scheduler, workers, connect_timeout_s) if scheduler else LocalPool(workers)
        executor = pool.description
        bar = tqdm(total=len(spec.points), initial=n_resumed, desc=f"{spec.stem} [{spec.run_name}]",
                   unit="run", file=sys.stderr, disable=None if progress else True, dynamic_ncols=True)
        # not on a terminal (a log file, a batch job): plain lines instead of the bar
        plain = progress and bar.disable
        last_line = time.monotonic()
        pending: dict[Any, RunPoint] = {}
        queue = iter(todo)
        last_index = 0.0
        try:
            with _sigterm_as_interrupt():
                exhausted = False
                while True:
                    while not exhausted and len(pending) < pool.window:
                        rp = next(queue, None)
                        if rp is None:
                            exhausted = True
                            break
                        fut = pool.submit(execute_run, spec.run_type, config, rp.id, rp.point, str(out), key=rp.id)
                        pending[fut] = rp
                    if not pending:
                        break
                    _raise_if_interrupted()
                    for fut in pool.wait(list(pending), timeout=0.5):
                        rp = pending.pop(fut)
                        rec = pool.outcome(fut)
                        if isinstance(rec, dict) and rec.get("status") == "done":
                            records[rp.id] = rec
                            run_wall += float(rec.get("wall_s", 0.0))
                            with contextlib.suppress(FileNotFoundError):
                                os.remove(folder.failed / f"{rp.id}.txt")
                        else:
                            err = rec.get("error", "unknown error") if isinstance(rec, dict) else str(rec)
                            failed[rp.id] = err
                            folder.failed.mkdir(exist_ok=True)
                            detail = rec.get("traceback", err) if isinstance(rec, dict) else err
                            with open(folder.failed / f"{rp.id}.txt", "w") as fh:
                                fh.write(f"point: {canonical_json(rp.point)}\n{detail}\n")
                        bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in rp.point.items()), refresh=False)
                        bar.update(1)
                        n_now = len(records) + len(failed)
                        if plain and (time.monotonic() - last_line > PLAIN_PROGRESS_S or n_now == len(spec.points)):
                            last_line = time.monotonic()
                            _note(True, f"campaign {spec.stem}: {len(records)}/{len(spec.points)} runs done"
                                        f"{f', {len(failed)} failed' if failed else ''} "
                                        f"({time.perf_counter() - t_start:.0f} s)")
                    if getattr(pool, "broken", False):
                        pool.restart()
                    if time.monotonic() - last_index > index_interval_s:
                        folder.write_index(spec, records, failed)
                        last_index = time.monotonic()
        except KeyboardInterrupt:
            bar.leave = False
            bar.close()
            pool.abort(list(pending))
            folder.clear_partial()
            folder.write_index(spec, records, failed)
            raise CampaignInterrupted(len(records), len(spec.points), out) from None
        except BaseException:
            bar.close()
            pool.abort(list(pending))  # never leave workers behind
            raise
        pool.close()
        bar.close()
    elif pool is not None:
        pool.close()
    folder.write_index(spec, records, failed)

    _raise_if_interrupted()
    report = CampaignReport(outdir=out, n_runs=len(spec.points), n_resumed=n_resumed,
                            n_new=len(records) - n_resumed, failed=failed, wall_s=0.0,
                            run_wall_s=run_wall, prepare_wall_s=prepare_wall, executor=executor)
    report.records = [records.get(rp.id) for rp in spec.points]
    if not failed and len(records) == len(spec.points):
        results = [records[rp.id]["result"] for rp in spec.points]
        folder.mark_reduce_started()
        summary = spec.run_type.reduce(config, [rp.point for rp in spec.points], results, out)
        atomic_write_json(out / "summary.json", summary)
        folder.mark_reduce_done()
        report.summary, report.summary_path = summary, out / "summary.json"
    report.wall_s = time.perf_counter() - t_start
    return report
