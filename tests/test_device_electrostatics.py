"""Device electrostatics (kmc/electrostatics.py, docs/model.md section 5): the kMC's incremental integer
bond state gives the exact discrete Poisson solution after every charge move, in every segment
(between the imposed planes and in the field-free overhangs); the Poisson-Boltzmann reference."""
import numpy as np
import pytest

from ionwire.kmc import _device_kernels as dk
from ionwire.kmc.electrostatics import (PlaneElectrostatics, bond_state_from_charge, poisson_boltzmann,
                                potential_from_bonds, solve_potential)


def _es(P=40, a=6, b=31, VL=0.3, VR=-0.1, area=400.0):
    return PlaneElectrostatics(n_planes=P, plane_spacing_A=2.9, cross_section_A2=area, relative_permittivity=25.0,
                               left_plane=a, right_plane=b, potential_left_V=VL, potential_right_V=VR)


def test_direct_solver_obeys_gauss_law_and_boundary_conditions():
    es = _es()
    rng = np.random.default_rng(1)
    q = rng.integers(-3, 4, es.n_planes).astype(float)
    phi = solve_potential(q, es)
    c = es.volt_per_charge
    D = np.diff(phi)
    assert phi[es.left_plane] == pytest.approx(0.3, abs=1e-14) and phi[es.right_plane] == pytest.approx(-0.1, abs=1e-14)
    # zero field beyond both ends: D_{-1} = D_{P-1} = 0
    Dfull = np.concatenate([[0.0], D, [0.0]])
    for p in range(es.n_planes):
        if p in (es.left_plane, es.right_plane):
            continue
        assert Dfull[p + 1] - Dfull[p] == pytest.approx(-c * q[p], abs=1e-12 * max(1, abs(c * q[p])))
    # c = e h / (eps A) from first principles
    assert c == pytest.approx(1.602176634e-19 * 2.9e-10 / (25 * 8.8541878128e-12 * 400e-20), rel=1e-12)


@pytest.mark.parametrize("a,b", [(0, 39), (6, 31), (0, 20), (15, 39)])
def test_incremental_bond_state_equals_direct_solve_after_random_moves(a, b):
    """Random hops (the kernel's rule L_m -= dz) and creations/annihilations (dk.add_charge)
    keep potential_from_bonds equal to the banded solve of the counted charges to round-off."""
    es = _es(a=a, b=b)
    P = es.n_planes
    rng = np.random.default_rng(a * 100 + b)
    q = np.zeros(P, dtype=np.int64)
    L = np.zeros(P - 1, dtype=np.int64)
    istate = np.zeros(4, dtype=np.int64)
    for step in range(3000):
        if rng.random() < 0.8:
            m = int(rng.integers(0, P - 1))  # a vacancy crosses bond m
            dz = 1 if rng.random() < 0.5 else -1
            src, dst = (m, m + 1) if dz > 0 else (m + 1, m)
            q[src] -= 1
            q[dst] += 1
            L[m] -= dz
            if a <= m < b:
                istate[dk.I_LAMBDA] -= dz
        else:
            p = int(rng.integers(0, P))
            delta = 1 if rng.random() < 0.5 else -1
            q[p] += delta
            dk.add_charge(p, delta, L, istate, a, b)
        if step % 300 == 0 or step == 2999:
            direct = solve_potential(q.astype(float), es)
            mine = potential_from_bonds(L, int(istate[dk.I_LAMBDA]), es)
            assert np.max(np.abs(direct - mine)) <= 1e-10 * max(1.0, np.max(np.abs(direct)))
    # and the static reconstruction from charges agrees with the incremental state
    L2, lam2 = bond_state_from_charge(q, es)
    assert np.allclose(potential_from_bonds(L2, lam2, es), potential_from_bonds(L, int(istate[1]), es), atol=1e-10)


def test_poisson_boltzmann_limits():
    """Zero bias and a uniform background equal to the vacancies: the neutral uniform state;
    a vanishing charge (huge cross-section): Boltzmann occupancy in the linear applied potential."""
    P = 30
    n_p = np.where(np.arange(P) % 2 == 0, 128, 64)
    es0 = _es(P=P, a=0, b=P - 1, VL=0.0, VR=0.0)
    bg = (0.01 * n_p).astype(float)
    theta, phi = poisson_boltzmann(n_p, bg, bg.sum(), es0)
    assert np.allclose(theta, 0.01, rtol=1e-9) and np.allclose(phi, 0.0, atol=1e-12)
    es1 = _es(P=P, a=0, b=P - 1, VL=0.1, VR=0.0, area=1e12)
    theta, phi = poisson_boltzmann(n_p, bg, bg.sum(), es1)
    lin = np.linspace(0.1, 0.0, P)
    assert np.allclose(phi, lin, atol=1e-9)
    psi = lin / es1.thermal_voltage_V
    # lattice-gas (Fermi) occupancy in the applied potential, mu by bisection
    lo, hi = -50.0, 50.0
    for _ in range(200):
        mu = 0.5 * (lo + hi)
        lo, hi = (mu, hi) if np.sum(n_p / (1 + np.exp(psi - mu))) < bg.sum() else (lo, mu)
    assert np.allclose(theta, 1 / (1 + np.exp(psi - mu)), rtol=1e-6)
