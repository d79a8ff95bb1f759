"""The one parameter set that both models read (docs/model.md sections 2-4, 7, 9).

Every section is a frozen dataclass validated on construction; ``from_mapping`` builds a section
(recursively) from a TOML table and rejects unknown keys, wrong types and out-of-range values with
one :class:`ParameterError` that names the key.  Units are in the field names.

Sources of defaults (see docs/model.md):
- a = 5.8 Angstrom: paper Fig. 1c caption.
- nu0 = 1e13 1/s, T = 300 K: docs/model.md section 4.
- barriers 0.25 eV (CsPbBr3), 0.29 eV (CsPbCl3): Mizusaki, Arai, Fueki, Solid State Ionics 11, 203 (1983).
- eps = 25 eps0: paper, citing its ref. 33.
- formation energies 1.32 / 1.44 eV: paper, citing Lai et al. PNAS 2018.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import materials, paper
from .electrode_law import RateLaw, rate_law
from .temperature import check_temperature, temperature_factor
from .units import BOLTZMANN_EV_PER_K


from .errors import ParameterError  # noqa: E402  (re-exported: the config layer's error)


# --------------------------------------------------------------------------------------------
# generic, strict construction of frozen dataclasses from TOML mappings
# --------------------------------------------------------------------------------------------
#: dataclass field metadata key of :func:`inline_field`
INLINE = "ionwire.inline"


def inline_field(cls: type) -> Any:
    """A dataclass field holding a ``cls`` whose tables sit at the top level of the config file
    (``from_mapping`` / ``to_mapping`` flatten it); default: ``cls()``."""
    return field(default_factory=cls, metadata={INLINE: True})


def _check_type(value: Any, annotation: Any, where: str, halides: tuple[str, str] | None = None) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ParameterError(f"{where}: expected a string, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return _check_type(value, a, where, halides)
            except ParameterError as exc:  # try the next alternative
                errors.append(str(exc))
        raise ParameterError(errors[0])
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParameterError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if typing.get_origin(annotation) is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ParameterError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if dataclasses.is_dataclass(annotation):
        if dataclasses.is_dataclass(value):
            return value
        return from_mapping(annotation, value, where, halides=halides)
    return value


def from_mapping(cls: type, data: Mapping[str, Any] | None, where: str = "", base: Any = None,
                 halides: tuple[str, str] | None = None) -> Any:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and bad values raise.

    ``where`` is the dotted path of this table in the config file, used in error messages.
    A field made by :func:`inline_field` (a run config's shared parameter set) takes its own
    fields from the tables of ``data`` itself, so the config holds the set while the file keeps
    the set's tables at its top level.
    Keys missing from ``data`` take the class defaults, or the values of ``base`` (an instance of
    ``cls``) if given.  A field whose default is an instance (``numerics: Numerics =
    SOME_NUMERICS``, rather than a default_factory) is built on top of that instance, so a
    config that sets one key of the table keeps the other values of that instance.

    A class with a classmethod ``from_toml_keys(data, where, halides)`` translates its TOML
    table first (per-halide tables keyed by halide symbol, renamed keys); ``halides`` is the
    pair of the enclosing parameter set (the class itself may read it from ``data``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where or cls.__name__}: expected a table, got {data!r}")
    translate = getattr(cls, "from_toml_keys", None)
    if translate is not None:
        data, halides = translate(data, where, halides)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    inline = {f.name: [g.name for g in dataclasses.fields(hints[f.name]) if g.init]
              for f in fields.values() if f.metadata.get(INLINE)}
    names = [n for name in fields for n in inline.get(name, [name])]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ParameterError(
            f"unknown key {prefix}{unknown[0]!s} (allowed in [{where or cls.__name__}]: {', '.join(names)})"
        )
    kwargs = {}
    for name in fields:
        if name in inline:
            kwargs[name] = from_mapping(hints[name], {k: data[k] for k in inline[name] if k in data}, where,
                                        halides=halides)
        elif name in data:
            key = f"{where}.{name}" if where else name
            default = fields[name].default
            if (dataclasses.is_dataclass(default) and not isinstance(default, type)
                    and isinstance(data[name], Mapping)):
                kwargs[name] = from_mapping(type(default), data[name], key, base=default, halides=halides)
            else:
                kwargs[name] = _check_type(data[name], hints[name], key, halides)
            if (name == "seed" or name.endswith("_seed")) and kwargs[name] is not None:
                check_seed(kwargs[name], key)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except ParameterError as exc:
        if where and not str(exc).startswith(where):
            raise ParameterError(f"{where}.{exc}") from None
        raise


def read_toml(path) -> tuple[dict, str]:
    """(mapping, text) of a TOML config file; a syntax error becomes a ParameterError naming the file."""
    import tomllib
    from pathlib import Path

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                             "a TOML config must be UTF-8") from None
    except IsADirectoryError:
        raise ParameterError(f"{path}: is a folder, not a TOML config file") from None
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such config file") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{path}: {exc}") from None


def to_mapping(obj: Any, halides: tuple[str, str] | None = None) -> dict:
    """The inverse of :func:`from_mapping`: a plain dict (TOML/JSON/HDF5-attribute friendly).

    The tables of an :func:`inline_field` are put at the level of ``obj`` (the file layout).
    A class with a method ``to_toml_keys(out, halides)`` writes its per-halide values back as
    tables keyed by halide symbol (``halides``: the pair of the enclosing parameter set)."""
    own = getattr(obj, "halides_of_set", None)
    if own is not None:
        halides = own()
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.metadata.get(INLINE):
            out.update(to_mapping(v, halides))
            continue
        if dataclasses.is_dataclass(v):
            v = to_mapping(v, halides)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    translate = getattr(obj, "to_toml_keys", None)
    if translate is not None:
        out = translate(out, halides)
    return out


def require(condition: bool, message: str) -> None:
    """Raise :class:`ParameterError` with ``message`` unless ``condition``."""
    if not condition:
        raise ParameterError(message)


# --------------------------------------------------------------------------------------------
# plausibility limits: values no experiment needs and the engines cannot do (a clear error
# instead of an overflow, a hang or an allocator failure much later)
# --------------------------------------------------------------------------------------------
MAX_SEED = 2**64 - 1  # numpy SeedSequence entropy kept as one uint64 in the HDF5 attributes
MAX_FIELD_V_PER_UM = 1000.0  # 0.3 eV of bias per hop: the size of the hop barriers themselves
MAX_DURATION_S = 3.2e9  # a century of simulated time


def check_seed(value: Any, where: str = "seed") -> int:
    """``value`` as a seed in [0, 2^64 - 1]; ParameterError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= MAX_SEED:
        raise ParameterError(f"{where} must be an integer in [0, 2^64 - 1], got {value!r}")
    return int(value)


def check_field(value: float, where: str = "field_V_per_um") -> float:
    """A finite field of at most MAX_FIELD_V_PER_UM in magnitude (V/um)."""
    require(math.isfinite(value) and abs(value) <= MAX_FIELD_V_PER_UM,
            f"{where} = {value:g} V/um is implausible: |E| must be at most {MAX_FIELD_V_PER_UM:g} V/um "
            "(the bias per hop would exceed the hop barriers; dielectric breakdown is far below)")
    return float(value)


def check_duration(value: float, where: str = "duration_s") -> float:
    """A positive duration of at most MAX_DURATION_S seconds."""
    require(math.isfinite(value) and 0 < value <= MAX_DURATION_S,
            f"{where} = {value:g} s is implausible: it must be positive and at most {MAX_DURATION_S:.3g} s "
            "(a century)")
    return float(value)


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (os.sysconf), or None where it cannot be told."""
    try:
        n = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return int(n) if n > 0 else None


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024.0
    return f"{n:.3g} PiB"  # pragma: no cover


def check_memory(n_bytes: float, what: str, fraction: float = 0.8) -> None:
    """ParameterError if ``what`` would need more than ``fraction`` of the machine's memory
    (estimated before anything is allocated)."""
    total = machine_memory_bytes()
    if total is not None and n_bytes > fraction * total:
        raise ParameterError(f"{what} needs about {_bytes(n_bytes)} of memory, more than {fraction:.0%} of "
                             f"this machine's {_bytes(total)}: choose a smaller lattice")


def _positive(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        require(math.isfinite(v) and v > 0, f"{n} must be a positive number, got {v!r}")


# --------------------------------------------------------------------------------------------
# the halide pair (docs/model.md section 2): internal codes 0, 1 (first, second halide), 2
# (vacancy); every name a user reads or writes is built from the pair
# --------------------------------------------------------------------------------------------
#: the default pair: CsPbBr3 | CsPbCl3 (the paper's heterostructure)
DEFAULT_HALIDES = ("Br", "Cl")
#: halogens that sit on a perovskite anion sublattice (chemical symbols, as ASE spells them)
HALOGENS = ("F", "Cl", "Br", "I")


def check_halides(value: Any, where: str = "material.halides") -> tuple[str, str]:
    """Two different halogen symbols (``HALOGENS``) as a tuple; ParameterError naming ``where``."""
    require(isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(h, str) for h in value),
            f"{where} must be a list of two halide symbols such as [\"Br\", \"Cl\"], got {value!r}")
    for h in value:
        require(h in HALOGENS, f"{where}: {h!r} is not a halogen symbol (one of {', '.join(HALOGENS)})")
    require(value[0] != value[1], f"{where} must name two different halides, got {list(value)!r}")
    return (value[0], value[1])


def _halides_of_material_table(data: Mapping, where: str = "material") -> tuple[str, str]:
    """The halide pair a [material] table declares: its ``halides``, else its set's, else the
    default set's."""
    prefix = f"{where}." if where else ""
    if "halides" in data:
        return check_halides(data["halides"], f"{prefix}halides")
    name = data.get("set", materials.DEFAULT_SET.name)
    if isinstance(name, str) and name in materials.SETS:
        return tuple(materials.SETS[name].halides)
    return DEFAULT_HALIDES  # an unknown set: Material itself reports it


def halide_table(value: Any, halides: tuple[str, str], where: str, keys: tuple[str, ...] | None = None,
                 example: str = "...") -> tuple:
    """The values of a TOML table keyed by halide symbol (or by ``keys``), in the order of ``keys``
    (default: the pair).  Missing and unknown keys raise one ParameterError naming them."""
    keys = tuple(halides) if keys is None else keys
    if not isinstance(value, Mapping):
        body = ", ".join(f"{k} = {example}" for k in keys)
        raise ParameterError(f"{where} must be a table keyed by halide, e.g. {where.rsplit('.', 1)[-1]} = "
                             f"{{{body}}}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ParameterError(f"unknown key {where}.{unknown[0]} (the halides are {', '.join(halides)}; "
                             f"allowed: {', '.join(keys)})")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ParameterError(f"{where}.{missing[0]} is missing (give {', '.join(keys)})")
    return tuple(value[k] for k in keys)


def one_halide_entry(out: dict, key: str, field: str, halides: tuple[str, str], which: int, where: str,
                     meaning: str) -> None:
    """In place: a TOML table ``key = {<halides[which]> = x}`` that names one halide of the pair
    becomes ``out[field] = x``.  A table naming only the other halide is refused with what the
    key is (``meaning``); other mistakes as in :func:`halide_table`.  Nothing if ``key`` is absent."""
    if key not in out:
        return
    value = out.pop(key)
    right, other = halides[which], halides[1 - which]
    if isinstance(value, Mapping) and set(value) == {other}:
        raise ParameterError(f"{where}.{key} is {meaning}: write {{{right} = ...}}, not {{{other} = ...}}")
    (out[field],) = halide_table(value, halides, f"{where}.{key}", (right,))


def _renamed(data: Mapping, where: str, rules) -> None:
    """One ParameterError for the first key of ``data`` that an older format used: ``rules`` is a
    list of (regex, function(match) -> the new key's spelling)."""
    import re

    prefix = f"{where}." if where else ""
    for key in data:
        for pattern, new in rules:
            m = re.fullmatch(pattern, key)
            if m:
                raise ParameterError(f"{prefix}{key} is no longer a key: write {prefix}{new(m)} "
                                     "(per-halide values are tables keyed by the symbols of material.halides)")


# --------------------------------------------------------------------------------------------
# hop barriers (docs/model.md section 4)
# --------------------------------------------------------------------------------------------
PRESETS = ("random_alloy", "host")


@dataclass(frozen=True)
class Barriers:
    """Hop barriers E_{X,Y} (eV): species X hopping across an edge of a Y-rich octahedron, X and Y
    the first (A) or the second (B) halide of the pair.

    The barrier of a hop with n B among its 4 environment sites is
    E_a(X, n) = E_X,A + (E_X,B - E_X,A) n / 4   (docs/model.md section 4).
    TOML: ``[material] barriers_eV = {Br_in_Br = ..., Br_in_Cl = ..., Cl_in_Br = ..., Cl_in_Cl = ...}``
    (names built from the pair, :func:`barrier_keys`).
    """

    first_in_first_eV: float = 0.25
    first_in_second_eV: float = 0.25
    second_in_first_eV: float = 0.29
    second_in_second_eV: float = 0.29

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            require(math.isfinite(v) and 0.0 <= v < 5.0, f"{f.name} must be in [0, 5) eV, got {v!r}")

    @classmethod
    def preset(cls, name: str, E_first_eV: float = 0.25, E_second_eV: float = 0.29) -> "Barriers":
        """``random_alloy``: the barrier depends on the hopping species only;
        ``host``: on the octahedron (first-rich E_first, second-rich E_second) only.
        Defaults: vacancy migration energies of CsPbBr3 / CsPbCl3 (Mizusaki et al. 1983)."""
        if name == "random_alloy":
            return cls(E_first_eV, E_first_eV, E_second_eV, E_second_eV)
        if name == "host":
            return cls(E_first_eV, E_second_eV, E_first_eV, E_second_eV)
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")

    def as_array(self) -> np.ndarray:
        """float64[2, 2]: [hopping species (0 first, 1 second halide), octahedron end member (0, 1)]."""
        return np.array([[self.first_in_first_eV, self.first_in_second_eV],
                         [self.second_in_first_eV, self.second_in_second_eV]])

    def barrier_eV(self, species: int, n_cl: int | np.ndarray) -> float | np.ndarray:
        """E_a(X, n) for hopping species 0 (first) or 1 (second halide) and n second-halide sites of
        the 4 environment sites."""
        e = self.as_array()[species]
        return e[0] + (e[1] - e[0]) * np.asarray(n_cl) / 4.0


def barrier_keys(halides: tuple[str, str]) -> tuple[str, str, str, str]:
    """The TOML keys of the four barriers, in the order of the Barriers fields: X_in_Y."""
    a, b = halides
    return (f"{a}_in_{a}", f"{a}_in_{b}", f"{b}_in_{a}", f"{b}_in_{b}")


_BARRIER_FIELDS = ("first_in_first_eV", "first_in_second_eV", "second_in_first_eV", "second_in_second_eV")


def _from_set(ms: "materials.MaterialSet", key: str, halides: tuple[str, str] | None = None):
    """The value of ``key`` in the material set ``ms`` (a per-halide value as a tuple in the order
    of ``halides``); a ParameterError naming the key when the set has none."""
    entry = ms.values[key]
    missing = entry.missing()
    if missing:
        which = f" for {', '.join(missing)}" if missing != [""] else ""
        raise ParameterError(f"{key} must be given: the material set {ms.name!r} has no value{which} "
                             f"({entry.source})")
    if isinstance(entry.value, dict):
        return tuple(float(entry.value[h]) for h in (halides or ms.halides) if h in entry.value)
    return entry.value


def _pair(value, name: str, positive: bool = False) -> tuple[float, float]:
    v = tuple(value)
    ok = len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                             and (x > 0 or not positive) for x in v)
    require(ok, f"{name} must be two finite{' positive' if positive else ''} numbers, got {value!r}")
    return (float(v[0]), float(v[1]))


@dataclass(frozen=True)
class Material:
    """Lattice, hopping and dielectric parameters shared by the kMC and the continuum model.

    ``set``: the named material set (structures.materials) that gives the values a config does
    not set; ``halides``: the pair (first, second), by default the set's; the first fills the left
    segment of the wire, the second the right one; composition x is the second halide's fraction of
    the halide sites.  A value that is None here is taken from the set (a ParameterError naming
    the key if the set has none).  TOML keys built from the pair: ``formation_energy_eV = {Br =
    1.32, Cl = 1.44}``, ``migration_barrier_eV = {Br = 0.25, Cl = 0.29}`` (the end-member barriers
    of the presets), ``barriers_eV = {Br_in_Br = ..., Br_in_Cl = ..., Cl_in_Br = ..., Cl_in_Cl = ...}``.
    """

    set: str = materials.DEFAULT_SET.name
    halides: tuple[str, str] | None = None
    lattice_constant_A: float | None = None
    attempt_frequency_per_s: float = 1e13
    temperature_K: float = 300.0
    relative_permittivity: float | None = None
    preset: str = "random_alloy"
    # vacancy migration barriers of the pure end members (first, second; eV): the presets' E_A, E_B
    migration_barrier_eV: tuple[float, float] | None = None
    # None: the preset's values; a table barriers_eV = {...} sets all four
    barriers: Barriers | None = None
    # vacancy formation energies of the pure end members (first, second halide; eV);
    # x_V^eq(x) = x_V^eq(first) exp(-(E_f(x) - E_f(first)) / kT), E_f linear in x
    formation_energy_eV: tuple[float, float] | None = None

    def __post_init__(self):
        require(isinstance(self.set, str) and self.set in materials.SETS,
                f"set: unknown material set {self.set!r}; the sets are: {'; '.join(map(repr, materials.SETS))}")
        ms = materials.SETS[self.set]
        halides = ms.halides if self.halides is None else check_halides(self.halides, "halides")
        require(tuple(halides) == tuple(ms.halides),
                f"halides {list(halides)} are not those of the material set {ms.name!r} ({list(ms.halides)}); "
                f"choose a set of this pair (" + ("; ".join(repr(s.name) for s in materials.sets_for(halides))
                                                  or "none is shipped") + ")")
        object.__setattr__(self, "halides", tuple(halides))
        for name in ("lattice_constant_A", "relative_permittivity"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, float(_from_set(ms, f"material.{name}")))
        _positive(self, "lattice_constant_A", "attempt_frequency_per_s", "temperature_K", "relative_permittivity")
        require(self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.formation_energy_eV is None:
            object.__setattr__(self, "formation_energy_eV", _from_set(ms, "material.formation_energy_eV", halides))
        object.__setattr__(self, "formation_energy_eV", _pair(self.formation_energy_eV, "formation_energy_eV"))
        if self.migration_barrier_eV is None:
            if self.barriers is not None and ms.value("material.migration_barrier_eV") is None:
                b = self.barriers  # explicit barriers: their end-member diagonal
                object.__setattr__(self, "migration_barrier_eV", (b.first_in_first_eV, b.second_in_second_eV))
            else:
                object.__setattr__(self, "migration_barrier_eV",
                                   _from_set(ms, "material.migration_barrier_eV", halides))
        e = _pair(self.migration_barrier_eV, "migration_barrier_eV")
        object.__setattr__(self, "migration_barrier_eV", e)
        if self.barriers is None:
            object.__setattr__(self, "barriers", Barriers.preset(self.preset, *e))

    @property
    def material_set(self) -> "materials.MaterialSet":
        """The named material set this material draws its unset values from."""
        return materials.SETS[self.set]

    # -- TOML layout (see from_mapping / to_mapping) --
    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        halides = _halides_of_material_table(data, where)
        pair = f"{{{halides[0]} = ..., {halides[1]} = ...}}"
        old = data.get("barriers")
        if isinstance(old, Mapping) and old:
            import re

            key = sorted(old)[0]
            m = re.fullmatch(r"([A-Z][a-z]?)_in_([A-Z][a-z]?)_eV", key)
            new = f"{m[1]}_in_{m[2]}" if m else barrier_keys(halides)[0]
            raise ParameterError(f"{where}.barriers.{key} is no longer a key: write {where}.barriers_eV = "
                                 f"{{{new} = ..., ...}} (all four of {', '.join(barrier_keys(halides))})")
        _renamed(data, where, [
            (r"formation_energy_([A-Z][a-z]?)_eV", lambda m: f"formation_energy_eV = {pair}"),
            (r"barriers", lambda m: f"barriers_eV = {{{', '.join(k + ' = ...' for k in barrier_keys(halides))}}}"),
        ])
        out = dict(data)
        if "halides" in out and "set" not in out:  # the pair alone: its one shipped set
            candidates = materials.sets_for(halides)
            require(len(candidates) == 1,
                    f"{where}.set must be given for the halides {list(halides)}: " +
                    ("the sets of this pair are " + "; ".join(repr(s.name) for s in candidates) if candidates
                     else "no material set of this pair is shipped (the sets are: "
                          + "; ".join(repr(s) for s in materials.SETS) + ")"))
            out["set"] = candidates[0].name
        for key in ("formation_energy_eV", "migration_barrier_eV"):
            if key in out:
                out[key] = halide_table(out[key], halides, f"{where}.{key}")
        if "barriers_eV" in out:
            values = halide_table(out.pop("barriers_eV"), halides, f"{where}.barriers_eV", barrier_keys(halides))
            out["barriers"] = dict(zip(_BARRIER_FIELDS, values))
        return out, halides

    def to_toml_keys(self, out: dict, halides=None) -> dict:
        h = self.halides
        out["halides"] = list(h)
        out["formation_energy_eV"] = dict(zip(h, self.formation_energy_eV))
        out["migration_barrier_eV"] = dict(zip(h, self.migration_barrier_eV))
        b = out.pop("barriers")
        out["barriers_eV"] = {k: b[f] for k, f in zip(barrier_keys(h), _BARRIER_FIELDS)}
        return out

    def halides_of_set(self) -> tuple[str, str]:
        return self.halides

    @property
    def kT_eV(self) -> float:
        return BOLTZMANN_EV_PER_K * self.temperature_K

    def jump_frequencies_per_s(self) -> dict[str, float]:
        """w_X = nu0 exp(-E_X / kT) in a pure-X environment at zero field (1/s), keyed by halide symbol."""
        b = self.barriers
        return {
            self.halides[0]: self.attempt_frequency_per_s * math.exp(-b.first_in_first_eV / self.kT_eV),
            self.halides[1]: self.attempt_frequency_per_s * math.exp(-b.second_in_second_eV / self.kT_eV),
        }

    def jump_frequency_pair_per_s(self) -> tuple[float, float]:
        """(w_first, w_second): :meth:`jump_frequencies_per_s` in the order of the pair (1/s)."""
        w = self.jump_frequencies_per_s()
        return w[self.halides[0]], w[self.halides[1]]

    def vacancy_fraction_ratio(self, x_cl: float | np.ndarray) -> float | np.ndarray:
        """x_V^eq(x) / x_V^eq(pure first halide): exp(-(E_f(x) - E_f(first)) / kT), E_f linear in
        the second halide's fraction x."""
        dE = (self.formation_energy_eV[1] - self.formation_energy_eV[0]) * np.asarray(x_cl)
        return np.exp(-dE / self.kT_eV)


# --------------------------------------------------------------------------------------------
# the device: vacancies, geometry, electrode reactions (docs/model.md sections 1, 3, 5, 7, 8)
# read by the continuum model (continuum/) AND the device kMC (kmc/)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vacancies:
    """Equilibrium halide-vacancy site fraction of the wire.

    x_V^eq(x, T) = reference_fraction * Material.vacancy_fraction_ratio(x)
                   * exp(-(E_f / k_B) (1/T - 1/reference_temperature_K)),
    reference_fraction the x_V^eq of the first halide's end member at reference_temperature_K and
    E_f its formation energy (Material.formation_energy_eV[0]); the ratio factor: formation
    energy linear in the second halide's fraction x (the Cl segment holds ~100x fewer vacancies at
    300 K); the last factor, structures.temperature.temperature_factor, is exactly 1 at
    T = T_ref and dropped with follows_temperature = false (docs/model.md, temperature section).
    TOML: ``[vacancies] equilibrium_fraction = {Br = 3.33e-8}`` (keyed by the first halide).

    None (the default): the material set's value (:class:`DeviceParameters` fills it in); the
    default set's is 1e-7 / 3 per anion site at 300 K: the paper's "typical halide vacancy
    concentrations ~1e-7 per unit cell" (room temperature) with 3 anion sites per cell; with
    eps = 25 eps0 its Debye length is 0.26 um, the scale docs/model.md section 5 quotes.
    """

    reference_fraction: float | None = None
    reference_temperature_K: float = 300.0
    follows_temperature: bool = True

    def __post_init__(self):
        check_temperature(self.reference_temperature_K, "reference_temperature_K")
        v = self.reference_fraction
        if v is None:
            return
        require(isinstance(v, (int, float)) and math.isfinite(v) and 0.0 < v < 1.0,
                f"equilibrium_fraction must be a site fraction in (0, 1), got {v!r}")

    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        halides = halides or DEFAULT_HALIDES
        _renamed(data, where, [(r"equilibrium_fraction_([A-Z][a-z]?)",
                                lambda m: f"equilibrium_fraction = {{{halides[0]} = ...}}")])
        require("reference_fraction" not in data,
                f"unknown key {where}.reference_fraction (write equilibrium_fraction = {{{halides[0]} = ...}})")
        out = dict(data)
        one_halide_entry(out, "equilibrium_fraction", "reference_fraction", halides, 0, where,
                         "given for the pure first halide of material.halides")
        return out, halides

    def to_toml_keys(self, out: dict, halides=None) -> dict:
        halides = halides or DEFAULT_HALIDES
        v = out.pop("reference_fraction")
        out["equilibrium_fraction"] = None if v is None else {halides[0]: v}
        return out

    def temperature_factor(self, material: "Material") -> float:
        """x_V^eq(T) / x_V^eq(reference_temperature_K) at fixed composition (1.0 at T_ref or
        with follows_temperature = false)."""
        if not self.follows_temperature:
            return 1.0
        return temperature_factor(material.formation_energy_eV[0], material.temperature_K,
                                  self.reference_temperature_K)

    def equilibrium_fraction(self, material: "Material", x_cl):
        """x_V^eq at halide composition x_cl (second halide's fraction of the halide sites) and the
        material's temperature, same shape as x_cl.  ParameterError if it is not a site fraction
        below 1."""
        require(self.reference_fraction is not None,
                "vacancies.equilibrium_fraction is not set (a Vacancies of a DeviceParameters has the material "
                "set's value)")
        x = self.reference_fraction * material.vacancy_fraction_ratio(x_cl)
        factor = self.temperature_factor(material)
        if factor != 1.0:
            x = x * factor
            top = float(np.max(x))
            require(math.isfinite(top) and top < 1.0,
                    f"vacancies.equilibrium_fraction: x_V^eq = {top:.3g} at temperature_K = {material.temperature_K:g} "
                    f"(anchored at {self.reference_fraction:.3g} at reference_temperature_K = "
                    f"{self.reference_temperature_K:g}) is not a site fraction below 1")
        return x


@dataclass(frozen=True)
class Geometry:
    """1D wire along z (um): Br segment on the left (z < junction), Cl segment on the right.

    Two contact regions of width ``contact_width_um`` lie on the wire, separated by ``gap_um`` and
    centred on it; the wire overhangs each by (wire_length - gap - 2 contact_width) / 2 >= 0.
    The left contact touches the Br segment, the right one the Cl segment.  Forward bias
    (field > 0) puts the higher potential on the left (Br) contact.

    ``potential_imposed_at``: "outer" (default, docs/model.md section 5: the outer edges of the contact
    regions, away from the gap, so the applied field also crosses the contacts) or "inner" (the
    edges facing the gap).  The applied voltage is field * (distance between the two points where
    the potential is imposed), so the initial (unscreened) field there equals the nominal field.

    Defaults: contact width 1.5 um (paper, Fig. 3 caption); gap 5 um and wire length 10 um are a
    choice (the paper does not give them; its wires are up to 20 um long, Fig. S1, and its
    PL images span ~10 um, Fig. 1d); junction in the middle of the gap (None) is also a choice.
    """

    wire_length_um: float = 10.0
    contact_width_um: float = 1.5
    gap_um: float = 5.0
    junction_position_um: float | None = None
    potential_imposed_at: typing.Literal["outer", "inner"] = "outer"

    def __post_init__(self):
        _positive(self, "wire_length_um", "contact_width_um", "gap_um")
        require(self.gap_um + 2.0 * self.contact_width_um <= self.wire_length_um + 1e-12,
                f"wire_length_um ({self.wire_length_um}) must be >= gap_um + 2 contact_width_um "
                f"({self.gap_um + 2.0 * self.contact_width_um})")
        if self.junction_position_um is not None:
            lo, hi = self.gap_um_interval
            j = self.junction_position_um
            require(math.isfinite(j) and lo < j < hi,
                    f"junction_position_um must lie inside the gap ({lo}, {hi}) um, got {j!r}")
        require(self.potential_imposed_at in ("outer", "inner"),
                f"potential_imposed_at must be 'outer' or 'inner', got {self.potential_imposed_at!r}")

    @property
    def overhang_um(self) -> float:
        return 0.5 * (self.wire_length_um - self.gap_um) - self.contact_width_um

    @property
    def gap_um_interval(self) -> tuple[float, float]:
        """(start, end) of the gap between the contacts, um."""
        mid = 0.5 * self.wire_length_um
        return mid - 0.5 * self.gap_um, mid + 0.5 * self.gap_um

    @property
    def junction_um(self) -> float:
        """Initial Br | Cl interface position, um."""
        if self.junction_position_um is None:
            return 0.5 * self.wire_length_um
        return self.junction_position_um

    def contacts_um(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((left_start, left_end), (right_start, right_end)) of the contact regions, um."""
        g0, g1 = self.gap_um_interval
        w = self.contact_width_um
        return (g0 - w, g0), (g1, g1 + w)

    def imposed_positions_um(self) -> tuple[float, float]:
        """(left, right) positions where the electrode potentials are imposed, um."""
        (l0, l1), (r0, r1) = self.contacts_um()
        return (l0, r1) if self.potential_imposed_at == "outer" else (l1, r0)

    def applied_voltage_V(self, field_V_per_um: float) -> float:
        """phi(left) - phi(right) = field * distance between the imposed positions (V)."""
        zl, zr = self.imposed_positions_um()
        return field_V_per_um * (zr - zl)


R_D_FORMS = ("detailed_balance", "irreversible_at_positive", "zero", "equal_rates")


@dataclass(frozen=True)
class Electrodes:
    """Linearised reversible vacancy creation / annihilation on the contact regions (docs/model.md section 7).

    S_V = r_c (1 - x_V) - r_d x_V;  S_X = -r_c x_X + r_d x_V x_X / (x_Br + x_Cl)  (X = Br, Cl).

    Creation rate r_c = alpha(x_Cl) |E| (alpha in um V^-1 s^-1, E in V/um, r_c in 1/s), with
    - ``alphas_um_per_V_s`` (first, second halide's end member; TOML
      ``alpha_um_per_V_s = {Br = 1.3e-5, Cl = 3.8e-7}``), default the paper's fitted values
      (Fig. 3 caption; structures.paper.ALPHA_BR / ALPHA_CL) at the vacancy-depleted (positive, the paper's "cathode") electrode on the
      Br and on the Cl segment; ``ionwire continuum`` re-fits both to docs/model.md section 1
      (continuum.experiment.calibrate) and records the fit;
    - composition_dependence "log_linear" (default): ln alpha linear in x_Cl between the two, i.e.
      a formation barrier linear in composition (docs/model.md section 7: the natural choice);
      "linear": alpha linear in x_Cl;
    - r_d_form (docs/model.md section 7 leaves it open):
      "detailed_balance": r_d = r_c (1 - x_V^eq) / x_V^eq at both electrodes (x_V^eq of the local
      composition), so a contact at equilibrium is at rest (docs/model.md's "natural choice");
      "irreversible_at_positive" (default): the same at the negative (vacancy-accumulating)
      electrode, where annihilation is the sink of the piled-up vacancies, but r_d = 0 at the
      positive (vacancy-depleting) one: there the field drives creation and sweeps the created
      vacancies away, injection is one-way.  Why the default: with "detailed_balance" the
      reverse-bias contact (on the Cl segment, x_V^eq 100x smaller) is held at x_V^eq(Cl) and the
      reverse migration is capped by transport (x_V^eq(Cl) times the drift velocity), at
      |L(-4 V/um, 4 h)| ~ 0.017 um whatever alpha_Cl (measured: 0.0122 um at alpha_Cl = 3.8e-7,
      0.0164 um at 4e4): docs/model.md's |L(-4)| = 0.05 um cannot be fitted and the rectification ratio
      stays ~60-90.  With one-way injection the migration is set by the injection rate at the
      depleted electrode in both polarities, the picture of docs/model.md section 7 and of the paper
      (Fig. S16); in forward bias the two forms agree (there x_V << x_V^eq in the contact);
      "zero": r_d = 0 at both electrodes (no sink: the vacancies pile up);
      "equal_rates": r_d = r_c at both electrodes (the literal reading of "linearised reversible
      reactions" with one rate constant for creation and annihilation: S_V = r_c (1 - 2 x_V), a
      contact relaxing towards x_V = 1/2, far outside the dilute-vacancy model; kept to test that
      reading, continuum.sensitivity);
    - the other (negative, vacancy-accumulating) electrode: the paper does not say.  Default
      negative_electrode = "same": the same rate law with the local composition, multiplied by
      negative_electrode_factor (default 1) -- it then acts as the sink of the vacancies the field
      piles up there (without a sink they would screen the whole gap within minutes);
      "inert": no reactions there.  positive_electrode_factor (default 1) scales both rates at the
      vacancy-depleted electrode (used for the Fig. S16 sensitivity study).
    - enabled = false switches all reactions off (Fig. S10).
    At zero field both rates vanish (r_c is linear in |E|).
    """

    enabled: bool = True
    # None: the material set's values (DeviceParameters fills them in; default set: the paper's)
    alphas_um_per_V_s: tuple[float, float] | None = None
    composition_dependence: typing.Literal["log_linear", "linear"] = "log_linear"
    r_d_form: typing.Literal["detailed_balance", "irreversible_at_positive", "zero", "equal_rates"] = "irreversible_at_positive"
    negative_electrode: typing.Literal["same", "inert"] = "same"
    negative_electrode_factor: float = 1.0
    positive_electrode_factor: float = 1.0

    def __post_init__(self):
        if self.alphas_um_per_V_s is not None:
            object.__setattr__(self, "alphas_um_per_V_s", _pair(self.alphas_um_per_V_s, "alpha_um_per_V_s",
                                                                positive=True))
        for n in ("negative_electrode_factor", "positive_electrode_factor"):
            v = getattr(self, n)
            require(math.isfinite(v) and v >= 0.0, f"{n} must be a number >= 0, got {v!r}")
        require(self.composition_dependence in ("log_linear", "linear"),
                f"composition_dependence must be 'log_linear' or 'linear', got {self.composition_dependence!r}")
        require(self.r_d_form in R_D_FORMS,
                f"r_d_form must be one of {', '.join(map(repr, R_D_FORMS))}, got {self.r_d_form!r}")
        require(self.negative_electrode in ("same", "inert"),
                f"negative_electrode must be 'same' or 'inert', got {self.negative_electrode!r}")

    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        halides = halides or DEFAULT_HALIDES
        _renamed(data, where, [(r"alpha_([A-Z][a-z]?)_um_per_V_s",
                                lambda m: f"alpha_um_per_V_s = {{{halides[0]} = ..., {halides[1]} = ...}}")])
        require("alphas_um_per_V_s" not in data,
                f"unknown key {where}.alphas_um_per_V_s (write alpha_um_per_V_s = "
                f"{{{halides[0]} = ..., {halides[1]} = ...}})")
        out = dict(data)
        if "alpha_um_per_V_s" in out:
            out["alphas_um_per_V_s"] = halide_table(out.pop("alpha_um_per_V_s"), halides, f"{where}.alpha_um_per_V_s")
        return out, halides

    def to_toml_keys(self, out: dict, halides=None) -> dict:
        halides = halides or DEFAULT_HALIDES
        values = out.pop("alphas_um_per_V_s")
        return {"enabled": out.pop("enabled"), "alpha_um_per_V_s": None if values is None else dict(zip(halides, values)),
                **out}

    def alpha_um_per_V_s(self, x_cl):
        """alpha(x_Cl) (um V^-1 s^-1), same shape as x_cl (clipped to [0, 1]): the rate law's
        r_c at unit field (structures.electrode_law.rate_law)."""
        require(self.alphas_um_per_V_s is not None,
                "electrodes.alpha_um_per_V_s is not set (an Electrodes of a DeviceParameters has the material "
                "set's values)")
        x = np.clip(np.asarray(x_cl, dtype=float), 0.0, 1.0)
        law = RateLaw(1.0, math.log(self.alphas_um_per_V_s[0]), math.log(self.alphas_um_per_V_s[1]),
                      self.composition_dependence == "linear", 0.0, 1.0, 0.0)
        return rate_law(x, *law)[0]


@dataclass(frozen=True)
class DeviceParameters:
    """Everything both models need to simulate the biased heterojunction wire.

    TOML: tables [material] (and [material.barriers]), [vacancies], [geometry], [electrodes];
    build with ``from_mapping(DeviceParameters, table)``.  A run config holds one in a field
    ``params = inline_field(DeviceParameters)`` (see :class:`HoldsDeviceParameters`).
    """

    material: Material = field(default_factory=Material)
    vacancies: Vacancies = field(default_factory=Vacancies)
    geometry: Geometry = field(default_factory=Geometry)
    electrodes: Electrodes = field(default_factory=Electrodes)

    def __post_init__(self):
        """Values the sections leave unset come from the material set (an error naming the key
        where the set has none)."""
        ms = self.material.material_set
        h = self.material.halides
        if self.vacancies.reference_fraction is None:
            (v,) = _from_set(ms, "vacancies.equilibrium_fraction", h)
            object.__setattr__(self, "vacancies", dataclasses.replace(self.vacancies, reference_fraction=v))
        if self.electrodes.alphas_um_per_V_s is None:
            a = _from_set(ms, "electrodes.alpha_um_per_V_s", h)
            object.__setattr__(self, "electrodes", dataclasses.replace(self.electrodes, alphas_um_per_V_s=a))

    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        mat = data.get("material")
        if isinstance(mat, Mapping):
            halides = _halides_of_material_table(mat, "material")
        return data, halides or DEFAULT_HALIDES

    def halides_of_set(self) -> tuple[str, str]:
        return self.material.halides

    @property
    def halides(self) -> tuple[str, str]:
        """The halide pair (first, second) of this parameter set."""
        return self.material.halides

    @property
    def params(self) -> "DeviceParameters":
        """This parameter set (so code can take a run config's ``params`` or the set itself)."""
        return self


class HoldsDeviceParameters:
    """Mixin of the run configs that hold the shared parameter set in a field
    ``params: DeviceParameters = inline_field(DeviceParameters)``: read access to its sections
    (``config.material`` is ``config.params.material``) and :meth:`with_params`.  The halide pair
    of the file's [material] table names the per-halide keys of the config's other tables too."""

    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        mat = data.get("material")
        if isinstance(mat, Mapping):
            halides = _halides_of_material_table(mat, "material")
        return data, halides or DEFAULT_HALIDES

    def halides_of_set(self) -> tuple[str, str]:
        return self.params.material.halides

    @property
    def material(self) -> Material:
        return self.params.material

    @property
    def vacancies(self) -> Vacancies:
        return self.params.vacancies

    @property
    def geometry(self) -> Geometry:
        return self.params.geometry

    @property
    def electrodes(self) -> Electrodes:
        return self.params.electrodes

    def with_params(self, **sections):
        """A copy with sections of the parameter set replaced, e.g. ``with_params(electrodes=el)``."""
        return dataclasses.replace(self, params=dataclasses.replace(self.params, **sections))


ELECTRODES = ("positive", "negative")


def electrode_rate_law(params: DeviceParameters, field_V_per_um: float, electrode: str) -> RateLaw:
    """The parameters of the rate law (structures.electrode_law) at one electrode and field.

    This is where the choices of :class:`Electrodes` are applied: the electrode factor, the
    r_d form ("detailed_balance" at both electrodes, "irreversible_at_positive": r_d only at the
    negative one, "zero": nowhere), an "inert" negative electrode and disabled reactions (both
    make the field factor 0, so r_c = r_d = 0).  electrode: "positive" or "negative" (see
    :func:`electrode_rates`).  The continuum kernel evaluates ``rate_law(y, *law)`` with it; the
    composition-dependent fields are the same for both electrodes.
    """
    if electrode not in ELECTRODES:
        raise ParameterError(f"electrode must be 'positive' or 'negative', got {electrode!r}")
    el = params.electrodes
    mat = params.material
    factor = el.positive_electrode_factor if electrode == "positive" else el.negative_electrode_factor
    if not el.enabled or (electrode == "negative" and el.negative_electrode == "inert"):
        factor = 0.0
    one_way = el.r_d_form == "zero" or (el.r_d_form == "irreversible_at_positive" and electrode == "positive")
    annihilation = 0.0 if one_way else (-1.0 if el.r_d_form == "equal_rates" else 1.0)
    return RateLaw(field_factor_V_per_um=factor * abs(float(field_V_per_um)),
                   ln_alpha_Br=math.log(el.alphas_um_per_V_s[0]), ln_alpha_Cl=math.log(el.alphas_um_per_V_s[1]),
                   linear=el.composition_dependence == "linear", annihilation=annihilation,
                   x_eq_Br=float(params.vacancies.equilibrium_fraction(mat, 0.0)),
                   formation_energy_difference_kT=(mat.formation_energy_eV[1] - mat.formation_energy_eV[0]) / mat.kT_eV)


def electrode_rates(params: DeviceParameters, x_cl, field_V_per_um: float, electrode: str):
    """Vacancy creation and annihilation rates (r_c, r_d) in 1/s on a contact site.

    Signature: ``electrode_rates(params, x_cl, field_V_per_um, electrode) -> (r_c_per_s, r_d_per_s)``

    params: :class:`DeviceParameters`;
    x_cl: local Cl fraction of the halide sites, x_Cl / (x_Br + x_Cl), float or float64 array
      (values outside [0, 1] are clipped);
    field_V_per_um: the applied (nominal) field, V/um; only |field| enters (rates linear in it);
    electrode: "positive" (the higher-potential, vacancy-depleted electrode -- the paper's
      "cathode") or "negative" (the lower-potential, vacancy-accumulating one).  Under forward
      bias (field > 0) the positive electrode is the left (Br-side) contact.
    Returns two float64 arrays (0-d for scalar x_cl) of x_cl's shape:
      r_c = factor * alpha(x_cl) * |field|,  r_d = r_c (1 - x_V^eq(x_cl)) / x_V^eq(x_cl)
      ("detailed_balance"; "irreversible_at_positive" on the negative electrode), r_d = r_c
      ("equal_rates") or 0 ("zero";
      "irreversible_at_positive" on the positive electrode); both 0 if reactions are disabled or
      the negative electrode is "inert".  See :class:`Electrodes` for the choices and sources.
    ``rate_law(x_cl, *electrode_rate_law(params, field, electrode))``: the one law, also compiled
    into the continuum kernel.  Pure: no state, no I/O; used by the continuum model and the
    device kMC alike.
    """
    law = electrode_rate_law(params, field_V_per_um, electrode)
    x = np.clip(np.asarray(x_cl, dtype=float), 0.0, 1.0)
    r_c, r_d = rate_law(x, *law)
    return np.asarray(r_c, dtype=float), np.asarray(r_d, dtype=float)


def uptake_key(halides: tuple[str, str]) -> str:
    """The name of the second halide's uptake by the first segment in summaries: cl_uptake for Br, Cl."""
    return f"{halides[1].lower()}_uptake"


def alpha_keys(halides: tuple[str, str]) -> tuple[str, str]:
    """The names of the two electrode rates in JSON summaries and records: alpha_<X>_um_per_V_s."""
    return tuple(f"alpha_{h}_um_per_V_s" for h in halides)
