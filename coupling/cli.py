"""The ``ionwire`` command line: a thin table of subcommands (ASE ``ase/cli/main.py`` style).

Each subcommand is a module in :mod:`ionwire.coupling.commands` with a docstring (its help text),
``add_arguments(parser)`` and ``run(args)``.  Imports are lazy so ``ionwire --help`` is fast.
User errors (bad config, bad input file) become one line on stderr and exit status 2;
``--traceback`` shows the full traceback instead.  All logic lives in the library.

Conventions shared by every command (added here, not in the command modules):

- stdout carries the command's result: a human-readable summary, or with ``--json`` exactly one
  JSON document (every command that produces a result has ``--json``);
- stderr carries diagnostics through :mod:`logging`: the library logs to ``ionwire.<package>...``
  loggers (``logging.getLogger(__name__)``; library code never prints) and the CLI installs one
  handler on the ``ionwire`` logger (Python warnings are routed there too).  Default level
  WARNING; ``-v`` INFO, ``-vv`` DEBUG; ``-q`` ERROR only, and also suppresses the human-readable
  summary on stdout and the progress bars (``--json`` output is still written).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys

# (name, module) -- one line each; the module holds the logic's entry point
COMMANDS = [
    ("bulk", "ionwire.coupling.commands.bulk"),
    ("bench", "ionwire.coupling.commands.bench"),
    ("continuum", "ionwire.coupling.commands.continuum"),
    ("device", "ionwire.coupling.commands.device"),
    ("parameterize", "ionwire.coupling.commands.parameterize"),
    ("compare", "ionwire.coupling.commands.compare"),
    ("export", "ionwire.coupling.commands.export"),
    ("snapshot", "ionwire.coupling.commands.snapshot"),
    ("campaign", "ionwire.coupling.commands.campaign"),
    ("init", "ionwire.coupling.commands.init"),
    ("pl", "ionwire.coupling.commands.pl"),
    ("materials", "ionwire.coupling.commands.materials"),
]


from ionwire.structures.errors import UserError  # noqa: E402  (re-exported for the commands)


def _user_error_types() -> tuple[type, ...]:
    from ionwire.structures.errors import IonwireError

    # every OSError (missing folder, read-only file system, full disk) is the user's to fix
    types_ = [IonwireError, OSError, MemoryError]
    try:
        import tomllib

        types_.append(tomllib.TOMLDecodeError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types_)


def _command_error_types() -> tuple[type, ...]:
    """The error types of the libraries behind the commands that are not IonwireErrors (imported
    only when an error is being reported, so a missing optional library does not matter)."""
    found = []
    for module, name in (("ionwire.kmc.h5md", "TrajectoryError"), ("ionwire.continuum.model", "SolverError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):  # pragma: no cover
            pass
    return tuple(found)


def _quiet_broken_pipe() -> int:
    """stdout's reader went away (``ionwire ... | head``): exit quietly, without a traceback at
    interpreter exit when Python flushes stdout."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured by a test)
        pass
    return 141  # 128 + SIGPIPE, as a shell reports a command stopped by a closed pipe


def _version() -> str:
    from ionwire import __version__

    return __version__


def _add_common_options(parser: argparse.ArgumentParser, default) -> None:
    """--traceback, -v and -q; ``default`` is argparse.SUPPRESS on subcommands, so an option given
    before the subcommand (``ionwire -v device ...``) is not reset by the subcommand's parser."""
    parser.add_argument("--traceback", action="store_true", default=default if default is argparse.SUPPRESS else False,
                        help="show the full traceback on errors")
    parser.add_argument("-v", "--verbose", action="count", default=default if default is argparse.SUPPRESS else 0,
                        help="more diagnostics on stderr (-v: progress notes, -vv: debugging detail)")
    parser.add_argument("-q", "--quiet", action="count", default=default if default is argparse.SUPPRESS else 0,
                        help="errors only: no summary on stdout (unless --json), no progress bars, no warnings")


LOGGER_NAME = "ionwire"
LOG_FORMAT = "ionwire: %(levelname)s: %(message)s"


class _Formatter(logging.Formatter):
    """``ionwire: message`` at the default level (notes the user should see, and warnings, whose
    text says what they are), ``ionwire: LEVEL: message`` for -v/-vv output and errors."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.WARNING:
            return f"ionwire: {record.getMessage()}"
        return super().format(record)


def log_level(verbose: int, quiet: int) -> int:
    """The ``ionwire`` logger level for ``-v`` / ``-q`` counts: WARNING by default, -v INFO,
    -vv DEBUG, -q ERROR."""
    v = int(verbose) - int(quiet)
    if v <= -1:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(v, logging.DEBUG)


@contextlib.contextmanager
def configured_logging(level: int):
    """Install one stderr handler on the ``ionwire`` logger (and route Python warnings through
    logging) for the duration of a command; restore the previous state afterwards."""
    logger = logging.getLogger(LOGGER_NAME)
    warn_logger = logging.getLogger("py.warnings")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(LOG_FORMAT))
    saved = (logger.level, logger.propagate, warn_logger.level, warn_logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    warn_logger.addHandler(handler)
    warn_logger.setLevel(max(level, logging.WARNING))
    warn_logger.propagate = False
    logging.captureWarnings(True)
    try:
        yield logger
    finally:
        logging.captureWarnings(False)
        logger.removeHandler(handler)
        warn_logger.removeHandler(handler)
        logger.level, logger.propagate, warn_logger.level, warn_logger.propagate = saved


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionwire",
        description="Halide-ion migration in perovskite heterostructures: kMC and continuum models.",
    )
    _add_common_options(parser, None)
    parser.add_argument("--version", action="version", version=f"ionwire {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built into this installation
            raise
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common_options(p, argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    quiet = args.quiet > 0
    if quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    # -q: the human-readable summary is not written; a requested --json document still is
    silence = quiet and not getattr(args, "json", False)
    try:
        with configured_logging(log_level(args.verbose, args.quiet)) as log, _quiet_unraisable(), \
                (_stdout_to_devnull() if silence else contextlib.nullcontext()):
            log.debug("ionwire %s: %s", _version(), " ".join(sys.argv[1:] if argv is None else argv))
            result = args._run(args)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("ionwire: interrupted", file=sys.stderr)
        _exit_now_if_hdf5_is_broken(130)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Exception as exc:
        if args.traceback or not isinstance(exc, _user_error_types() + _command_error_types()):
            if _hdf5_files_abandoned():
                import traceback

                traceback.print_exc()
                _exit_now_if_hdf5_is_broken(1)
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the text
        print(f"ionwire {args.command}: error: {message}", file=sys.stderr)
        _exit_now_if_hdf5_is_broken(2)
        return 2
    return int(result or 0)


def _hdf5_files_abandoned() -> bool:
    hdf5 = sys.modules.get("ionwire.structures.hdf5")
    return bool(hdf5 is not None and getattr(hdf5, "ABANDONED", None))


def _exit_now_if_hdf5_is_broken(status: int) -> None:
    """A write to an HDF5 file failed (a full disk): HDF5 (2.0) crashes (SIGSEGV) when it closes
    such a file, which it would do when Python exits, so the process ends here at once, after
    flushing its output (the files are abandoned open; see ionwire.structures.hdf5.abandon)."""
    if not _hdf5_files_abandoned():
        return
    _release_process_pool_resources()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _release_process_pool_resources() -> None:
    """Before os._exit: the cleanups multiprocessing runs at a normal exit (the semaphores of a
    stopped worker pool's queues are unlinked and unregistered), without which its resource
    tracker would add a 'leaked semaphore objects' warning to the one-line error.  Only the
    finalizers of priority >= 0, as at the first stage of a normal exit: no child is joined."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        with contextlib.suppress(Exception):
            util._run_finalizers(0)


@contextlib.contextmanager
def _quiet_unraisable():
    """Errors Python cannot raise (h5py objects that fail to release a file after a failed disk
    write) go to the debug log instead of dumping tracebacks on stderr."""
    old = sys.unraisablehook, sys.excepthook

    def hook(unraisable):
        logging.getLogger(LOGGER_NAME).debug("ignored in %r: %s", unraisable.object, unraisable.exc_value)

    def excepthook(kind, value, tb):  # Cython's __dealloc__ errors are printed through it first
        logging.getLogger(LOGGER_NAME).debug("ignored: %s: %s", kind.__name__, value)

    sys.unraisablehook, sys.excepthook = hook, excepthook
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = old


@contextlib.contextmanager
def _stdout_to_devnull():
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
