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
    types_ = [UserError, FileNotFoundError, IsADirectoryError, PermissionError]
    try:
        import tomllib

        types_.append(tomllib.TOMLDecodeError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types_)


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
    except KeyboardInterrupt:
        print("ionwire: interrupted", file=sys.stderr)
        return 130
    except _user_error_types() as exc:
        if args.traceback:
            raise
        print(f"ionwire {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
