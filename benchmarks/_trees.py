"""Running the ionwire CLI of the current tree or of a baseline commit, and describing the machine.

A baseline is checked out with ``git worktree add --detach`` into a temporary folder (no branch is
created or moved) and imported through ``PYTHONPATH``: the repository root *is* the package
``ionwire`` (package-dir layout), so a temporary folder holding one symlink ``ionwire -> <tree>``
put first on ``PYTHONPATH`` makes ``import ionwire`` load the baseline's sources, ahead of the
editable install of the current tree; the same interpreter (venv) and dependencies serve both.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the child reports its own peak RSS at exit (CPU time comes from the parent's child rusage,
# which includes the worker processes a campaign waits for)
CLI = ("import atexit, os, resource, sys\n"
       "def _report():\n"
       "    with open(os.environ['IONWIRE_BENCH_MAXRSS'], 'w') as f:\n"
       "        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
       "atexit.register(_report)\n"
       "from ionwire.coupling.cli import main\n"
       "sys.exit(main(sys.argv[1:]))\n")


def machine() -> dict:
    """CPU model (/proc/cpuinfo), logical cores, Python, platform and the load average now."""
    from ionwire.coupling.commands.bench import machine as _machine

    return {**_machine(), "load_average": list(os.getloadavg())}


def commit_of(ref: str = "HEAD") -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", ref], check=True, capture_output=True,
                          text=True).stdout.strip()


@contextmanager
def baseline_tree(ref: str):
    """Yield a PYTHONPATH entry under which ``import ionwire`` is commit ``ref`` (temporary
    detached worktree, removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="ionwire-baseline-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
    try:
        (tmp / "path").mkdir()
        (tmp / "path" / "ionwire").symlink_to(tree)
        yield str(tmp / "path")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


_CURRENT_PATH: list[str] = []


def current_tree_path() -> str:
    """A PYTHONPATH entry under which ``import ionwire`` is this checkout (REPO), whatever ionwire
    the interpreter has installed (an editable install of another checkout, a wheel); removed at
    exit."""
    if not _CURRENT_PATH:
        import atexit
        import shutil

        tmp = Path(tempfile.mkdtemp(prefix="ionwire-current-"))
        (tmp / "ionwire").symlink_to(REPO)
        atexit.register(shutil.rmtree, tmp, True)
        _CURRENT_PATH.append(str(tmp))
    return _CURRENT_PATH[0]


def run_cli(args: list[str], *, pythonpath: str | None = None, env: dict | None = None,
            cwd: str | None = None) -> dict:
    """Run ``ionwire ARGS`` in a child; wall time, CPU seconds (user + system, from wait4) and peak
    RSS of the child, and its stdout.  Raises CalledProcessError on a non-zero exit.
    ``pythonpath`` None: the child imports this checkout (current_tree_path)."""
    e = dict(os.environ if env is None else env)
    pythonpath = pythonpath or current_tree_path()
    e["PYTHONPATH"] = pythonpath + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    fd, rss_file = tempfile.mkstemp(prefix="ionwire-rss-")
    os.close(fd)
    e["IONWIRE_BENCH_MAXRSS"] = rss_file
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLI, *args], env=e, cwd=cwd or str(REPO),
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        maxrss = int(Path(rss_file).read_text() or 0) * 1024
    finally:
        os.unlink(rss_file)
    if proc.returncode:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"ionwire {' '.join(args)} failed (exit {proc.returncode}): {tail}")
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_MiB": maxrss / 2**20, "stdout": proc.stdout}
