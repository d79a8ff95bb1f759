"""The one parameter set that both models read (MODEL.md sections 2-4, 7, 9).

Every section is a frozen dataclass validated on construction; ``from_mapping`` builds a section
(recursively) from a TOML table and rejects unknown keys, wrong types and out-of-range values with
one :class:`ParameterError` that names the key.  Units are in the field names.

Sources of defaults (see MODEL.md):
- a = 5.8 Angstrom: paper Fig. 1c caption.
- nu0 = 1e13 1/s, T = 300 K: MODEL.md section 4.
- barriers 0.25 eV (CsPbBr3), 0.29 eV (CsPbCl3): Mizusaki, Arai, Fueki, Solid State Ionics 11, 203 (1983).
- eps = 25 eps0: paper, citing its ref. 33.
- formation energies 1.32 / 1.44 eV: paper, citing Lai et al. PNAS 2018.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .units import BOLTZMANN_EV_PER_K


class ParameterError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


# --------------------------------------------------------------------------------------------
# generic, strict construction of frozen dataclasses from TOML mappings
# --------------------------------------------------------------------------------------------
def _check_type(value: Any, annotation: Any, where: str) -> Any:
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
                return _check_type(value, a, where)
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
        return from_mapping(annotation, value, where)
    return value


def from_mapping(cls: type, data: Mapping[str, Any] | None, where: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and bad values raise.

    ``where`` is the dotted path of this table in the config file, used in error messages.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where or cls.__name__}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ParameterError(
            f"unknown key {prefix}{unknown[0]!s} (allowed in [{where or cls.__name__}]: {', '.join(names)})"
        )
    kwargs = {}
    for name in names:
        if name in data:
            key = f"{where}.{name}" if where else name
            kwargs[name] = _check_type(data[name], hints[name], key)
    try:
        return cls(**kwargs)
    except ParameterError as exc:
        if where and not str(exc).startswith(where):
            raise ParameterError(f"{where}.{exc}") from None
        raise


def to_mapping(obj: Any) -> dict:
    """The inverse of :func:`from_mapping`: a plain dict (TOML/JSON/HDF5-attribute friendly)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = to_mapping(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def require(condition: bool, message: str) -> None:
    """Raise :class:`ParameterError` with ``message`` unless ``condition``."""
    if not condition:
        raise ParameterError(message)


def _positive(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        require(math.isfinite(v) and v > 0, f"{n} must be a positive number, got {v!r}")


# --------------------------------------------------------------------------------------------
# hop barriers (MODEL.md section 4)
# --------------------------------------------------------------------------------------------
PRESETS = ("random_alloy", "host")


@dataclass(frozen=True)
class Barriers:
    """Hop barriers E_{X,Y} (eV): species X hopping across an edge of a Y-rich octahedron.

    The barrier of a hop with n Cl among its 4 environment sites is
    E_a(X, n) = E_X,Br + (E_X,Cl - E_X,Br) n / 4   (MODEL.md section 4).
    """

    Br_in_Br_eV: float = 0.25
    Br_in_Cl_eV: float = 0.25
    Cl_in_Br_eV: float = 0.29
    Cl_in_Cl_eV: float = 0.29

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            require(math.isfinite(v) and 0.0 <= v < 5.0, f"{f.name} must be in [0, 5) eV, got {v!r}")

    @classmethod
    def preset(cls, name: str, E_Br_eV: float = 0.25, E_Cl_eV: float = 0.29) -> "Barriers":
        """``random_alloy``: the barrier depends on the hopping species only;
        ``host``: on the octahedron (Br-rich E_Br, Cl-rich E_Cl) only.
        Defaults: vacancy migration energies of CsPbBr3 / CsPbCl3 (Mizusaki et al. 1983)."""
        if name == "random_alloy":
            return cls(E_Br_eV, E_Br_eV, E_Cl_eV, E_Cl_eV)
        if name == "host":
            return cls(E_Br_eV, E_Cl_eV, E_Br_eV, E_Cl_eV)
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")

    def as_array(self) -> np.ndarray:
        """float64[2, 2]: [hopping species (0 Br, 1 Cl), octahedron end member (0 Br-rich, 1 Cl-rich)]."""
        return np.array([[self.Br_in_Br_eV, self.Br_in_Cl_eV], [self.Cl_in_Br_eV, self.Cl_in_Cl_eV]])

    def barrier_eV(self, species: int, n_cl: int | np.ndarray) -> float | np.ndarray:
        """E_a(X, n) for hopping species 0 (Br) or 1 (Cl) and n Cl of the 4 environment sites."""
        e = self.as_array()[species]
        return e[0] + (e[1] - e[0]) * np.asarray(n_cl) / 4.0


@dataclass(frozen=True)
class Material:
    """Lattice, hopping and dielectric parameters shared by the kMC and the continuum model."""

    lattice_constant_A: float = 5.8
    attempt_frequency_per_s: float = 1e13
    temperature_K: float = 300.0
    relative_permittivity: float = 25.0
    preset: str = "random_alloy"
    # None: the preset's values (0.25 / 0.29 eV); a table [material.barriers] overrides all four
    barriers: Barriers | None = None
    # vacancy formation energies of the pure end members (eV), paper citing Lai et al. PNAS 2018;
    # x_V^eq(x_Cl) = x_V^eq(Br) exp(-(E_f(x_Cl) - E_f(Br)) / kT) with E_f linear in x_Cl
    formation_energy_Br_eV: float = 1.32
    formation_energy_Cl_eV: float = 1.44

    def __post_init__(self):
        _positive(self, "lattice_constant_A", "attempt_frequency_per_s", "temperature_K", "relative_permittivity")
        require(self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.barriers is None:
            object.__setattr__(self, "barriers", Barriers.preset(self.preset))

    @property
    def kT_eV(self) -> float:
        return BOLTZMANN_EV_PER_K * self.temperature_K

    def jump_frequencies_per_s(self) -> dict[str, float]:
        """w_X = nu0 exp(-E_X / kT) in a pure-X environment at zero field (1/s)."""
        b = self.barriers
        return {
            "Br": self.attempt_frequency_per_s * math.exp(-b.Br_in_Br_eV / self.kT_eV),
            "Cl": self.attempt_frequency_per_s * math.exp(-b.Cl_in_Cl_eV / self.kT_eV),
        }

    def vacancy_fraction_ratio(self, x_cl: float | np.ndarray) -> float | np.ndarray:
        """x_V^eq(x_Cl) / x_V^eq(pure Br): exp(-(E_f(x_Cl) - E_f(Br)) / kT), E_f linear in x_Cl."""
        dE = (self.formation_energy_Cl_eV - self.formation_energy_Br_eV) * np.asarray(x_cl)
        return np.exp(-dE / self.kT_eV)
