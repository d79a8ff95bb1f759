"""Laterally averaged 1D electrostatics of the device kMC on its anion planes (docs/model.md section 5).

Discretisation.  Plane p (p = 0 .. P-1, spacing h = a/2) carries the charge q_p e with
q_p = (vacancies on the plane) - (background: the plane's vacancies at t = 0), spread over the
wire's cross-section A = nx ny a^2.  With D_k = phi_{k+1} - phi_k the potential step across the
"bond" between planes k and k+1, Gauss's law for a slab of width h around each plane reads

    D_k - D_{k-1} = -c q_k,        c = e h / (eps_r eps0 A)   (volt per elementary charge),

which is the finite-difference Poisson equation phi'' = -rho/eps.  Zero field at both wire ends
(D_{-1} = D_{P-1} = 0, no charge outside the wire).  The electrode potentials are imposed on two
planes a < b (``left_plane``, ``right_plane``: by default the planes at the OUTER edges of the
contact regions, docs/model.md section 5); the electrode absorbs the charge on those planes.  Hence:

    left overhang  (k < a):   D_k = -c sum_{m<=k} q_m
    right overhang (k >= b):  D_k = +c sum_{m>k}  q_m
    between a and b:          D_k = g - c L_k,   g = (phi_b - phi_a)/N + c Lambda/N,  N = b - a,
                              L_k = sum_{a<m<=k} q_m + const,  Lambda = sum_{a<=k<b} L_k

The device kMC keeps exactly this integer state (L_k for every bond, Lambda) and updates it per
event: a vacancy hop across bond m changes L_m by -1 (up, +z) or +1 (down) and nothing else (plus
Lambda by the same amount between a and b); creating or removing a vacancy changes L_k on the
bonds between its plane and the nearer imposed plane (inside [a, b]: the shorter side, the
other side is absorbed by the gauge constant).  So the potential the hop rates see is the exact
solution of the discrete Poisson equation for the current charges after every event: no
re-solve interval, no update error.  :func:`solve_potential` solves the same equations as a
banded linear system, independently, for tests and checks.

Hop rates: a vacancy hop from plane p to p' is multiplied by exp(-(phi_{p'} - phi_p) e / 2kT)
(docs/model.md section 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded
from scipy.optimize import brentq

from ionwire.structures.units import ANGSTROM_M, ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, thermal_voltage_V


@dataclass(frozen=True)
class PlaneElectrostatics:
    """Geometry and boundary data of the 1D Poisson problem on the anion planes.

    n_planes: P; plane_spacing_A: h (a/2); cross_section_A2: A (nx ny a^2);
    left_plane, right_plane: planes a < b where phi is imposed; potential_left_V,
    potential_right_V: the imposed values; temperature_K for the thermal voltage.
    """

    n_planes: int
    plane_spacing_A: float
    cross_section_A2: float
    relative_permittivity: float
    left_plane: int
    right_plane: int
    potential_left_V: float
    potential_right_V: float
    temperature_K: float = 300.0

    def __post_init__(self):
        if not (0 <= self.left_plane < self.right_plane < self.n_planes):
            raise ValueError(f"need 0 <= left_plane < right_plane < n_planes, got {self.left_plane}, "
                             f"{self.right_plane}, {self.n_planes}")
        for name in ("plane_spacing_A", "cross_section_A2", "relative_permittivity", "temperature_K"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")

    @property
    def volt_per_charge(self) -> float:
        """c = e h / (eps A) (V): the jump of D across a plane holding one elementary charge."""
        eps = self.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
        return ELEMENTARY_CHARGE_C * self.plane_spacing_A * ANGSTROM_M / (eps * self.cross_section_A2 * ANGSTROM_M**2)

    @property
    def thermal_voltage_V(self) -> float:
        return thermal_voltage_V(self.temperature_K)

    @property
    def gamma(self) -> float:
        """c / (kT/e): the reduced potential step of one elementary charge."""
        return self.volt_per_charge / self.thermal_voltage_V

    def bond_is_between(self) -> np.ndarray:
        """bool[P-1]: bonds k (planes k, k+1) between the two imposed planes (a <= k < b)."""
        k = np.arange(self.n_planes - 1)
        return (k >= self.left_plane) & (k < self.right_plane)


def solve_potential(charge_e: np.ndarray, es: PlaneElectrostatics) -> np.ndarray:
    """phi (V), float64[P]: the discrete Poisson equation for plane charges ``charge_e`` (e per
    plane, float64[P]), imposed potentials on planes a and b, zero field at both ends; solved as
    one banded linear system (independent of the kMC's incremental bookkeeping)."""
    q = np.asarray(charge_e, dtype=np.float64)
    P = es.n_planes
    if q.shape != (P,):
        raise ValueError(f"charge_e must have shape ({P},), got {q.shape}")
    c = es.volt_per_charge
    ab = np.zeros((3, P))  # rows: super, main, sub diagonals
    rhs = -c * q.copy()
    for p in range(P):
        if p in (es.left_plane, es.right_plane):
            ab[1, p] = 1.0
            rhs[p] = es.potential_left_V if p == es.left_plane else es.potential_right_V
            continue
        # D_p - D_{p-1} with D_{-1} = D_{P-1} = 0
        diag = 0.0
        if p + 1 < P:
            ab[0, p + 1] = 1.0
            diag -= 1.0
        if p - 1 >= 0:
            ab[2, p - 1] = 1.0
            diag -= 1.0
        ab[1, p] = diag
    return solve_banded((1, 1), ab, rhs)


def potential_from_bonds(L: np.ndarray, Lambda: int, es: PlaneElectrostatics) -> np.ndarray:
    """phi (V), float64[P], from the kMC's integer bond state (L_k, Lambda); see module docstring."""
    L = np.asarray(L, dtype=np.float64)
    P = es.n_planes
    a, b = es.left_plane, es.right_plane
    c = es.volt_per_charge
    between = es.bond_is_between()
    g = (es.potential_right_V - es.potential_left_V) / (b - a) + c * float(Lambda) / (b - a)
    D = np.where(between, g - c * L, -c * L)
    phi = np.empty(P)
    phi[a] = es.potential_left_V
    for k in range(a, P - 1):
        phi[k + 1] = phi[k] + D[k]
    for k in range(a - 1, -1, -1):
        phi[k] = phi[k + 1] - D[k]
    return phi


def bond_state_from_charge(charge_e: np.ndarray, es: PlaneElectrostatics) -> tuple[np.ndarray, int]:
    """(L int64[P-1], Lambda) for integer plane charges: the gauge with L_a = 0 between a and b."""
    q = np.asarray(charge_e, dtype=np.int64)
    P = es.n_planes
    a, b = es.left_plane, es.right_plane
    L = np.zeros(P - 1, dtype=np.int64)
    for k in range(P - 1):
        if k < a:
            L[k] = q[: k + 1].sum()
        elif k >= b:
            L[k] = -q[k + 1:].sum()
        else:
            L[k] = q[a + 1: k + 1].sum()
    return L, int(L[a:b].sum())


def poisson_boltzmann(sites_per_plane: np.ndarray, background: np.ndarray, n_vacancies: int,
                      es: PlaneElectrostatics, *, tol: float = 1e-13, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Discrete Poisson-Boltzmann steady state of the vacancies with no reactions (zero current).

    The vacancies (+e, at most one per site) are in equilibrium in the mean potential:
    theta_p = 1 / (1 + exp(phi_p / V_T - mu)), mu fixed by sum_p n_p theta_p = n_vacancies, and phi
    solves the discrete Poisson equation of this module with the charges n_p theta_p - background_p.
    Solved by Newton's method on (phi, mu) with step halving.  Returns
    (theta float64[P] vacancy site fraction, phi float64[P] V).
    """
    n_p = np.asarray(sites_per_plane, dtype=np.float64)
    bg = np.asarray(background, dtype=np.float64)
    vt = es.thermal_voltage_V
    c = es.volt_per_charge
    P = es.n_planes
    dirichlet = {es.left_plane: es.potential_left_V, es.right_plane: es.potential_right_V}
    lap = np.zeros((P, P))
    for p in range(P):
        if p + 1 < P:
            lap[p, p + 1] += 1.0
            lap[p, p] -= 1.0
        if p - 1 >= 0:
            lap[p, p - 1] += 1.0
            lap[p, p] -= 1.0

    def residual(phi, mu):
        theta = _fermi(phi / vt - mu)
        F = np.empty(P + 1)
        F[:P] = lap @ phi + c * (n_p * theta - bg)
        for p, v in dirichlet.items():
            F[p] = phi[p] - v
        F[P] = (np.sum(n_p * theta) - n_vacancies) / max(n_vacancies, 1)
        return F, theta

    phi = solve_potential(np.zeros(P), es)
    mu = brentq(lambda m: float(np.sum(n_p * _fermi(phi / vt - m))) - n_vacancies, -80.0, 80.0, xtol=1e-14)
    F, theta = residual(phi, mu)
    for _ in range(max_iter):
        w = theta * (1.0 - theta)
        J = np.zeros((P + 1, P + 1))
        J[:P, :P] = lap + np.diag(-c * n_p * w / vt)
        J[:P, P] = c * n_p * w
        J[P, :P] = -n_p * w / vt / max(n_vacancies, 1)
        J[P, P] = np.sum(n_p * w) / max(n_vacancies, 1)
        for p in dirichlet:
            J[p, :] = 0.0
            J[p, p] = 1.0
        step = np.linalg.solve(J, -F)
        norm0 = np.max(np.abs(F))
        lam = 1.0
        while True:
            phi_new = phi + lam * step[:P]
            mu_new = mu + lam * step[P]
            F_new, theta_new = residual(phi_new, mu_new)
            if np.max(np.abs(F_new)) < norm0 or lam < 1e-6:
                break
            lam *= 0.5
        phi, mu, F, theta = phi_new, mu_new, F_new, theta_new
        if np.max(np.abs(lam * step[:P])) < tol * max(1.0, np.max(np.abs(phi))) and np.max(np.abs(F)) < 1e-9:
            return theta, phi
    raise RuntimeError(f"Poisson-Boltzmann iteration did not converge (residual {np.max(np.abs(F)):.3e})")


def _fermi(x):
    return 0.5 * (1.0 - np.tanh(0.5 * x))
