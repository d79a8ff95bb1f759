"""Physical constants and unit conversions used by every ionwire model.

All internal computations are in SI unless a name says otherwise; names carry their unit
(``_eV``, ``_um``, ``_A`` for Angstrom, ``_per_s``).
"""
from __future__ import annotations

import math

import scipy.constants as _c

# exact SI values (the 2019 SI defines them), from scipy.constants
ELEMENTARY_CHARGE_C = _c.e
BOLTZMANN_EV_PER_K = _c.k / _c.e
# CODATA 2018, fixed here: scipy.constants.epsilon_0 is a measured constant whose value changes
# with scipy's CODATA release (8.8541878188e-12 F/m in CODATA 2022); the project keeps one value
VACUUM_PERMITTIVITY_F_PER_M = 8.8541878128e-12

ANGSTROM_M = _c.angstrom
CM_M = _c.centi

# 1 V/um expressed in V/m
V_PER_UM = 1.0 / _c.micro


def thermal_voltage_V(temperature_K: float) -> float:
    """kT/e in volt (0.02585 V at 300 K)."""
    return BOLTZMANN_EV_PER_K * temperature_K


def hop_length_A(lattice_constant_A: float) -> float:
    """Nearest-neighbour anion distance s = a / sqrt(2) (Angstrom)."""
    return lattice_constant_A / math.sqrt(2.0)


def site_density_per_m3(lattice_constant_A: float) -> float:
    """Anion site density c_s = 3 / a^3 (m^-3)."""
    a = lattice_constant_A * ANGSTROM_M
    return 3.0 / a**3


# coordination number of the anion sublattice (docs/model.md section 2)
Z_ANION = 8
