"""The electrode rate law, written once: vacancy creation r_c and annihilation r_d on a contact.

    r_c = F alpha(y),   alpha(y) = exp((1 - y) ln alpha_Br + y ln alpha_Cl)      ("log_linear")
                                 = (1 - y) alpha_Br + y alpha_Cl                  ("linear")
    r_d = r_c (1 - x_eq(y)) / x_eq(y),   x_eq(y) = x_eq,Br exp(-dE_f y / kT)     (detailed balance)
        = 0                                                                        (no annihilation)
        = r_c                                                        (one shared rate constant)

with y = x_Cl / (x_Br + x_Cl) the local halide composition, F = electrode factor * |E| (V/um).
:class:`RateLaw` holds the parameters of one electrode at one field; it is derived from the
parameter set by :func:`ionwire.structures.parameters.electrode_rate_law`, which is where the
choices (r_d form, inert electrode, factors, disabled reactions) are made.

:func:`rate_law` is plain arithmetic on its arguments, so the same function serves numpy arrays
(:func:`ionwire.structures.parameters.electrode_rates`, the kMC rate tables), complex numbers
(complex-step derivatives) and numba, which compiles it into the continuum model's source kernel
(``ionwire.continuum._kernels``).  It does not clip y: callers pass compositions in [0, 1].
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RateLaw(NamedTuple):
    """Parameters of the rate law at one electrode and one field (the arguments of rate_law)."""

    field_factor_V_per_um: float  # electrode factor * |E|; 0: no reactions
    ln_alpha_Br: float            # ln(alpha_Br / (um V^-1 s^-1))
    ln_alpha_Cl: float
    linear: bool                  # alpha linear in y (else ln alpha linear in y)
    annihilation: float           # 1.0: r_d by detailed balance; 0.0: r_d = 0; -1.0: r_d = r_c
    x_eq_Br: float                # equilibrium vacancy site fraction of pure Br
    formation_energy_difference_kT: float  # (E_f(Cl) - E_f(Br)) / kT


def rate_law(y, field_factor_V_per_um, ln_alpha_Br, ln_alpha_Cl, linear, annihilation, x_eq_Br,
             formation_energy_difference_kT):
    """(r_c, r_d) in 1/s at composition y (float, complex or array) for the RateLaw fields."""
    if linear:
        alpha = (1.0 - y) * np.exp(ln_alpha_Br) + y * np.exp(ln_alpha_Cl)
    else:
        alpha = np.exp((1.0 - y) * ln_alpha_Br + y * ln_alpha_Cl)
    r_c = field_factor_V_per_um * alpha
    if annihilation == 0.0:
        r_d = 0.0 * r_c
    elif annihilation < 0.0:  # creation and annihilation share one rate constant
        r_d = -annihilation * r_c
    else:
        x_eq = x_eq_Br * np.exp(-formation_energy_difference_kT * y)
        r_d = annihilation * r_c * (1.0 - x_eq) / x_eq
    return r_c, r_d
