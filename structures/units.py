"""Physical constants and unit conversions used by every ionwire model.

All internal computations are in SI unless a name says otherwise; names carry their unit
(``_eV``, ``_um``, ``_A`` for Angstrom, ``_per_s``).  CODATA 2018 exact values.
"""
from __future__ import annotations

import math

ELEMENTARY_CHARGE_C = 1.602176634e-19
BOLTZMANN_J_PER_K = 1.380649e-23
BOLTZMANN_EV_PER_K = BOLTZMANN_J_PER_K / ELEMENTARY_CHARGE_C
VACUUM_PERMITTIVITY_F_PER_M = 8.8541878128e-12

ANGSTROM_M = 1e-10
MICROMETRE_M = 1e-6
CM_M = 1e-2
HOUR_S = 3600.0

# 1 V/um expressed in V/m
V_PER_UM = 1e6


def thermal_energy_eV(temperature_K: float) -> float:
    """kT in eV."""
    return BOLTZMANN_EV_PER_K * temperature_K


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


# coordination number of the anion sublattice (MODEL.md section 2)
Z_ANION = 8
