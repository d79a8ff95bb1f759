"""Published numbers the project compares with, each with where it is stated.

Source: Kong, Obliger, Lai, Gao, Limmer, Yang, "Solid-state ionic rectification in perovskite
nanowire heterostructures", Nano Lett. 20, 8151 (2020), arXiv:2007.07128.  Locations are given
by figure, caption or paragraph, since the preprint has no stable page numbers.

Two kinds of numbers:
- *stated*: printed in the paper (the electrode rate constants, the mobility, the ratio ~20);
- *derived*: implied by stated numbers (L = mu E t after 4 h), with the derivation here, so a
  reader can check them; the calibration targets are of this kind.

Every other module takes these values from here (the defaults of
:class:`ionwire.structures.parameters.Electrodes`, the calibration targets of the continuum
model and the marks on the reproduced Fig. 1e); nothing restates them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperValue:
    """One published number: value, unit, where it is stated (or how it is derived)."""

    value: float
    unit: str
    source: str


# --- stated ---------------------------------------------------------------------------------
#: vacancy creation rate constant of the continuum model at the vacancy-depleted electrode on
#: the CsPbBr3 segment (forward bias)
ALPHA_BR = PaperValue(1.3e-5, "um V^-1 s^-1", "Fig. 3 caption (alpha in the forward case)")
#: the same on the CsPbCl3 segment (reverse bias)
ALPHA_CL = PaperValue(3.8e-7, "um V^-1 s^-1", "Fig. 3 caption (alpha in the reverse case)")
#: halide ion mobility at room temperature
MOBILITY = PaperValue(1.7e-13, "cm^2 V^-1 s^-1", "concluding paragraph (halide ion mobility)")
#: duration of the bias of Fig. 1e / Fig. 2 / Fig. 3
BIAS_DURATION = PaperValue(4 * 3600.0, "s", "Fig. 1e text (migration length after four hours), Fig. 2 and 3 captions")
#: the largest forward / reverse field of Fig. 1e
LARGEST_FIELD = PaperValue(4.0, "V/um", "Fig. 1e text (ratio of the migration lengths at +-4 V/um)")
#: migration length ratio L(+4 V/um) / |L(-4 V/um)| after 4 h
RECTIFICATION_RATIO = PaperValue(20.0, "1", "Fig. 1e text (a rectification ratio ... of nearly 20)")
#: lower end of the field range over which the forward migration length is linear in the field
LINEAR_FORWARD_FROM = PaperValue(1.5, "V/um", "text on Fig. 1e / Fig. 2b and d (biases above 1.5 V/um)")
#: Cl fraction of the halide sites entering the Br segment after 4 h forward (a PL estimate over an
#: unstated length: reported by the model, not a target)
CL_UPTAKE = PaperValue(0.12, "1", "Fig. 2a text (as high as 12 % of halide lattice sites)")


# --- derived --------------------------------------------------------------------------------
def mobility_length_um(field_V_per_um: float, duration_s: float = BIAS_DURATION.value) -> float:
    """L = mu E t (um) with the paper's mobility: the front motion the mobility stands for."""
    mu_um2_per_V_s = MOBILITY.value * 1e8  # cm^2 -> um^2
    return mu_um2_per_V_s * field_V_per_um * duration_s


#: L(+4 V/um, 4 h) = mu E t = 0.979 um
FORWARD_LENGTH_4H = PaperValue(round(mobility_length_um(LARGEST_FIELD.value), 2), "um",
                               "derived: mu E t with MOBILITY at +4 V/um for 4 h")
#: calibration target of the forward branch: L(+2 V/um, 4 h) = mu E t = 0.49 um
CALIBRATION_FORWARD = PaperValue(round(mobility_length_um(2.0), 2), "um",
                                 "derived: mu E t with MOBILITY at +2 V/um for 4 h (the linear forward branch)")
CALIBRATION_FORWARD_FIELD = PaperValue(2.0, "V/um", "the paper fits its source terms at +-2 V/um (model section)")
#: calibration target of the reverse branch: |L(-4 V/um, 4 h)| = L(+4) / ratio = 0.05 um
CALIBRATION_REVERSE = PaperValue(round(FORWARD_LENGTH_4H.value / RECTIFICATION_RATIO.value, 2), "um",
                                 "derived: FORWARD_LENGTH_4H / RECTIFICATION_RATIO")
CALIBRATION_REVERSE_FIELD = PaperValue(-LARGEST_FIELD.value, "V/um", "the largest reverse field of Fig. 1e")

ALL = {name: value for name, value in dict(globals()).items() if isinstance(value, PaperValue)}
