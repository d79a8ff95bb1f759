"""The continuum reaction-drift-diffusion-Poisson model of the biased heterojunction wire.

Equations (docs/model.md sections 3, 5-8), unknowns x_Br(z, t), x_V(z, t), phi(z, t) on the wire
[0, wire_length]:

    d x_a/dt = -dJ_a/dz + S_a   (a = Br, Cl, V; J_V = -(J_Br + J_Cl); S on the contacts only)
    J_a = -(z s^2/6) x_V sum_b l_ab [d ln(x_b/x_V)/dz - (e/kT) dphi/dz]
    d^2 phi/dz^2 = -e c_s (x_V - x_V^eq(z, 0)) / eps
    phi imposed at the outer (or inner) contact edges; no flux and zero field at the wire ends.

Stages (PyBaMM style): parameters (structures.parameters) -> mesh (continuum.mesh) ->
discretisation (continuum._kernels: conservative finite volumes, Scharfetter-Gummel vacancy flux,
exponentially fitted exchange form of the halide split) -> time integration (continuum.ida:
SUNDIALS IDA with Newton on the banded exact Jacobian, Poisson algebraic) -> observables
(continuum.observables).  Internally: lengths in um, time in s, psi = e phi / kT,
v = x_V / x_V^eq(Br); at the interface everything is SI-labelled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from .io import ContinuumResult
from .mesh import Mesh, graded_mesh
from ionwire.structures.parameters import DeviceParameters, _positive, electrode_rate_law, require
from .transport import as_table
from ionwire.structures.units import (ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, Z_ANION, hop_length_A,
                    site_density_per_m3, thermal_voltage_V)

# provisional tracer correlation factor of the perovskite anion sublattice, used only while
# structures.onsager.F0_ANION_PEROVSKITE (measured by the kMC) is unset: f = 0.69 for anion
# vacancy diffusion in the cubic perovskite lattice (Ishioka & Koiwa, Phil. Mag. A 52, 267 (1985);
# quoted e.g. by De Souza, Adv. Funct. Mater. 25, 6326 (2015)).
F0_LITERATURE = 0.69


def default_f0() -> tuple[float, str]:
    """(f0, source): the kMC-measured constant if set, else the literature value."""
    from ionwire.structures import onsager

    if onsager.F0_ANION_PEROVSKITE is not None:
        return float(onsager.F0_ANION_PEROVSKITE), "kMC (structures.onsager.F0_ANION_PEROVSKITE)"
    return F0_LITERATURE, "literature (Ishioka & Koiwa 1985), kMC value not yet set"


@dataclass(frozen=True)
class Numerics:
    """Discretisation and solver controls ([numerics] table).

    n_nodes: approximate number of mesh nodes; refinement, layer_width_um: grading at the contact
    lines and the junction (continuum.mesh); rtol: local error tolerance of the time step
    (relative and absolute, on v = x_V/x_V^eq(Br) and on x_Br); first_output_s,
    n_outputs: log-spaced output times between first_output_s and the end (plus t = 0);
    initial_step_s: first time step; integrator: "ida" (SUNDIALS IDA, see integrate).
    """

    n_nodes: int = 1000
    refinement: float = 20.0
    layer_width_um: float = 0.15
    rtol: float = 1e-3
    first_output_s: float = 1e-3
    n_outputs: int = 41
    initial_step_s: float = 1e-8
    max_steps: int = 50000
    integrator: str = "ida"

    def __post_init__(self):
        require(isinstance(self.n_nodes, int) and self.n_nodes >= 20, f"n_nodes must be an integer >= 20, got {self.n_nodes!r}")
        require(isinstance(self.n_outputs, int) and self.n_outputs >= 2, f"n_outputs must be an integer >= 2, got {self.n_outputs!r}")
        _positive(self, "layer_width_um", "rtol", "first_output_s", "initial_step_s")
        require(self.refinement >= 0, f"refinement must be >= 0, got {self.refinement!r}")
        require(self.rtol < 0.1, f"rtol must be < 0.1, got {self.rtol!r}")
        require(self.integrator in INTEGRATORS,
                f"integrator must be one of {', '.join(map(repr, INTEGRATORS))}, got {self.integrator!r}")


@dataclass
class Problem:
    """A discretised problem: everything the kernels need (nondimensional, see _kernels)."""

    mesh: Mesh
    y0: np.ndarray            # float64[3n] initial (v = x_V/x_ref, x_Br, psi) per node
    vbg: np.ndarray           # float64[n] background charge / (e c_s x_ref)
    dirichlet: np.ndarray     # bool[n]
    psi_d: np.ndarray         # float64[n] imposed psi where dirichlet
    src_w: np.ndarray         # float64[n] cell length inside a contact (um)
    src_fac: np.ndarray       # float64[n] |E| * electrode factor (V/um), 0: no reaction
    kappa: float              # e^2 c_s x_ref / (eps kT), 1/um^2
    xref: float               # x_V^eq of pure Br
    d0: float                 # z s^2 / 6, um^2
    tab: np.ndarray           # float64[m, 3] reduced Onsager table on uniform y
    ln_a_br: float = 0.0
    ln_a_cl: float = 0.0
    linear_alpha: bool = False
    dEf_kT: float = 0.0
    rd_on: np.ndarray | None = None  # float64[n]: 1 where r_d is active, 0 where r_d = 0
    thermal_voltage_V: float = 0.025852

    def __post_init__(self):
        if self.rd_on is None:
            self.rd_on = np.ones(self.mesh.n)

    @property
    def n(self) -> int:
        return self.mesh.n

    def sources(self, y):
        return K.source_totals(y, self.src_w, self.src_fac, self.xref, self.ln_a_br, self.ln_a_cl,
                               self.linear_alpha, self.dEf_kT, self.rd_on)

    def assemble(self, y, hist, a0, dt, res, ab, with_jac=True, diag_row=K.KU):
        K.assemble(y, hist, a0, dt, self.mesh.volume_um, self.mesh.h_um, self.src_w, self.src_fac, self.vbg,
                   self.dirichlet, self.psi_d, self.kappa, self.xref, self.d0, self.tab, self.ln_a_br,
                   self.ln_a_cl, self.linear_alpha, self.dEf_kT, self.rd_on, res, ab, with_jac, diag_row)

    def currents(self, y) -> np.ndarray:
        """float64[n-1, 2] face currents (J_V, J_Br), site fractions * um / s."""
        return K.face_currents(y, self.mesh.h_um, self.xref, self.d0, self.tab)


@dataclass
class Solution:
    """Output of :func:`integrate`: times_s float64[nt]; y float64[nt, 3n]; source integrals
    q_v, q_br float64[nt] (site fractions * um, the time integral of the integrated sources by the
    same BDF formula as the species, so N(t) - N(0) = q(t) holds to round-off); stats."""

    times_s: np.ndarray
    y: np.ndarray
    q_v: np.ndarray
    q_br: np.ndarray
    stats: dict


class SolverError(RuntimeError):
    """The time integration failed (step size underflow or too many steps)."""


INTEGRATORS = ("ida",)


def integrate(prob: Problem, t_out, rtol: float = 1e-3, initial_step_s: float = 1e-8,
              max_steps: int = 50000, integrator: str = "ida") -> Solution:
    """Integrate from t = 0 (state prob.y0) through the increasing output times t_out (s) with
    SUNDIALS IDA (scikit-sundae; continuum.ida): variable-order BDF with Newton on the exact band
    Jacobian, the integrated electrode sources carried as states (conserved to round-off),
    output times hit exactly.  integrator: "ida" (the only one; kept for configs that name it).
    """
    require(integrator in INTEGRATORS,
            f"integrator must be one of {', '.join(map(repr, INTEGRATORS))}, got {integrator!r}")
    from .ida import integrate as integrate_ida

    return integrate_ida(prob, t_out, rtol, initial_step_s, max_steps)


# --------------------------------------------------------------------------------------------
# the wire of the experiment
# --------------------------------------------------------------------------------------------
def scales(params: DeviceParameters) -> dict[str, float]:
    """Derived scales: x_ref, d0 (um^2), kappa (1/um^2), thermal voltage (V), Debye length (um)."""
    m = params.material
    xref = params.vacancies.equilibrium_fraction_Br
    vt = thermal_voltage_V(m.temperature_K)
    cs = site_density_per_m3(m.lattice_constant_A)
    eps = m.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    kappa = ELEMENTARY_CHARGE_C * cs * xref / (eps * vt) * 1e-12
    s_um = hop_length_A(m.lattice_constant_A) * 1e-4
    d0 = Z_ANION * s_um**2 / 6.0
    return {"xref": xref, "d0_um2": d0, "kappa_per_um2": kappa, "thermal_voltage_V": vt,
            "debye_length_um": 1.0 / math.sqrt(kappa)}


def wire_problem(params: DeviceParameters, field_V_per_um: float, numerics: Numerics = Numerics(),
                 onsager=None, f0: float | None = None, mesh: Mesh | None = None) -> Problem:
    """The experiment's wire at a constant applied field (V/um; > 0 forward: higher potential on
    the Br-side (left) contact).  Step initial profile at the junction, x_V = x_V^eq of each
    segment (the junction node takes the 50/50 composition), background = initial x_V.

    onsager: None (MAA theory with f0, default :func:`default_f0`), a callable
    x_Cl -> (l_BrBr, l_BrCl, l_ClCl) in 1/s, a tuple (x_cl, l_BrBr, l_BrCl, l_ClCl) or a
    continuum.transport.ReducedOnsagerTable.
    """
    geo = params.geometry
    mat = params.material
    sc = scales(params)
    (l0, l1), (r0, r1) = geo.contacts_um()
    zj = geo.junction_um
    if mesh is None:
        mesh = graded_mesh([0.0, l0, l1, zj, r0, r1, geo.wire_length_um], numerics.n_nodes,
                           numerics.refinement, numerics.layer_width_um)
    z = mesh.z_um
    n = mesh.n
    y_cl = np.where(z < zj - 1e-12, 0.0, np.where(z > zj + 1e-12, 1.0, 0.5))
    xeq = params.vacancies.equilibrium_fraction(mat, y_cl)
    v0 = xeq / sc["xref"]
    y0 = np.zeros(3 * n)
    y0[0::3] = v0
    y0[1::3] = (1.0 - xeq) * (1.0 - y_cl)
    zl, zr = geo.imposed_positions_um()
    il, ir = mesh.index_of(zl), mesh.index_of(zr)
    dirichlet = np.zeros(n, dtype=np.bool_)
    dirichlet[[il, ir]] = True
    u_applied = geo.applied_voltage_V(field_V_per_um)
    psi_d = np.zeros(n)
    psi_d[il] = 0.5 * u_applied / sc["thermal_voltage_V"]
    psi_d[ir] = -0.5 * u_applied / sc["thermal_voltage_V"]
    w_left = mesh.overlap_um(l0, l1)
    w_right = mesh.overlap_um(r0, r1)
    # the rate law of each electrode (structures.parameters.electrode_rate_law): per node its
    # field factor and whether r_d is on; the composition part is the same at both electrodes
    fac = np.zeros(n)
    rd_on = np.ones(n)
    pos, neg = (w_left, w_right) if field_V_per_um >= 0 else (w_right, w_left)
    laws = {name: electrode_rate_law(params, field_V_per_um, name) for name in ("positive", "negative")}
    for name, w in (("positive", pos), ("negative", neg)):
        fac[w > 0] = laws[name].field_factor_V_per_um
        rd_on[w > 0] = laws[name].annihilation
    law = laws["positive"]
    src_w = w_left + w_right
    w = mat.jump_frequencies_per_s()
    if onsager is None and f0 is None:
        f0 = default_f0()[0]
    tab = as_table(onsager, w["Br"], w["Cl"], f0)
    return Problem(mesh=mesh, y0=y0, vbg=v0.copy(), dirichlet=dirichlet, psi_d=psi_d, src_w=src_w,
                   src_fac=fac, kappa=sc["kappa_per_um2"], xref=sc["xref"], d0=sc["d0_um2"],
                   tab=np.ascontiguousarray(tab.abd_per_s),
                   ln_a_br=law.ln_alpha_Br, ln_a_cl=law.ln_alpha_Cl, linear_alpha=law.linear,
                   dEf_kT=law.formation_energy_difference_kT, rd_on=rd_on, thermal_voltage_V=sc["thermal_voltage_V"])


def output_times(duration_s: float, numerics: Numerics) -> np.ndarray:
    """t = 0 and numerics.n_outputs log-spaced times from first_output_s to duration_s (s)."""
    first = min(numerics.first_output_s, duration_s)
    return np.concatenate(([0.0], np.geomspace(first, duration_s, numerics.n_outputs)))


# One result type in memory and on disk: continuum.io.ContinuumResult (WireResult is its name here).
WireResult = ContinuumResult


def solution_to_result(prob: Problem, sol: Solution, metadata: dict | None = None) -> ContinuumResult:
    """The profiles of an integrated problem as a :class:`~ionwire.continuum.io.ContinuumResult`:
    x_V = xref v, x_Br, x_Cl = 1 - x_Br - x_V, phi = psi kT/e, the face currents and the source
    integrals; metadata plus the solver statistics (solver_*)."""
    y = sol.y
    x_v = prob.xref * y[:, 0::3]
    x_br = y[:, 1::3].copy()
    phi = y[:, 2::3] * prob.thermal_voltage_V
    cur = np.stack([prob.currents(row) for row in y])
    return ContinuumResult(prob.mesh.z_um.copy(), sol.times_s, x_br, 1.0 - x_br - x_v, x_v, phi,
                           j_v=cur[:, :, 0], j_br=cur[:, :, 1], q_v=sol.q_v, q_br=sol.q_br,
                           volume_um=prob.mesh.volume_um.copy(),
                           metadata=dict(metadata or {}, **{"solver_" + k: v for k, v in sol.stats.items()}))


def simulate_wire(params: DeviceParameters, field_V_per_um: float, duration_s: float,
                  numerics: Numerics = Numerics(), onsager=None, f0: float | None = None) -> WireResult:
    """Run the wire at one field for duration_s seconds; returns profiles at output_times()."""
    prob = wire_problem(params, field_V_per_um, numerics, onsager, f0)
    sol = integrate(prob, output_times(duration_s, numerics), numerics.rtol, numerics.initial_step_s,
                    numerics.max_steps, numerics.integrator)
    meta = {"field_V_per_um": float(field_V_per_um), "duration_s": float(duration_s),
            "junction_um": params.geometry.junction_um, "n_nodes": prob.n}
    return solution_to_result(prob, sol, meta)
