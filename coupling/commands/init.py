"""Start a config: write a commented, valid template of a run type, or copy a shipped example.

ionwire init RUNTYPE [-o FILE] writes every key the run type's config reads, set to the values of
the run type's shipped example (a run that finishes in seconds to minutes) or else to the
documented default, each with its unit, its allowed values and its default; optional tables and
keys whose default is "unset" are written commented out.  The template loads and validates
through the same loader the command uses.  Run types (and the command that reads the file):

  continuum  ionwire continuum FILE / ionwire campaign FILE   (Fig. 1e sweep, continuum model)
  device     ionwire device FILE -o OUT.h5                    (device kMC trajectory)
  compare    ionwire compare FILE -o DIR                      (kMC ensemble vs continuum)
  onsager    ionwire parameterize FILE -o TABLE.h5            (l_ab(x_Cl) table from bulk kMC)
  bulk       ionwire campaign FILE                            (bulk kMC replicas over a sweep)
  campaign   ionwire campaign FILE                            (a device-kMC sweep over fields)

ionwire init --example NAME [-o FILE] copies one of the example configs shipped inside the
package (ionwire/runs/NAME.toml); ionwire init --list lists run types and examples.  Without -o
the file is RUNTYPE.toml (NAME.toml) in the current directory; an existing file is not replaced
unless --force.

example: ionwire init device -o my_device.toml && ionwire device my_device.toml -o my_device.h5
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

# run type -> (example config it starts from or None, loader "module:function", what reads it)
RUN_TYPES: dict[str, tuple[str | None, str, str]] = {
    "continuum": ("fig1e", "ionwire.continuum.experiment:load_config", "ionwire continuum FILE (or ionwire campaign FILE)"),
    "device": ("device_small", "ionwire.kmc.device:load_config", "ionwire device FILE -o OUT.h5"),
    "compare": ("validate", "ionwire.coupling.compare:load_config", "ionwire compare FILE -o REPORT_DIR"),
    "onsager": ("onsager", "ionwire.coupling.parameterize:load_config", "ionwire parameterize FILE -o TABLE.h5 "
                                                                      "(or ionwire campaign FILE)"),
    # campaign configs: validated by ionwire.coupling.campaign.load_spec through the run-type registry
    "bulk": (None, "ionwire.coupling.campaign:load_spec", "ionwire campaign FILE"),
    "campaign": ("device_small", "ionwire.coupling.campaign:load_spec", "ionwire campaign FILE"),
}
# starting values where a run type has no shipped example, or adds a [sweep] to one
EXTRA_VALUES: dict[str, dict] = {
    "bulk": {"sweep": {"composition": [0.1, 0.5, 0.9], "replicas": 4}},
    "campaign": {"sweep": {"field_V_per_um": [-2.0, 2.0], "replicas": 2}},
}
HEADERS = {
    "continuum": "The continuum reaction-drift-diffusion-Poisson model of the biased CsPbBr3 | CsPbCl3 wire:\n"
                 "one run per field of [sweep], 4 h of bias, the two electrode rates fitted by [calibration].",
    "device": "The device kMC: a biased CsPbBr3 | CsPbCl3 wire between two electrodes, atom by atom\n"
              "(H5MD trajectory).  Values: the ~100 nm example wire of runs/device_small.toml.",
    "compare": "Atomistic (device-kMC ensemble) against continuum on one parameter set at the kMC's scale\n"
               "(runs/validate.toml: x_V^eq = 1e-3, a 50 nm wire, microseconds).",
    "onsager": "The Onsager table l_ab(x_Cl) of the anion sublattice from independent bulk kMC replicas.",
    "bulk": "A campaign of independent bulk kMC replicas (periodic random Br/Cl alloy) over a sweep;\n"
            "replica means and standard errors per point in bulk_table.json.",
    "campaign": "A campaign: a run type's own config with run = \"<run type>\" and a [sweep] table.  Every\n"
                "list in [sweep] is an axis; axes combine as a Cartesian product (combine = \"zip\":\n"
                "element-wise); replicas = N repeats every point with independent seeds.  Here: device-kMC\n"
                "trajectories of the runs/device_small.toml wire, forward and reverse, 2 seeds each.",
}
# keys described here; units follow from the key's suffix (UNIT_SUFFIXES)
DESCRIPTIONS = {
    "run": "the run type of this file",
    "preset": "hop-barrier preset: random_alloy (barrier by hopping species) or host (by octahedron)",
    "relative_permittivity": "eps / eps0",
    "equilibrium_fraction": "x_V^eq of the first halide's pure end member (table keyed by halide), "
                            "vacancies per anion site",
    "halides": "the halide pair: the first fills the left segment, the second the right one",
    "set": "named material set that gives the values not set here (ionwire materials lists them)",
    "migration_barrier_eV": "vacancy migration barrier of each end member: the presets' E (table keyed by halide)",
    "formation_energy_eV": "vacancy formation energies of the two end members (table keyed by halide)",
    "alpha_um_per_V_s": "electrode creation rate per field on each end member (table keyed by halide)",
    "barriers_eV": "hop barriers X_in_Y: halide X hopping in a Y-rich octahedron",
    "potential_imposed_at": "where the electrode potentials are imposed: outer or inner contact edges",
    "junction_position_um": "initial Br | Cl interface; unset = the middle of the gap",
    "nx": "unit cells across the wire (x)", "ny": "unit cells across the wire (y)",
    "seed": "root seed of the random numbers", "hops": "false: electrode reactions only",
    "max_events": "stop after this many events (0: no limit)",
    "species": "write the per-site species of every frame (needed by export and snapshot)",
    "workers": "processes for the field sweep", "n_nodes": "mesh nodes along the wire",
    "rtol": "relative tolerance of the time integration",
    "cells": "periodic supercell, unit cells (nx, ny, nz)", "x_cl": "Cl fraction of the halide sites",
    "composition": "the second halide's fraction of the halide sites (a table keyed by it in [bulk])",
    "vacancies": "number of vacancies; unset = 1 % of the anion sites",
    "vacancy_fraction": "vacancies per anion site", "events": "hops per replica after the warm-up",
    "warmup_events": "hops discarded first (bulk campaigns: unset = events // 10)",
    "blocks": "blocks per replica for the l_ab estimate", "replicas": "independent replicas per point",
    "enabled": "switch", "bin_cells": "unit cells per comparison bin",
    "onsager": "\"theory\" (Moleko-Allnatt-Allnatt) or an Onsager table file (HDF5)",
    "onsager_table": "Onsager table file (HDF5) of ionwire parameterize; unset = the theory",
    "f0": "tracer correlation factor of the theory; unset = the kMC-measured value",
    "combine": "product (every combination) or zip (element-wise)",
}
UNIT_SUFFIXES = (  # longest first
    ("_um_per_V_s", "um/(V s)"), ("_V_per_um", "V/um"), ("_cm2_per_s", "cm^2/s"), ("_per_s", "1/s"),
    ("_um", "um"), ("_eV", "eV"), ("_K", "K"), ("_A", "Angstrom"), ("_s", "s"), ("_V", "V"),
)
NOT_FOR_FILES = {"calibration_record"}  # set by the code, not by a config file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_type", nargs="?", choices=sorted(RUN_TYPES), metavar="RUNTYPE",
                        help=f"template to write: {', '.join(RUN_TYPES)}")
    parser.add_argument("--example", metavar="NAME", default=None,
                        help="copy the shipped example config NAME (see --list) instead of a template")
    parser.add_argument("--list", action="store_true", help="list the run types and shipped examples")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="file to write (default RUNTYPE.toml or NAME.toml here); '-' for stdout")
    parser.add_argument("--force", action="store_true", help="replace an existing FILE")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")


# ---------------------------------------------------------------------------------------------
# shipped examples

def examples_dir():
    """The example configs inside the installed package (``ionwire/runs``), as a Traversable."""
    return resources.files("ionwire") / "runs"


def example_names() -> list[str]:
    return sorted(p.name[:-5] for p in examples_dir().iterdir() if p.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The text of the shipped example ``name`` (with or without ``.toml``)."""
    from ionwire.structures.errors import UserError

    stem = name[:-5] if name.endswith(".toml") else name
    names = example_names()
    if stem not in names:
        raise UserError(f"no example config {name!r}; shipped: {', '.join(names)}")
    return (examples_dir() / f"{stem}.toml").read_text()


# ---------------------------------------------------------------------------------------------
# templates

def _import(target: str):
    import importlib

    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def loader(run_type: str):
    """The function that validates a mapping of ``run_type`` (the one its command uses; for the
    campaign forms ``load_spec(path, mapping)``)."""
    return _import(RUN_TYPES[run_type][1])


def load_template(run_type: str, text: str):
    """Validate ``text`` as a config of ``run_type`` through the real loaders; the config object."""
    import tomllib

    return load_template_mapping(run_type, tomllib.loads(text))


def _starting_values(run_type: str) -> dict:
    import tomllib

    example = RUN_TYPES[run_type][0]
    values = tomllib.loads(example_text(example)) if example else {}
    values = _merge(values, EXTRA_VALUES.get(run_type, {}))
    values["run"] = "device" if run_type == "campaign" else run_type
    return values


def _merge(a: dict, b: Mapping) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        import numpy as np

        text = repr(v)
        if "e" not in text and (abs(v) >= 1e6 or 0 < abs(v) < 1e-3):
            text = np.format_float_scientific(v, unique=True, trim="-")
        return text
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):  # an inline table, e.g. a per-halide value {Br = 1.3e-5, Cl = 3.8e-7}
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def unit_of(key: str) -> str | None:
    """The unit a key's name declares by its suffix (``wire_length_um`` -> ``um``), or None."""
    for suffix, unit in UNIT_SUFFIXES:
        if key.endswith(suffix):
            return unit
    return None


def _comment(key: str, hint: Any, default: Any, value: Any = dataclasses.MISSING) -> str:
    parts = []
    unit = unit_of(key)
    if unit:
        parts.append(f"[{unit}]")
    if key in DESCRIPTIONS:
        parts.append(DESCRIPTIONS[key])
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        parts.append("one of " + ", ".join(_toml_value(a) for a in typing.get_args(hint)))
    elif origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        for a in typing.get_args(hint):
            if typing.get_origin(a) is typing.Literal:
                parts.append("one of " + ", ".join(_toml_value(x) for x in typing.get_args(a)))
    if default is not dataclasses.MISSING and not dataclasses.is_dataclass(default):
        if default is None:
            parts.append("default: unset")
        elif _same(value, default):
            parts.append("(default)")
        else:
            parts.append(f"default {_toml_value(default)}")
    return "; ".join(parts)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, float) and a == b)


def _first_doc_line(obj) -> str:
    """The first sentence of a section's docstring, without a leading "[name]: "."""
    import re

    doc = " ".join((type(obj).__doc__ or "").strip().split("\n\n")[0].split())
    doc = re.sub(r"^\[[\w.]+\]\s*(\(optional\))?:\s*", "", doc)
    m = re.match(r"(.+?\.)(\s|$)", doc)
    doc = m.group(1).rstrip(".") if m else doc
    return doc if len(doc) <= 100 else doc[:97].rsplit(" ", 1)[0] + " ..."


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


INLINE_MARK = "ionwire.inline"  # field metadata: a section whose tables sit at the file's top level


def _file_fields(obj: Any):
    """(owner, field) of every key of ``obj`` as the config file spells it: fields marked inline
    (their tables sit at the top level of the file) are replaced by their own fields."""
    for f in dataclasses.fields(obj):
        if not f.init or f.name in NOT_FOR_FILES:
            continue
        if f.metadata.get(INLINE_MARK) and dataclasses.is_dataclass(getattr(obj, f.name)):
            yield from _file_fields(getattr(obj, f.name))
        else:
            yield obj, f


def _emit(obj: Any, raw: Mapping, section: str, lines: list[str], commented: bool = False,
          defaulted: dict[str, int] | None = None) -> None:
    """TOML lines for the dataclass ``obj`` (a validated config or section): scalar keys first,
    then sub-tables.  A key is written with its value in ``raw`` (the starting values) or its class
    default; keys whose class default is None and that ``raw`` does not set are commented out
    (showing the value the code uses); tables likewise."""
    scalars, tables = [], []
    halides = _halides_of(obj)
    for owner, f in _file_fields(obj):
        if hasattr(owner, "to_toml_keys"):  # a section whose file keys are built from the halide pair
            if f is not dataclasses.fields(owner)[0]:
                continue
            scalars.extend(_translated_scalars(owner, raw, halides))
            continue
        hints = typing.get_type_hints(type(owner))
        loaded = getattr(owner, f.name)
        default = _field_default(f)
        in_raw = f.name in raw
        if dataclasses.is_dataclass(loaded):
            tables.append((f, loaded, raw.get(f.name, {}), commented or (default is None and not in_raw)))
        elif isinstance(raw.get(f.name), Mapping):  # a free-form table (e.g. a [sweep] of a campaign)
            tables.append((f, raw[f.name], raw[f.name], commented))
        else:
            scalars.append((f, loaded, default, in_raw, hints.get(f.name)))
    head = "# " if commented else ""
    for f, loaded, default, in_raw, hint in scalars:
        if not in_raw and default is not None and default is not dataclasses.MISSING and not _same(loaded, default):
            # a table whose default is an instance (e.g. a comparison's [numerics]) has other
            # defaults than its class: the value the config uses when the key is absent
            default = loaded
        value = raw[f.name] if in_raw else default
        if value is dataclasses.MISSING:
            value = loaded
        comment = _comment(f.name, hint, default, value)
        if value is None:
            shown = "" if loaded is None else f" (the code then uses {_toml_value(loaded)})"
            lines.append(f"# {f.name} = ...{' ' * 4}# {comment}{shown}")
        else:
            if defaulted is not None and not in_raw and not commented:
                defaulted[f"{section}.{f.name}" if section else f.name] = len(lines)
            lines.append(f"{head}{f.name} = {_toml_value(value)}{'    # ' + comment if comment else ''}")
    for f, sub, sub_raw, sub_commented in tables:
        name = f"{section}.{f.name}" if section else f.name
        lines.append("")
        if dataclasses.is_dataclass(sub):
            doc = _first_doc_line(sub)
            note = "  (optional: uncomment to use)" if sub_commented and not commented else ""
            lines.append(f"{'# ' if sub_commented else ''}[{name}]{'    # ' + doc if doc else ''}{note}")
            _emit(sub, sub_raw if isinstance(sub_raw, Mapping) else {}, name, lines, sub_commented, defaulted)
        else:
            lines.append(f"{head}[{name}]")
            for k, v in sub.items():
                desc = _comment(k, None, dataclasses.MISSING)
                lines.append(f"{head}{k} = {_toml_value(v)}{'    # ' + desc if desc else ''}")


def _halides_of(obj: Any):
    for probe in (obj, getattr(obj, "params", None), getattr(obj, "material", None)):
        h = getattr(probe, "halides", None)
        if isinstance(h, tuple):
            return h
    return None


def _translated_scalars(owner: Any, raw: Mapping, halides):
    """The scalar entries of a section whose file keys differ from its fields (per-halide tables
    keyed by halide symbol): (key, loaded, default, in_raw, hint) from the section's own
    to_mapping, so the template writes what the loader reads."""
    from ionwire.structures.parameters import to_mapping

    halides = getattr(owner, "halides", None) or halides
    loaded = to_mapping(owner, halides)
    defaults = to_mapping(type(owner)(**({"halides": halides} if hasattr(owner, "halides") else {})), halides)
    hints = typing.get_type_hints(type(owner))
    # fields whose default is None (the material set's or the preset's value): written commented out
    file_key = {"barriers": "barriers_eV", "reference_fraction": "equilibrium_fraction",
                "alphas_um_per_V_s": "alpha_um_per_V_s"}
    optional = {file_key.get(f.name, f.name) for f in dataclasses.fields(owner) if f.default is None}
    out = []
    for key, value in loaded.items():
        default = None if key in optional else defaults.get(key, dataclasses.MISSING)
        out.append((_Key(key), value, default, key in raw, hints.get(key)))
    return out


@dataclasses.dataclass(frozen=True)
class _Key:
    name: str


def template_text(run_type: str) -> str:
    """The commented TOML template of ``run_type`` (see the module docstring)."""
    from ionwire.structures.errors import UserError

    if run_type not in RUN_TYPES:
        raise UserError(f"unknown run type {run_type!r}; choose one of {', '.join(RUN_TYPES)}")
    values = _starting_values(run_type)
    config = load_template_mapping(run_type, values)
    target = config.device if run_type == "campaign" else config
    lines = [f"# ionwire {run_type} config (written by `ionwire init {run_type}`)", "#"]
    lines += ["# " + ln for ln in HEADERS[run_type].splitlines()]
    lines += ["#", f"#   {RUN_TYPES[run_type][2]}", "#",
              "# Every key the run reads is listed; units in [brackets]; a commented key or table is",
              "# optional (its default is unset).  Unknown keys and out-of-range values stop the run with",
              "# one error naming the key.", ""]
    body: list[str] = []
    raw = dict(values)
    if "run" not in {f.name for _, f in _file_fields(target)}:  # the loader takes it and drops it
        body.append(f"run = {_toml_value(raw.pop('run'))}    # {DESCRIPTIONS['run']}")
    defaulted: dict[str, int] = {}
    _emit(target, raw, "", body, defaulted=defaulted)
    if run_type == "campaign":  # the sweep belongs to the campaign, not to the device config
        body += ["", "[sweep]    # every list is an axis; replicas = N repeats each point"]
        for k, v in values["sweep"].items():
            desc = _comment(k, None, dataclasses.MISSING)
            body.append(f"{k} = {_toml_value(v)}{'    # ' + desc if desc else ''}")
    # a section shared between run types may hold a key this run type refuses (its loader says
    # so naming the key): such a key, written only because it has a default, is commented out
    from ionwire.structures.errors import ParameterError

    for _ in range(len(defaulted) + 1):
        text = "\n".join(lines + body) + "\n"
        try:
            load_template(run_type, text)
            return text
        except ParameterError as exc:
            message = str(exc)
            hit = [k for k in sorted(defaulted, key=len, reverse=True)
                   if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", message)]
            if not hit:
                raise
            i = defaulted.pop(hit[0])
            body[i] = f"# {body[i]}    (not read by this run type: {message})"
    return text


def load_template_mapping(run_type: str, mapping: Mapping):
    """The validated config object of ``mapping`` for ``run_type`` (through the real loaders)."""
    if run_type in ("bulk", "campaign"):
        from ionwire.coupling.campaign import load_spec

        return load_spec(Path(f"{run_type}.toml"), mapping).config
    return loader(run_type)(mapping)


# ---------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    import logging

    from ionwire.structures.errors import UserError

    log = logging.getLogger(__name__)
    if args.list:
        rows = {"run_types": {k: v[2] for k, v in RUN_TYPES.items()}, "examples": example_names()}
        if args.json:
            print(json.dumps(rows))
        else:
            print("run types (ionwire init RUNTYPE):")
            for k, v in rows["run_types"].items():
                print(f"  {k:10s} {v}")
            print("examples (ionwire init --example NAME): " + ", ".join(rows["examples"]))
        return 0
    if (args.run_type is None) == (args.example is None):
        raise UserError("give a RUNTYPE or --example NAME (one of them; --list shows both)")
    if args.example is not None:
        text = example_text(args.example)
        stem = args.example[:-5] if args.example.endswith(".toml") else args.example
        what = {"example": stem}
    else:
        text = template_text(args.run_type)
        load_template(args.run_type, text)  # never write a template that does not validate
        stem = args.run_type
        what = {"run_type": stem}
    out = args.output or f"{stem}.toml"
    if out == "-":
        print(text, end="")
        return 0
    path = Path(out)
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; use --force to replace it or -o another name")
    if not path.parent.is_dir():
        raise UserError(f"output directory {str(path.parent)!r} does not exist")
    path.write_text(text)
    log.info("wrote %s (%d lines)", path, text.count("\n"))
    if args.json:
        print(json.dumps({**what, "output": str(path), "lines": text.count("\n")}))
    else:
        print(f"wrote {path}" + (f": {RUN_TYPES[stem][2]}" if stem in RUN_TYPES and "run_type" in what else ""))
    return 0
