"""Where numba keeps the compiled kernels, keyed by the source of every kernel module.

numba's own cache decides that a compiled function is stale only from the file that defines it.
The device kernels inline helpers from ``kmc/_kernels.py`` and ``structures/lattice.py``, so after
an update of one of those files numba would happily load machine code built against the old
helpers (wrong results or a crash).  Keying the cache folder by a hash of all kernel sources makes
any edit start a fresh cache.  The base folder is ``$NUMBA_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/ionwire/numba`` (``~/.cache/ionwire/numba``).

Call :func:`configure` before any ``@numba.njit(cache=True)`` decorator runs (the kernel modules
import this first); it is idempotent.  It also prints one line on stderr the first time in a
process that numba has to compile an ionwire kernel (a cold cache: the first run after an
install or an update takes tens of CPU seconds more); ``IONWIRE_QUIET_COMPILE=1`` silences it.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numba

_ROOT = Path(__file__).resolve().parent.parent
# every module whose numba functions are compiled into another module's cached code
_KERNEL_SOURCES = ("structures/lattice.py", "structures/electrode_law.py", "kmc/_kernels.py", "kmc/_device_kernels.py", "continuum/_kernels.py")
_configured: str | None = None


def source_digest() -> str:
    """First 16 hex digits of the SHA-256 of the kernel sources (and the numba version)."""
    h = hashlib.sha256(numba.__version__.encode())
    for rel in _KERNEL_SOURCES:
        path = _ROOT / rel
        h.update(rel.encode())
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def configure() -> str:
    """Point numba's cache at ``<base>/<digest>`` and return that folder."""
    global _configured
    if _configured is None:
        base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "ionwire", "numba")
        _configured = os.path.join(base, source_digest())
        numba.config.CACHE_DIR = _configured
        _install_locator()
        _announce_compilation()
    return _configured


COMPILE_NOTICE = "compiling the numerical kernels once (tens of seconds; later runs load them from {})"
_announced = False


def _announce_compilation() -> None:
    """One stderr line when numba first compiles an ionwire function in this process (numba
    raises the "numba:compile" event only on a cache miss)."""
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover
        return

    class _Notice(event.Listener):
        def on_start(self, ev):
            global _announced
            if _announced or os.environ.get("IONWIRE_QUIET_COMPILE"):
                return
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if module.startswith("ionwire"):
                _announced = True
                # a notice the user must see once (the first run waits for the compiler): WARNING,
                # shown by the command line's handler and by Python's last-resort handler alike
                logging.getLogger("ionwire.structures.jit").warning(COMPILE_NOTICE.format(_configured))

        def on_end(self, ev):
            pass

    event.register("numba:compile", _Notice())


def _install_locator() -> None:
    """Let numba find the package's kernels by their path inside the package, not by the
    absolute folder of the checkout, so that a reinstall elsewhere (site-packages instead of an
    editable checkout, another clone of the same sources) reuses the compiled kernels.  Safe: the
    folder is keyed by the hash of every kernel source, and numba checks each defining file by a
    hash of its content.  Files outside the package keep numba's own locators."""
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - a numba without this layout keeps its default
        return
    base_cls = getattr(caching, "UserProvidedCacheLocator", None) or getattr(caching, "_UserProvidedCacheLocator", None)
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    if base_cls is None or impl is None or any(getattr(c, "_ionwire", False) for c in impl._locator_classes):
        return

    class PackageRelativeLocator(base_cls):
        _ionwire = True

        @classmethod
        def get_suitable_cache_subpath(cls, py_file):
            try:
                rel = Path(py_file).resolve().parent.relative_to(_ROOT)
            except ValueError:
                return base_cls.get_suitable_cache_subpath(py_file)
            return "ionwire_" + "_".join(rel.parts)

        @classmethod
        def from_function(cls, py_func, py_file):
            try:
                Path(py_file).resolve().relative_to(_ROOT)
            except (ValueError, OSError):
                return None
            return super().from_function(py_func, py_file)

    impl._locator_classes.insert(0, PackageRelativeLocator)
