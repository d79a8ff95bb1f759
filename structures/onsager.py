"""Onsager coefficients of vacancy-mediated Br/Cl interdiffusion (docs/model.md section 6).

Self-consistent theory of Moleko, Allnatt & Allnatt, Phil. Mag. A 59, 141 (1989) for a random
alloy with jump frequencies w_Br, w_Cl and site fractions c_Br, c_Cl, c_V.  The coefficients
l_ab have units of frequency and the normalisation L_ab kT = c_s (z s^2 / 6) x_V l_ab.
"""
from __future__ import annotations

import numpy as np

# Tracer correlation factor of one vacancy in the pure anion sublattice of cubic perovskite
# (8 neighbours at a/sqrt(2)).  Measured with the kMC engine (f of Br, one vacancy in pure
# CsPbBr3, mean +- standard error over 32 independent replicas of 4e6 hops = 1.28e8 hops):
#   f0 = 0.6889 +- 0.0002
# reproduce with (about 1 min on one core; key "f" -> "Br", error in "f_err"):
#   ionwire bulk --cells 48 48 48 --vacancies 1 --x-cl 0 --events 4e6 --warmup 0 --blocks 1 --replicas 32 --seed 1 --json
# A large box makes each atom hop few times, which lowers the replica-to-replica scatter.  Checks:
# 32^3, 24 x 8e6 hops: 0.6887 +- 0.0003; 16^3, 64 x 4e6: 0.6904 +- 0.0007; 8^3: 0.6919 +- 0.0018.
# Literature: 0.69 for the perovskite anion sublattice (Ishigaki et al., J. Solid State Chem. 73,
# 179 (1988)).  See kmc.observables.measure_f0 and tests/test_kmc_bulk.py.
F0_ANION_PEROVSKITE: float | None = 0.6889


def correlation_parameter(f0: float) -> float:
    """M0 = 2 f0 / (1 - f0)."""
    return 2.0 * f0 / (1.0 - f0)


def onsager_coefficients(c_br, c_cl, c_v, w_br, w_cl, f0):
    """Moleko-Allnatt-Allnatt l_BrBr, l_BrCl, l_ClCl (same unit as w) for fractions c_*.

    Broadcasts over array arguments.  Returns a tuple (l_BrBr, l_BrCl, l_ClCl).
    """
    c_br, c_cl, c_v, w_br, w_cl = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (c_br, c_cl, c_v, w_br, w_cl)))
    m0 = correlation_parameter(f0)
    w_v = c_br * w_br + c_cl * w_cl
    w_tilde = c_br * w_cl + c_cl * w_br
    b = m0 * w_v + m0 * c_v * (w_br + w_cl) + 2.0 * w_tilde
    c = 2.0 * m0 * (c_br * c_cl * (w_br - w_cl) ** 2 + c_v * (c_br * w_cl**2 + c_cl * w_br**2))
    disc = np.sqrt(np.maximum(b * b - 4.0 * c, 0.0))
    lam = 0.5 * (b + disc)
    with np.errstate(divide="ignore", invalid="ignore"):
        l_brbr = c_br * w_br * (1.0 - 2.0 * c_cl * w_br / lam)
        l_clcl = c_cl * w_cl * (1.0 - 2.0 * c_br * w_cl / lam)
        l_brcl = 2.0 * c_br * c_cl * w_br * w_cl / lam
    return l_brbr, l_brcl, l_clcl

