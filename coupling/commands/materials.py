"""List the named material sets: their halide pair, every value with its unit and source, and the
references they cite (structures.materials).

A config selects a set with ``[material] set = "NAME"``; any of its keys can still be set in the
config.  A value marked "missing" has no source; a config using that set must give it.

example: ionwire materials --set "CsPbBr3 | CsPbI3"
"""
from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("--set", dest="set_name", metavar="NAME", default=None,
                        help="show this set only (default: every set)")
    parser.add_argument("--json", action="store_true", help="print the sets as one JSON object")


def _format_value(value, unit: str) -> str:
    if isinstance(value, dict):
        body = ", ".join(f"{h} = {'missing' if v is None else f'{v:g}'}" for h, v in value.items())
        return f"{{{body}}} {unit}"
    return "missing" if value is None else f"{value:g} {unit}"


def run(args) -> int:
    from ionwire.structures import materials
    from ionwire.structures.errors import UserError

    if args.set_name is not None:
        try:
            chosen = [materials.get(args.set_name)]
        except ValueError as exc:
            raise UserError(str(exc)) from None
    else:
        chosen = [materials.get(n) for n in materials.names()]
    if args.json:
        print(json.dumps({"default": materials.DEFAULT_SET.name, "sets": [s.as_dict() for s in chosen]}, indent=1))
        return 0
    for s in chosen:
        default = "  (default)" if s.name == materials.DEFAULT_SET.name else ""
        print(f'set = "{s.name}"{default}')
        print(f"  halides = {list(s.halides)}: {s.description}")
        for key, v in s.values.items():
            print(f"  {key} = {_format_value(v.value, v.unit)}")
            print(f"      {v.source}")
        if s.references:
            print("  references:")
            for ref in s.references.values():
                print(f"    {ref}")
        print()
    return 0
