"""The continuum reaction-drift-diffusion-Poisson model of the biased heterojunction wire.

Equations (docs/model.md sections 3, 5-8), unknowns x_Br(z, t), x_V(z, t), phi(z, t) on the wire
[0, wire_length]:

    d x_a/dt = -dJ_a/dz + S_a   (a = Br, Cl, V; J_V = -(J_Br + J_Cl); S on the contacts only)
    J_a = -(z s^2/6) x_V sum_b l_ab [d ln(x_b/x_V)/dz - (e/kT) dphi/dz]
    d^2 phi/dz^2 = -e c_s (x_V - x_V^eq(z, 0)) / eps
    phi imposed at the outer (or inner) contact edges; no flux and zero field at the wire ends.

Stages (PyBaMM style): parameters (structures.parameters) -> mesh (continuum.mesh) ->
discretisation (continuum._kernels: conservative finite volumes, Scharfetter-Gummel vacancy flux,
exponentially fitted exchange form of the halide split) -> time integration (here: variable-step
BDF2 with Newton on the banded Jacobian, Poisson algebraic) -> observables
(continuum.observables).  Internally: lengths in um, time in s, psi = e phi / kT,
v = x_V / x_V^eq(Br); at the interface everything is SI-labelled.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.lapack import dgbtrf, dgbtrs

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
    initial_step_s: first time step; max_steps: the most accepted steps of one integration.
    """

    n_nodes: int = 1000
    refinement: float = 20.0
    layer_width_um: float = 0.15
    rtol: float = 1e-3
    first_output_s: float = 1e-3
    n_outputs: int = 41
    initial_step_s: float = 1e-8
    max_steps: int = 50000

    def __post_init__(self):
        require(isinstance(self.n_nodes, int) and self.n_nodes >= 20, f"n_nodes must be an integer >= 20, got {self.n_nodes!r}")
        require(isinstance(self.n_outputs, int) and self.n_outputs >= 2, f"n_outputs must be an integer >= 2, got {self.n_outputs!r}")
        _positive(self, "layer_width_um", "rtol", "first_output_s", "initial_step_s")
        require(self.refinement >= 0, f"refinement must be >= 0, got {self.refinement!r}")
        require(self.rtol < 0.1, f"rtol must be < 0.1, got {self.rtol!r}")


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
    halides: tuple = ("Br", "Cl")  # the pair (first, second): names the result's variables
    # time-dependent bias (continuum.protocol): called as at_time(problem, t_s) before every
    # implicit step to t_s; it updates psi_d, src_fac and rd_on in place.  None: constant bias.
    at_time: object = None

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
        """Residual and (with_jac) the exact spatial band Jacobian at y (K.assemble)."""
        K.assemble(y, hist, a0, dt, self.mesh.volume_um, self.mesh.h_um, self.src_w, self.src_fac, self.vbg,
                   self.dirichlet, self.psi_d, self.kappa, self.xref, self.d0, self.tab, self.ln_a_br,
                   self.ln_a_cl, self.linear_alpha, self.dEf_kT, self.rd_on, res, ab, with_jac, diag_row, 0.0,
                   *K.reuse_arrays(self.n))

    def currents(self, y) -> np.ndarray:
        """float64[n-1, 2] face currents (J_V, J_Br), site fractions * um / s."""
        return K.face_currents(y, self.mesh.h_um, self.xref, self.d0, self.tab)


@dataclass
class Solution:
    """Output of :func:`integrate`: times_s float64[nt]; y float64[nt, 3n]; source integrals
    q_v, q_br float64[nt] (site fractions * um, the time integral of the integrated sources by the
    same BDF formula, so N(t) - N(0) = q(t) holds to round-off); stats."""

    times_s: np.ndarray
    y: np.ndarray
    q_v: np.ndarray
    q_br: np.ndarray
    stats: dict


class SolverError(RuntimeError):
    """The time integration failed (step size underflow or too many steps)."""


#: a Newton contraction ratio above this triggers a fresh Jacobian
REFRESH_RATIO = 0.2
#: absolute tolerance on v = x_V/x_ref in units of rtol
ATOL_V_FACTOR = 1.0
#: Newton stops when the last correction is below this (v = x_V/x_ref relative to max(1, v), and
#: psi; 1e-3 of it on x_Br), or when the corrections still to come at the present contraction
#: rate sum to less (K.NEWTON_RATE_TEST)
NEWTON_TOL = 1e-6
NEWTON_MAX_ITER = 12
#: the first Jacobian of a step re-uses the derivatives of nodes and faces whose arguments moved
#: by less than this since they were computed (K.assemble); 0: always the exact Jacobian
JACOBIAN_REUSE = 1e-3


class _Jacobian:
    """The spatial Jacobian (band storage) and the scratch of the Newton iteration of a step."""

    def __init__(self, n3):
        self.spatial = np.zeros((2 * K.KL + K.KU + 1, n3))
        self.low = np.zeros((n3 // 3, 3, 3))
        self.dinv = np.zeros((n3 // 3, 3, 3))
        self.up = np.zeros((n3 // 3, 3, 3))
        self.evaluations = 0
        # scratch of the compiled Newton iteration (K.bdf2_advance)
        self.dy = np.empty(n3)
        self.y_start = np.empty(n3)
        self.counts = np.zeros(2, dtype=np.int64)
        # derivatives re-used between Jacobian passes (K.assemble)
        self.jnode, self.jface, self.jstats = K.reuse_arrays(n3 // 3)


def _newton(prob: Problem, y, hist, a0, dt, res, ab, jac: _Jacobian, max_iter=NEWTON_MAX_ITER):
    """The Newton iteration of one implicit step with a pivoting band solver (LAPACK dgbtrf /
    dgbtrs on equilibrated rows): the fallback of the compiled iteration (K.bdf2_advance) when
    a pivot block of its block elimination is singular.  Same decisions as the compiled one:
    matrix = spatial Jacobian (exact) + the time-derivative diagonal, evaluated at the
    predictor and again if the iteration contracts slowly.  Returns (converged, iterations)."""
    lu = piv = None
    prev = np.inf
    valid = False  # the Jacobian, evaluated afresh at the predictor
    vol = prob.mesh.volume_um
    dg = K.KL + K.KU
    for it in range(max_iter):
        if not valid:
            try:
                prob.assemble(y, hist, a0, dt, res, jac.spatial, True, dg)
            except ZeroDivisionError:  # a diverging iterate (complex arithmetic raises in numba)
                return False, it + 1
            valid = True
            jac.evaluations += 1
            lu = None
        else:
            try:
                prob.assemble(y, hist, a0, dt, res, ab, False, dg)
            except ZeroDivisionError:
                return False, it + 1
        if lu is None:
            ab[:] = jac.spatial
            ab[dg, 0::3] += vol * a0 / dt
            ab[dg, 1::3] += vol * a0 / dt
            rowscale = np.ones(res.size)
            K.equilibrate_rows(ab, rowscale, K.KL, K.KU)
            lu, piv, info = dgbtrf(ab, K.KL, K.KU, overwrite_ab=True)
            if info != 0:
                return False, it + 1
        dy, info = dgbtrs(lu, K.KL, K.KU, -res * rowscale, piv)
        if info != 0 or not np.all(np.isfinite(dy)):
            return False, it + 1
        du = np.max(np.abs(dy[0::3]) / np.maximum(1.0, np.abs(y[0::3])))
        db = np.max(np.abs(dy[1::3]))
        dp = np.max(np.abs(dy[2::3]))
        y += dy
        if np.max(np.abs(y[1::3])) > 2.0 or np.max(np.abs(y[0::3])) * prob.xref > 0.5:
            return False, it + 1  # diverging
        size = max(du, db * 1e3, dp)
        if du < NEWTON_TOL and db < 1e-3 * NEWTON_TOL and dp < NEWTON_TOL:
            return True, it + 1
        if it > 0 and size < K.NEWTON_RATE_TEST * prev and size * size / (prev - size) < NEWTON_TOL:
            return True, it + 1  # what a contraction at this rate has left to correct is below tol
        if it > 0 and size > REFRESH_RATIO * prev:
            valid = False  # slow contraction: refresh the Jacobian at this iterate
        prev = size
    return False, max_iter


def integrate(prob: Problem, t_out, rtol: float = 1e-3, initial_step_s: float = 1e-8,
              max_steps: int = 50000) -> Solution:
    """Integrate from t = 0 (state prob.y0) through the increasing output times t_out (s).

    Variable-step BDF2 (first step backward Euler) with the algebraic Poisson equation; every
    step is solved by Newton (NEWTON_TOL) on the banded Jacobian at the predictor (exact but for
    the node and face derivatives kept while their arguments move by less than JACOBIAN_REUSE;
    the halides are conserved to round-off, the vacancies to ~1e-10); local error estimated from the
    difference to a quadratic predictor, controlled on v = x_V/x_ref and x_Br (absolute and
    relative tolerance rtol).  Output times are hit exactly.  t_out[0] may be 0 (the initial
    state is stored as given).  The step control and the Newton iteration run compiled
    (K.bdf2_advance), in one call for a constant bias; with prob.at_time the call pauses before
    every attempt's Newton iteration to set the bias at the attempt's end time.
    docs/benchmarks.md compares this stepper with SUNDIALS IDA on the same residual and Jacobian
    (IDA needed more CPU on the Fig. 1e sweep and let x_Br undershoot to -1e-3 behind the front).
    """
    t0_wall = time.perf_counter()
    t_out = np.asarray(t_out, dtype=float)
    n3 = prob.y0.size
    res = np.empty(n3)
    ab = np.empty((2 * K.KL + K.KU + 1, n3))
    hist = np.empty(2 * (n3 // 3))
    jac = _Jacobian(n3)
    ys = np.empty((t_out.size, n3))
    qv_out = np.zeros(t_out.size)
    qb_out = np.zeros(t_out.size)
    # stepper state (K.IS_*, K.FS_*): the history of accepted (t, y, q_v, q_br) in three slots
    ist = np.zeros(5, dtype=np.int64)
    fst = np.zeros(7)
    th = np.zeros(3)
    yh = np.empty((3, n3))
    qh = np.zeros((3, 2))
    yh[0] = prob.y0
    ist[K.IS_NACC] = 1
    fst[K.FS_DT] = initial_step_s
    while ist[K.IS_KOUT] < t_out.size and t_out[ist[K.IS_KOUT]] <= 0.0:
        ys[ist[K.IS_KOUT]] = prob.y0
        ist[K.IS_KOUT] += 1
    ypred = np.empty(n3)
    ynew = np.empty(n3)
    counts = jac.counts
    vol = prob.mesh.volume_um
    atol_v, atol_b = ATOL_V_FACTOR * rtol, 0.1 * rtol  # absolute tolerances on v and x_Br
    resume = False
    while True:
        try:
            code = K.bdf2_advance(
                resume, prob.at_time is not None, max_steps, ist, fst, th, yh, qh, t_out, ypred, ynew, hist, ys,
                qv_out, qb_out, rtol, atol_v, atol_b, vol, prob.mesh.h_um, prob.src_w,
                prob.src_fac, prob.vbg, prob.dirichlet, prob.psi_d, prob.kappa, prob.xref, prob.d0, prob.tab,
                prob.ln_a_br, prob.ln_a_cl, prob.linear_alpha, prob.dEf_kT, prob.rd_on, res, ab, jac.spatial,
                jac.low, jac.dinv, jac.up, jac.dy, jac.y_start, NEWTON_MAX_ITER, NEWTON_TOL, REFRESH_RATIO,
                counts, JACOBIAN_REUSE, jac.jnode, jac.jface, jac.jstats)
        except ZeroDivisionError:  # a diverging iterate (complex arithmetic raises in numba)
            code = None
        resume = False
        if code == K.ADV_DONE:
            break
        if code == K.ADV_PAUSED:
            prob.at_time(prob, fst[K.FS_TN])
            resume = True
            continue
        if code is None or code == K.ADV_FALLBACK:
            converged = False
            if code == K.ADV_FALLBACK:  # a singular pivot block: LAPACK with pivoting
                converged, its = _newton(prob, ynew, hist, fst[K.FS_A0], fst[K.FS_DT_TRY], res, ab, jac)
                counts[0] += its
            K.bdf2_end(converged, ist, fst, th, yh, qh, ypred, ynew, ys, qv_out, qb_out, rtol, atol_v, atol_b,
                       prob.src_w, prob.src_fac, prob.xref, prob.ln_a_br,
                       prob.ln_a_cl, prob.linear_alpha, prob.dEf_kT, prob.rd_on)
            continue
        t = fst[K.FS_T]
        if code == K.ADV_MAX_STEPS:
            raise SolverError(f"more than {max_steps} steps (t = {t:.3e} s of {t_out[-1]:.3e} s, "
                              f"last step {fst[K.FS_DT]:.2e} s)")
        yl = yh[(ist[K.IS_NACC] - 1) % 3]
        xv_max = float(np.max(yl[0::3])) * prob.xref
        hint = ""
        if xv_max > 0.1:
            hint = (f"; x_V reached {xv_max:.2g} at z = {prob.mesh.z_um[int(np.argmax(yl[0::3]))]:.3g} um: "
                    "vacancies pile up without a sink (electrodes.negative_electrode = 'inert' or "
                    "r_d_form = 'zero'?) and the dilute-vacancy model breaks down")
        raise SolverError(f"step size underflow at t = {t:.3e} s{hint}")
    stats = {"steps": int(ist[K.IS_STEPS]), "rejected": int(ist[K.IS_REJECTED]),
             "newton_iterations": int(counts[0]), "residual_evaluations": int(counts[0]),
             "jacobian_evaluations": int(counts[1]) + jac.evaluations,
             "jacobian_faces_recomputed": int(jac.jstats[1]), "integrator": "bdf2",
             "wall_s": time.perf_counter() - t0_wall}
    return Solution(t_out.copy(), ys, qv_out, qb_out, stats)


# --------------------------------------------------------------------------------------------
# the wire of the experiment
# --------------------------------------------------------------------------------------------
def scales(params: DeviceParameters) -> dict[str, float]:
    """Derived scales: x_ref, d0 (um^2), kappa (1/um^2), thermal voltage (V), Debye length (um)."""
    m = params.material
    xref = float(params.vacancies.equilibrium_fraction(m, 0.0))  # x_V^eq of the first halide at T
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
    dirichlet, psi_d, fac, rd_on, law = bias_arrays(params, mesh, field_V_per_um)
    w_left = mesh.overlap_um(l0, l1)
    w_right = mesh.overlap_um(r0, r1)
    src_w = w_left + w_right
    w_first, w_second = mat.jump_frequency_pair_per_s()
    if onsager is None and f0 is None:
        f0 = default_f0()[0]
    tab = as_table(onsager, w_first, w_second, f0)
    return Problem(mesh=mesh, y0=y0, vbg=v0.copy(), dirichlet=dirichlet, psi_d=psi_d, src_w=src_w,
                   src_fac=fac, kappa=sc["kappa_per_um2"], xref=sc["xref"], d0=sc["d0_um2"],
                   tab=np.ascontiguousarray(tab.abd_per_s),
                   ln_a_br=law.ln_alpha_Br, ln_a_cl=law.ln_alpha_Cl, linear_alpha=law.linear,
                   dEf_kT=law.formation_energy_difference_kT, rd_on=rd_on, thermal_voltage_V=sc["thermal_voltage_V"],
                   halides=params.halides)


def bias_arrays(params: DeviceParameters, mesh: Mesh, field_V_per_um: float):
    """What the applied field sets in a :class:`Problem` on ``mesh``: (dirichlet bool[n], psi_d
    float64[n] imposed psi = +-U/2 / (kT/e) at the imposed positions, src_fac float64[n] the
    electrode field factor * |E| (V/um) on the contact nodes, rd_on float64[n], the positive
    electrode's RateLaw).  The positive (vacancy-depleted) electrode is the left contact for
    E >= 0 and the right one for E < 0 (structures.parameters.electrode_rates)."""
    geo = params.geometry
    sc = scales(params)
    (l0, l1), (r0, r1) = geo.contacts_um()
    n = mesh.n
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
    return dirichlet, psi_d, fac, rd_on, laws["positive"]


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
                           volume_um=prob.mesh.volume_um.copy(), halides=prob.halides,
                           metadata=dict(metadata or {}, **{"solver_" + k: v for k, v in sol.stats.items()}))


def simulate_wire(params: DeviceParameters, field_V_per_um: float, duration_s: float,
                  numerics: Numerics = Numerics(), onsager=None, f0: float | None = None) -> WireResult:
    """Run the wire at one field for duration_s seconds; returns profiles at output_times()."""
    prob = wire_problem(params, field_V_per_um, numerics, onsager, f0)
    sol = integrate(prob, output_times(duration_s, numerics), numerics.rtol, numerics.initial_step_s,
                    numerics.max_steps)
    meta = {"field_V_per_um": float(field_V_per_um), "duration_s": float(duration_s),
            "junction_um": params.geometry.junction_um, "n_nodes": prob.n}
    return solution_to_result(prob, sol, meta)
