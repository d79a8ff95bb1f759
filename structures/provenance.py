"""Provenance of derived parameters and reports: code, git commit, library versions, time, command."""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_LIBRARIES = ("numpy", "numba", "scipy", "h5py")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    """HEAD commit of the source tree ionwire runs from, '+dirty' if it has local changes;
    'unknown' outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                "--", "kmc", "continuum", "coupling", "structures"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(command: str | None = None, config_toml: str = "") -> dict:
    """{created_utc, code_version, git_commit, python, numpy, numba, scipy, h5py, platform,
    command, config_toml}: strings, HDF5-attribute and JSON friendly."""
    out = {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": _version("ionwire"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": command if command is not None else " ".join(sys.argv),
        "config_toml": config_toml,
    }
    for lib in _LIBRARIES:
        out[lib] = _version(lib)
    return out
