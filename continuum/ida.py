"""Time integration of the discretised wire through SUNDIALS IDA (scikit-sundae).

The semi-discrete system of continuum._kernels is the index-1 DAE

    vol_i v_i'    + (div J_V / x_ref)_i - w_i s_V,i / x_ref = 0     (v = x_V / x_ref)
    vol_i x_Br,i' + (div J_Br)_i        - w_i s_Br,i        = 0
    Poisson row i (algebraic in psi = e phi / kT)

integrated by IDA's variable-order, variable-step BDF with Newton on the exact band Jacobian
(continuum._kernels.assemble: hand-written derivatives of the face fluxes, complex step of the
sources) plus cj vol on the time-derivative diagonals.

Integrated electrode sources.  They are carried as extra differential states, integrated by the
same BDF formula as the species: on every contact node a running sum

    C_i' - C_{i-1}' - w_i s_i(y_i) = 0          (C_{i-1} = 0 on a contact's first node)

for s = s_V / x_ref and s_Br, stored right after the node's (v, x_Br, psi), so the Jacobian stays
banded and exact (the last C of a contact is that contact's integrated source).  The sum of the
species rows minus the sum of the C rows is sum_i vol_i y_i' - sum_contacts C_last': linear and
free of y, so with the exact Jacobian every Newton correction -- whatever its accuracy -- keeps
sum_i vol_i v_i - sum C_last (and the same for Br) at its initial value, and
N(t) - N(0) = q(t) holds to round-off, as with a Newton solved to round-off.

Output times are hit exactly (IDA's stop time at each output).  Initial conditions are made
consistent here: psi from the (linear) Poisson rows at the initial v, y' of the differential rows
from the residual.
"""
from __future__ import annotations

import time

import numba
import numpy as np
from scipy.linalg import solve_banded

from . import _kernels as K

#: absolute tolerance on psi = e phi / kT: psi follows v through the algebraic Poisson rows and
#: is not error-controlled (as in a BDF method on the differential variables only)
ATOL_PSI = 1e3
#: absolute tolerance on v = x_V / x_ref in units of rtol (x_Br: 0.1 rtol)
ATOL_V_FACTOR = 1.0
#: IDA's maximum BDF order (1..5)
MAX_ORDER = 5


class Layout:
    """Positions of the kernel unknowns and of the running source sums in IDA's state vector.

    pos3 int64[3n]: IDA index of kernel unknown k (y[3 i + k] of continuum._kernels);
    cv, cb int64[n]: IDA index of node i's running sums of s_V/x_ref and s_Br (-1: no source);
    prev int64[n]: the previous source node of the same contact (-1: first node);
    last: the nodes ending a contact; size: length of IDA's vector; kl, ku: half-bandwidths.
    """

    def __init__(self, src_w, src_fac):
        n = src_w.size
        active = (src_w > 0.0) & (src_fac > 0.0)
        self.pos3 = np.empty(3 * n, dtype=np.int64)
        self.cv = np.full(n, -1, dtype=np.int64)
        self.cb = np.full(n, -1, dtype=np.int64)
        self.prev = np.full(n, -1, dtype=np.int64)
        k = 0
        for i in range(n):
            self.pos3[3 * i:3 * i + 3] = (k, k + 1, k + 2)
            k += 3
            if active[i]:
                self.cv[i], self.cb[i] = k, k + 1
                k += 2
                if i > 0 and active[i - 1]:
                    self.prev[i] = i - 1
        self.size = k
        self.last = np.array([i for i in range(n) if active[i] and (i == n - 1 or not active[i + 1])],
                             dtype=np.int64)
        self.kl = self.ku = 0

    def set_bandwidths(self, kernel_offsets):
        """Half-bandwidths in IDA's ordering from the kernel's coupled (row, column) offsets
        kernel_offsets: iterable of (row % 3, row - column) (see structural_offsets), and from the
        running sums' rows (C_i to C_prev, v_i and x_Br,i)."""
        n3 = self.pos3.size
        kl = ku = 0
        for k, off in kernel_offsets:
            r = np.arange(k, n3, 3)
            c = r - off
            ok = (c >= 0) & (c < n3)
            d = self.pos3[r[ok]] - self.pos3[c[ok]]
            if d.size:
                kl = max(kl, int(d.max()))
                ku = max(ku, int(-d.min()))
        act = self.cv >= 0
        if act.any():
            kl = max(kl, int(np.max(self.cb[act] - self.pos3[3 * np.nonzero(act)[0]])))
            has_prev = self.prev >= 0
            if has_prev.any():
                kl = max(kl, int(np.max(self.cv[has_prev] - self.cv[self.prev[has_prev]])))
        self.kl, self.ku = kl, ku

    def sums(self, y_ida) -> tuple[float, float]:
        """(sum over contacts of the last C_V, of the last C_Br) of one IDA state."""
        return float(y_ida[self.cv[self.last]].sum()), float(y_ida[self.cb[self.last]].sum())

    def kernel_state(self, y_ida) -> np.ndarray:
        """The kernel's y float64[3n] (v, x_Br, psi per node) of one IDA state."""
        return y_ida[self.pos3]


def kernel_offsets(prob) -> set[tuple[int, int]]:
    """The (row % 3, row - column) pairs of the kernel Jacobian's structural non-zeros: the band
    of continuum._kernels.assemble evaluated at a randomly perturbed state of prob (a coupling the
    discretisation has is non-zero there with probability one)."""
    rng = np.random.default_rng(12345)
    n = prob.n
    y = prob.y0.copy()
    y[0::3] = np.maximum(y[0::3], 1e-3) * rng.uniform(0.5, 2.0, n)
    y[1::3] = rng.uniform(0.1, 0.9, n) * (1.0 - prob.xref * y[0::3])
    y[2::3] = rng.normal(0.0, 1.0, n)
    ab = np.zeros((2 * K.KL + 1, 3 * n))
    prob.assemble(y, np.zeros(2 * n), 1.0, 1.0, np.empty(3 * n), ab, True, K.KU)
    d, c = np.nonzero(ab)
    r = d - K.KU + c
    return {(int(a), int(b)) for a, b in np.unique(np.stack((r % 3, r - c)), axis=1).T}


@numba.njit(cache=True, error_model="numpy")
def _residual(yi, ypi, pos3, cv, cb, prev, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0,
              tab, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, y3, hist, res3, ab, resi):
    """IDA residual resi of the state yi, yi' = ypi (continuum._kernels.assemble with the time
    derivative y' in place of the BDF history, plus the running source sums)."""
    n = vol.shape[0]
    for k in range(3 * n):
        y3[k] = yi[pos3[k]]
    for i in range(n):
        hist[2 * i] = ypi[pos3[3 * i]]
        hist[2 * i + 1] = ypi[pos3[3 * i + 1]]
    K.assemble(y3, hist, 0.0, 1.0, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0, tab,
               ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, res3, ab, False, K.KU)
    for k in range(3 * n):
        resi[pos3[k]] = res3[k]
    for i in range(n):
        if cv[i] >= 0:
            sv, sb = K.source(y3[3 * i], y3[3 * i + 1], xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on[i],
                              src_fac[i])
            rv = ypi[cv[i]] - src_w[i] * sv
            rb = ypi[cb[i]] - src_w[i] * sb
            if prev[i] >= 0:
                rv -= ypi[cv[prev[i]]]
                rb -= ypi[cb[prev[i]]]
            resi[cv[i]] = rv
            resi[cb[i]] = rb


@numba.njit(cache=True, error_model="numpy")
def _jacobian(yi, cj, pos3, cv, cb, prev, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0,
              tab, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, y3, hist, res3, ab, jj):
    """dF/dy + cj dF/dy' into the band of the dense template jj float64[N, N] (IDA reads only the
    band; the entries written are the same at every call, so jj is never cleared)."""
    n = vol.shape[0]
    n3 = 3 * n
    for k in range(n3):
        y3[k] = yi[pos3[k]]
    for k in range(2 * n):
        hist[k] = 0.0
    K.assemble(y3, hist, 0.0, 1.0, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0, tab,
               ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, res3, ab, True, K.KU)
    for r in range(n3):  # row by row: the writes to the large template stay within a row
        pr = pos3[r]
        for c in range(max(0, r - K.KL), min(n3, r + K.KU + 1)):
            val = ab[K.KU + r - c, c]
            if r == c and r % 3 != 2:
                val += cj * vol[r // 3]
            jj[pr, pos3[c]] = val
    cs = K.CS_STEP
    for i in range(n):
        if cv[i] >= 0:
            v = y3[3 * i]
            b = y3[3 * i + 1]
            jj[cv[i], cv[i]] = cj
            jj[cb[i], cb[i]] = cj
            if prev[i] >= 0:
                jj[cv[i], cv[prev[i]]] = -cj
                jj[cb[i], cb[prev[i]]] = -cj
            for k in range(2):
                s1, s3 = K.source(complex(v, cs if k == 0 else 0.0), complex(b, cs if k == 1 else 0.0), xref,
                                  ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on[i], src_fac[i])
                jj[cv[i], pos3[3 * i + k]] = -src_w[i] * s1.imag / cs
                jj[cb[i], pos3[3 * i + k]] = -src_w[i] * s3.imag / cs


def consistent_initial_state(prob, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(y0, yp0) of IDA's vector: prob.y0 with psi solved from the linear Poisson rows at the
    initial v; y' of v and x_Br from the residual; running sums 0 with y' = the cumulative sources."""
    n = prob.n
    n3 = 3 * n
    y = prob.y0.copy()
    res = np.empty(n3)
    ab = np.zeros((2 * K.KL + 1, n3))
    hist = np.zeros(2 * n)
    prob.assemble(y, hist, 0.0, 1.0, res, ab, True, K.KU)
    # the psi rows involve psi (tridiagonal: offsets -3, 0, +3) and v only: one linear solve
    pr = np.arange(2, n3, 3)
    tri = np.zeros((3, n))
    tri[0, 1:] = ab[K.KU - 3, pr[1:]]
    tri[1] = ab[K.KU, pr]
    tri[2, :-1] = ab[K.KU + 3, pr[:-1]]
    y[pr] -= solve_banded((1, 1), tri, res[pr])
    prob.assemble(y, hist, 0.0, 1.0, res, ab, False, K.KU)
    yp3 = np.zeros(n3)
    vol = prob.mesh.volume_um
    yp3[0::3] = -res[0::3] / vol
    yp3[1::3] = -res[1::3] / vol
    yi = np.zeros(layout.size)
    ypi = np.zeros(layout.size)
    yi[layout.pos3] = y
    ypi[layout.pos3] = yp3
    for i in np.nonzero(layout.cv >= 0)[0]:
        sv, sb = K.source(y[3 * i], y[3 * i + 1], prob.xref, prob.ln_a_br, prob.ln_a_cl, prob.linear_alpha,
                          prob.dEf_kT, prob.rd_on[i], prob.src_fac[i])
        p = layout.prev[i]
        ypi[layout.cv[i]] = prob.src_w[i] * sv + (ypi[layout.cv[p]] if p >= 0 else 0.0)
        ypi[layout.cb[i]] = prob.src_w[i] * sb + (ypi[layout.cb[p]] if p >= 0 else 0.0)
    return yi, ypi


class _Mem:
    """Read access to the IDA memory of a scikit-sundae solver, for the counters scikit-sundae
    1.2 does not report (IDAGetNumSteps, IDAGetNumNonlinSolvIters, ...), through ctypes on the
    SUNDIALS library scikit-sundae loaded.

    The pointer is read from the extension object (its fields in declaration order: the vtable,
    then ``void* mem``, ``SUNContext ctx``) and accepted only if the IDA memory's first field is
    that same context (IDAMemRec starts with ida_sunctx); otherwise ``ok`` is False and nothing
    is called."""

    _lib = None

    def __init__(self, solver):
        import ctypes

        self.ok = False
        inner = getattr(solver, "_IDA__IDA", None)
        lib = self._load()
        if inner is None or lib is None:
            return
        base = id(inner)
        mem = ctypes.c_void_p.from_address(base + 24).value
        ctx = ctypes.c_void_p.from_address(base + 32).value
        if not mem or not ctx or ctypes.c_void_p.from_address(mem).value != ctx:
            return
        self.mem = ctypes.c_void_p(mem)
        self.ok = True

    @classmethod
    def _load(cls):
        import ctypes
        import glob
        import os

        import sksundae

        if cls._lib is None:
            libs = glob.glob(os.path.join(os.path.dirname(sksundae.__file__), "..", "scikit_sundae.libs",
                                          "libsundials_ida*.so*"))
            cls._lib = ctypes.CDLL(libs[0]) if len(libs) == 1 else False
        return cls._lib or None

    def get(self, name) -> int:
        import ctypes

        out = ctypes.c_long()
        flag = getattr(self._lib, "IDAGet" + name)(self.mem, ctypes.byref(out))
        if flag != 0:
            raise RuntimeError(f"IDAGet{name} returned {flag}")
        return int(out.value)


_CACHE: dict = {}


def _solver(key, options):
    """IDA solver for one problem structure (layout, tolerances), reused across runs of the same
    structure in this process: the dense Jacobian template scikit-sundae allocates (N x N, of
    which IDA reads the band) then costs its page faults once, not at every run.  The residual and
    Jacobian read the current problem's arrays from the returned context dict."""
    import sksundae as sun

    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    ctx: dict = {}

    def resfn(t, y, yp, res):
        ctx["res"] += 1
        if t != ctx["t"]:  # a new step attempt (Newton iterations of one attempt share t)
            ctx["t"] = t
            ctx["steps"] += 1
        _residual(y, yp, *ctx["res_args"], res)

    def jacfn(t, y, yp, res, cj, jj):
        ctx["jac"] += 1
        _jacobian(y, cj, *ctx["jac_args"], jj)

    _CACHE.clear()  # one structure at a time (the template is large)
    _CACHE[key] = (sun.ida.IDA(resfn, jacfn=jacfn, **options()), ctx)
    return _CACHE[key]


def _set_madvise_hugepage(enabled: bool) -> bool:
    """numpy's huge-page hint for large allocations; returns the previous setting."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage as setter
    except ImportError:  # pragma: no cover - other numpy layouts
        return enabled
    return bool(setter(enabled))


def integrate(prob, t_out, rtol: float = 1e-3, initial_step_s: float = 1e-8, max_steps: int = 50000):
    """Integrate from t = 0 (state prob.y0) through the increasing output times t_out (s) with
    IDA; returns a continuum.model.Solution (q_v, q_br: the BDF-integrated source totals).

    Tolerances (IDA's local error test, weighted RMS norm): relative rtol and absolute
    ATOL_V_FACTOR rtol on v = x_V/x_ref, 0.1 rtol absolute on x_Br; psi (algebraic, ATOL_PSI)
    is in effect not error-controlled; rtol times the wire length absolute on the running source
    sums.  max_steps: most
    steps per output interval.  t_out[0] may be 0 (the initial state as given).  stats: IDA's
    own counters (read through _Mem): steps (successful steps), newton_iterations,
    residual_evaluations, jacobian_evaluations, error_test_failures, convergence_failures; if
    the IDA memory cannot be reached, steps = step attempts (the distinct times at which the
    residual was evaluated) and newton_iterations = residual_evaluations = residual calls.
    """
    from .model import Solution, SolverError

    t0_wall = time.perf_counter()
    t_out = np.asarray(t_out, dtype=float)
    if t_out.ndim != 1 or np.any(np.diff(t_out) <= 0) or (t_out.size and t_out[0] < 0):
        raise ValueError("output times must be an increasing 1D array of times >= 0")
    n = prob.n
    n3 = 3 * n
    m = prob.mesh
    lay = Layout(prob.src_w, prob.src_fac)
    lay.set_bandwidths(kernel_offsets(prob))
    yi0, ypi0 = consistent_initial_state(prob, lay)
    work = (np.empty(n3), np.empty(2 * n), np.empty(n3))
    ab = np.zeros((2 * K.KL + 1, n3))
    ab_dummy = np.empty((1, 1))
    lay_args = (lay.pos3, lay.cv, lay.cb, lay.prev)
    args = (m.volume_um, m.h_um, prob.src_w, prob.src_fac, prob.vbg, prob.dirichlet, prob.psi_d, prob.kappa,
            prob.xref, prob.d0, prob.tab, prob.ln_a_br, prob.ln_a_cl, prob.linear_alpha, prob.dEf_kT, prob.rd_on)
    atol = np.full(lay.size, rtol * float(m.z_um[-1] - m.z_um[0]))
    atol[lay.pos3[0::3]] = ATOL_V_FACTOR * rtol
    atol[lay.pos3[1::3]] = 0.1 * rtol
    atol[lay.pos3[2::3]] = ATOL_PSI
    # No inequality constraints: scikit-sundae 1.2 fills only the listed components of IDA's
    # constraint vector and leaves the others as malloc returned them (IDA then fails at random
    # with "illegal values"), and shifting psi and the sums to give every component a sign costs
    # the digits the zero-current and conservation properties need.  Newton solved to IDA's
    # tolerance, not to round-off, therefore lets x_Br undershoot behind a fast front (-1e-3 at
    # +4 V/um, rtol 1e-3; -3e-7 at rtol 1e-4).
    key = (lay.size, lay.kl, lay.ku, lay.pos3.tobytes(), lay.prev.tobytes(), atol.tobytes(), float(rtol),
           float(initial_step_s), int(max_steps), MAX_ORDER)
    def options():
        return dict(rtol=rtol, atol=atol, linsolver="band", lband=lay.kl, uband=lay.ku,
                    algebraic_idx=[int(k) for k in lay.pos3[2::3]], first_step=initial_step_s,
                    max_num_steps=max_steps, max_order=MAX_ORDER)

    solver, ctx = _solver(key, options)
    run_ctx = {"res_args": (*lay_args, *args, *work, ab_dummy), "jac_args": (*lay_args, *args, *work, ab),
               "res": 0, "jac": 0, "steps": 0, "t": -1.0}
    ctx.update(run_ctx)
    ys = np.empty((t_out.size, n3))
    q = np.zeros((t_out.size, 2))
    k_out = 0
    mem = None
    while k_out < t_out.size and t_out[k_out] <= 0.0:
        ys[k_out] = prob.y0
        k_out += 1
    if k_out < t_out.size:
        # the first init_step allocates the template, touched only on its band: with transparent
        # huge pages every 2 MB page of it would be zeroed on first touch, so none are requested
        hugepage = _set_madvise_hugepage(False)
        try:
            solver.init_step(0.0, yi0, ypi0)
        finally:
            _set_madvise_hugepage(hugepage)
        mem = _Mem(solver)
    while k_out < t_out.size:
        # IDA steps internally up to the stop time t_out[k_out] and lands on it exactly
        r = solver.step(t_out[k_out], method="normal", tstop=t_out[k_out])
        if not r.success:
            v_last = lay.kernel_state(r.y)[0::3]
            xv_max = float(np.max(v_last)) * prob.xref
            hint = ""
            if xv_max > 0.1:
                hint = (f"; x_V reached {xv_max:.2g} at z = {m.z_um[int(np.argmax(v_last))]:.3g} um: "
                        "vacancies pile up without a sink (electrodes.negative_electrode = 'inert' or "
                        "r_d_form = 'zero'?) and the dilute-vacancy model breaks down")
            raise SolverError(f"IDA failed at t = {float(r.t):.3e} s: {r.message}{hint}")
        ys[k_out] = lay.kernel_state(r.y)
        q[k_out] = lay.sums(r.y)
        k_out += 1
    stats = {"steps": ctx["steps"], "newton_iterations": ctx["res"], "residual_evaluations": ctx["res"],
             "jacobian_evaluations": ctx["jac"], "integrator": "ida", "residual_calls": ctx["res"],
             "jacobian_calls": ctx["jac"]}
    if mem is not None and mem.ok:  # IDA's own counters
        stats.update(steps=mem.get("NumSteps"), newton_iterations=mem.get("NumNonlinSolvIters"),
                     residual_evaluations=mem.get("NumResEvals"), jacobian_evaluations=mem.get("NumJacEvals"),
                     error_test_failures=mem.get("NumErrTestFails"),
                     convergence_failures=mem.get("NumNonlinSolvConvFails"))
    stats["wall_s"] = time.perf_counter() - t0_wall
    return Solution(t_out.copy(), ys, prob.xref * q[:, 0], q[:, 1], stats)
