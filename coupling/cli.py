"""The ``ionwire`` command line: a thin table of subcommands (ASE ``ase/cli/main.py`` style).

Each subcommand is a module in :mod:`ionwire.coupling.commands` with a docstring (its help text),
``add_arguments(parser)`` and ``run(args)``.  Imports are lazy so ``ionwire --help`` is fast.
User errors (bad config, bad input file) become one line on stderr and exit status 2;
``--traceback`` shows the full traceback instead.  All logic lives in the library.
"""
from __future__ import annotations

import argparse
import importlib
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionwire",
        description="Halide-ion migration in perovskite heterostructures: kMC and continuum models.",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
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
        p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        result = args._run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("ionwire: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Exception as exc:
        if args.traceback or not isinstance(exc, _user_error_types() + _command_error_types()):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the text
        print(f"ionwire {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
