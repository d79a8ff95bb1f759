"""Named, cited material sets: the material values of a halide pair, each with its unit and source.

A set (PyBaMM's parameter-set pattern) is a table of the TOML keys that a material determines,
each with a value, a unit and the place it comes from.  ``[material] set = "..."`` selects one
(:func:`get`); every key of the set can still be given in the config, and the config's value wins.
Where no source gives a value the set holds ``None`` with the reason, and a config that uses the
set must give that key itself (``structures.parameters`` raises one ParameterError naming it).

Keys (TOML paths; per-halide values are tables keyed by the halide symbols of the set):

    material.lattice_constant_A       pseudo-cubic lattice constant of the whole wire (Angstrom)
    material.relative_permittivity    static relative permittivity eps / eps0 of the whole wire
    material.migration_barrier_eV     vacancy migration barrier of each end member (eV): the E_A,
                                      E_B of the barrier presets (docs/model.md section 4)
    material.formation_energy_eV      vacancy formation energy of each end member (eV)
    vacancies.equilibrium_fraction    x_V^eq of the first halide's end member (per anion site)
    electrodes.alpha_um_per_V_s       electrode creation rate constant on each end member

One lattice constant and one permittivity serve both segments: the model is a single pseudo-cubic
anion lattice (docs/model.md section 20 documents the mismatch this ignores for each pair).
``ionwire materials`` lists the sets, their values and their citations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import paper

#: a per-halide value: symbol -> number (None: no source gives it)
PerHalide = dict


@dataclass(frozen=True)
class Sourced:
    """One value of a set: ``value`` (a number, or a per-halide dict of numbers; None where no
    source gives it), its unit and where it comes from (or, for a missing value, why)."""

    value: Any
    unit: str
    source: str

    def missing(self) -> list[str]:
        """The halide symbols (or [""] for a scalar) whose value is missing."""
        if isinstance(self.value, dict):
            return [h for h, v in self.value.items() if v is None]
        return [""] if self.value is None else []


@dataclass(frozen=True)
class MaterialSet:
    """A named material set: the halide pair (first, second: the left and the right segment),
    the values by TOML key, and the references they cite."""

    name: str
    halides: tuple[str, str]
    description: str
    values: dict[str, Sourced]
    references: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """The value of ``key`` (None if the set has none or a halide's entry is missing)."""
        v = self.values.get(key)
        if v is None or v.missing():
            return None
        return v.value

    def as_dict(self) -> dict:
        """JSON-able: name, halides, description, values {key: {value, unit, source}}, references."""
        return {"name": self.name, "halides": list(self.halides), "description": self.description,
                "values": {k: {"value": v.value, "unit": v.unit, "source": v.source} for k, v in self.values.items()},
                "references": dict(self.references)}


KEYS = ("material.lattice_constant_A", "material.relative_permittivity", "material.migration_barrier_eV",
        "material.formation_energy_eV", "vacancies.equilibrium_fraction", "electrodes.alpha_um_per_V_s")

_K20 = ("[K20] Q. Kong, A. Obliger, M. Lai, M. Gao, D. T. Limmer, P. Yang, Solid-state ionic rectification in "
        "perovskite nanowire heterostructures, Nano Lett. 20, 8151 (2020), arXiv:2007.07128")
_L18 = ("[L18] M. Lai, A. Obliger, D. Lu, C. S. Kley, C. G. Bischak, Q. Kong, T. Lei, L. Dou, N. S. Ginsberg, "
        "D. T. Limmer, P. Yang, Proc. Natl. Acad. Sci. USA 115, 11929 (2018) (ref. 21 of [K20])")
_G17 = ("[G17] S. Govinda et al., Behavior of methylammonium dipoles in MAPbX3 (X = Br and I), J. Phys. Chem. "
        "Lett. 8, 4113 (2017)")
_M83 = ("[M83] J. Mizusaki, K. Arai, K. Fueki, Ionic conduction of the perovskite-type halides, Solid State "
        "Ionics 11, 203 (1983)")
_S20 = ("[S20] S. Svirskas et al., Phase transitions, screening and dielectric response of CsPbBr3, Royal Society "
        "of Chemistry (2020), https://ria.ua.pt/handle/10773/28972 (abstract: the microwave-limit permittivity "
        "of MAPbX3, X = Cl, Br, I, is eps_r ~ 30)")
_W = ("[W-MALH] Wikipedia, Methylammonium lead halide, https://en.wikipedia.org/wiki/Methylammonium_lead_halide "
      "(Properties: the X ions of [CH3NH3]PbX3 migrate, vacancy assisted, with an activation energy of 0.6 eV)")

_NO_ALPHA = ("missing: [K20] fitted alpha to its CsPbBr3 | CsPbCl3 wires; no measurement for this pair was "
             "found (calibrate it, docs/model.md section 7.5, or give it)")

SETS: dict[str, MaterialSet] = {}


def _register(s: MaterialSet) -> MaterialSet:
    missing_keys = [k for k in KEYS if k not in s.values]
    if missing_keys:  # pragma: no cover - a programming error in the table below
        raise ValueError(f"material set {s.name!r} does not list {missing_keys}")
    SETS[s.name] = s
    return s


DEFAULT_SET = _register(MaterialSet(
    name="CsPbBr3 | CsPbCl3 (Kong et al. 2020)",
    halides=("Br", "Cl"),
    description="The paper's heterostructure: CsPbBr3 (left) | CsPbCl3 (right) nanowire, room temperature.",
    values={
        "material.lattice_constant_A": Sourced(5.8, "Angstrom", "[K20] Fig. 1c caption (lattice spacing 5.8 A)"),
        "material.relative_permittivity": Sourced(25.0, "1", "[K20] model section (eps = 25 eps0), citing [G17]"),
        "material.migration_barrier_eV": Sourced({"Br": 0.25, "Cl": 0.29}, "eV",
                                                 "[M83]: vacancy migration energies of CsPbBr3 and CsPbCl3"),
        "material.formation_energy_eV": Sourced({"Br": 1.32, "Cl": 1.44}, "eV",
                                                "[K20] text on Fig. 2d (1.32 eV and 1.44 eV for pure Br and Cl "
                                                "lattices), citing [L18]"),
        "vacancies.equilibrium_fraction": Sourced({"Br": 1e-7 / 3.0}, "per anion site",
                                                  "[K20] model section (typical halide vacancy concentrations "
                                                  "~1e-7 per unit cell), 3 anion sites per cell (choice)"),
        "electrodes.alpha_um_per_V_s": Sourced({"Br": paper.ALPHA_BR.value, "Cl": paper.ALPHA_CL.value},
                                               paper.ALPHA_BR.unit, f"[K20] {paper.ALPHA_BR.source}; "
                                                                    f"{paper.ALPHA_CL.source}"),
    },
    references={"K20": _K20, "L18": _L18, "G17": _G17, "M83": _M83}))

_register(MaterialSet(
    name="CsPbBr3 | CsPbI3",
    halides=("Br", "I"),
    description="All-inorganic bromide | iodide pair (light-induced segregation of CsPb(Br,I)3); CsPbBr3 left.",
    values={
        "material.lattice_constant_A": Sourced(None, "Angstrom",
                                               "missing: no source for the pseudo-cubic constant of the pair was "
                                               "found and read (CsPbBr3 alone: 5.8 A, [K20])"),
        "material.relative_permittivity": Sourced(None, "1", "missing: no source for CsPbI3 was found and read"),
        "material.migration_barrier_eV": Sourced({"Br": 0.25, "I": None}, "eV",
                                                 "Br: [M83] (CsPbBr3); I: missing, no measurement for CsPbI3 was "
                                                 "found and read"),
        "material.formation_energy_eV": Sourced({"Br": 1.32, "I": None}, "eV",
                                                "Br: [K20] citing [L18] (CsPbBr3); I: missing, no source for "
                                                "CsPbI3 was found and read"),
        "vacancies.equilibrium_fraction": Sourced({"Br": 1e-7 / 3.0}, "per anion site",
                                                  "[K20] (CsPbBr3: ~1e-7 per unit cell), 3 anion sites per cell "
                                                  "(choice)"),
        "electrodes.alpha_um_per_V_s": Sourced({"Br": None, "I": None}, "um V^-1 s^-1", _NO_ALPHA),
    },
    references={"K20": _K20, "L18": _L18, "M83": _M83}))

_register(MaterialSet(
    name="MAPbBr3 | MAPbI3",
    halides=("Br", "I"),
    description="Hybrid (methylammonium) bromide | iodide pair; MAPbBr3 left.",
    values={
        "material.lattice_constant_A": Sourced(None, "Angstrom",
                                               "missing: no source for the pseudo-cubic constant was found and read"),
        "material.relative_permittivity": Sourced(30.0, "1", "[S20] (microwave-limit permittivity of MAPbX3, "
                                                             "X = Cl, Br, I: eps_r ~ 30)"),
        "material.migration_barrier_eV": Sourced({"Br": 0.6, "I": 0.6}, "eV",
                                                 "[W-MALH]: one activation energy, 0.6 eV, for the vacancy-assisted "
                                                 "migration of the X ions of MAPbX3; the source does not tell Br "
                                                 "from I, so both end members get it (no mobility contrast)"),
        "material.formation_energy_eV": Sourced({"Br": None, "I": None}, "eV",
                                                "missing: no source was found and read"),
        "vacancies.equilibrium_fraction": Sourced({"Br": None}, "per anion site",
                                                  "missing: no source was found and read"),
        "electrodes.alpha_um_per_V_s": Sourced({"Br": None, "I": None}, "um V^-1 s^-1", _NO_ALPHA),
    },
    references={"S20": _S20, "W-MALH": _W}))


def names() -> list[str]:
    """The names of the material sets, the default first."""
    return list(SETS)


def get(name: str) -> MaterialSet:
    """The material set ``name``; KeyError-free: a ValueError listing the sets for an unknown name."""
    if name not in SETS:
        raise ValueError(f"unknown material set {name!r}; the sets are: {'; '.join(map(repr, SETS))}")
    return SETS[name]


def sets_for(halides: tuple[str, str]) -> list[MaterialSet]:
    """The sets of the pair ``halides`` (in that order)."""
    return [s for s in SETS.values() if tuple(s.halides) == tuple(halides)]
