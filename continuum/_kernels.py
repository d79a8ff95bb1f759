"""numba kernels of the continuum model: face fluxes, electrode sources, residual and banded
Jacobian of one implicit (BDF) step.  Arrays and scalars only; no I/O, no globals.

Nondimensional variables per node i (interleaved as y[3 i + k]):
  k = 0: v = x_V / x_ref         (x_ref = x_V^eq of pure Br)
  k = 1: x_Br                    (site fraction; x_Cl = 1 - x_Br - x_V)
  k = 2: psi = e phi / kT
Lengths in um, times in s.  The halide and vacancy fluxes on face i+1/2 (Onsager form, docs/model.md
section 6, l_ab = reduced table (a, b, d) of y = x_Cl / (x_Br + x_Cl); D0 = z s^2 / 6):

  J_V / x_ref = (D0 M / h) [B(Delta) v_i - B(-Delta) v_{i+1}]       (Scharfetter-Gummel)
      Delta = psi_{i+1} - psi_i - Delta_gamma,  M = l_BrBr + 2 l_BrCl + l_ClCl (per unit c),
      Delta_gamma = sum_b (m_b / M) Delta ln x_b, discretised as
                    [g_Br Delta x_Br + g_Cl Delta x_Cl] / [g_Br x_Br + g_Cl x_Cl]   (face means)
      with m_b = x_b g_b the column sums of l_ab.  At zero current and uniform halide ratio this
      gives exactly x_V,i+1 / x_V,i = exp(-(psi_i+1 - psi_i)) (1 - x_V,i+1)/(1 - x_V,i): the
      discrete Boltzmann profile (B(x) = x / (e^x - 1)).
  J_Br = f J_X - (K / h) (x_Cl,i x_Br,i+1 - x_Br,i x_Cl,i+1),     J_X = -J_V (all halides)
      f = m_Br / M (face mean) is the share of the halide flux carried by Br; the second term is
      the exact rewriting of the interdiffusion part -D0 x_V (det l / M) d ln(x_Br / x_Cl) in an
      exchange form that can never create a negative fraction, with the exponentially fitted
      coefficient K = D_int (P/2) coth(P/2), P = |J_X| h G / (D_int x_h): central (second order)
      when the Peclet number is small, the upwind limit |J_X| h G / 2 when the front is driven
      (keeps x_Br, x_Cl >= 0 behind a moving front, unlike a plain central split of J_X).
Electrode sources (docs/model.md section 7) on the contact cells, weighted by the cell length inside the
contact.  The Jacobian is the exact derivative of this discrete residual (no truncation error):
hand-written derivatives of the face fluxes (face_flux_grad, reverse mode) chained with those of
the node properties (node_props_grad), the sources' from one complex-step evaluation of the
rate law chained by hand (source_grad); all checked against the complex step / finite
differences in the tests; assembled in LAPACK band storage (kl = ku = 5).  A face flux is
computed in three stages (_face_delta, _face_drift, _face_exchange), face by face in the
Jacobian pass and stage by stage over all faces in the residual pass (face_fluxes), with the
same arithmetic.  A Jacobian pass may keep the derivatives of nodes and faces whose arguments
have hardly moved since an earlier pass (assemble, reuse_tol).  The BDF2 step control
(bdf2_begin, bdf2_end, bdf2_advance) is at the end.
"""
from __future__ import annotations

import numba
import numpy as np

from ionwire.structures._jit_cache import configure as _configure_jit_cache

_configure_jit_cache()

from ionwire.structures.electrode_law import rate_law as _rate_law_py  # noqa: E402

#: the electrode rate law of the foundation (structures.electrode_law.rate_law), compiled
rate_law = numba.njit(cache=True, error_model="numpy")(_rate_law_py)

KL = 5
KU = 5
CS_STEP = 1e-30
#: Newton also stops when the corrections contract (ratio below this) and the sum of the
#: corrections still to come at that ratio, size^2 / (prev - size), is below its tolerance
NEWTON_RATE_TEST = 0.5


@numba.njit(cache=True, error_model="numpy")
def _nonneg(x):
    """x or -x, whichever has a non-negative real part (real or complex)."""
    return x if x.real >= 0.0 else -x


@numba.njit(cache=True, error_model="numpy")
def _bernoulli_nonneg(x, e):
    """bernoulli(x) for Re x > -0.1 given e = exp(-x) (used only where Re x >= 0.1): the series
    below |Re x| = 0.1, x e / (1 - e) above."""
    if x.real < 0.1:
        x2 = x * x
        return 1.0 - 0.5 * x + x2 * (1.0 / 12.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 30240.0 - x2 / 1209600.0)))
    return x * e / (1.0 - e)


@numba.njit(cache=True, error_model="numpy")
def bernoulli(x):
    """B(x) = x / (exp(x) - 1) for real or complex x (stable for all real parts)."""
    if x.real <= -0.1:
        return x / (np.exp(x) - 1.0)
    return _bernoulli_nonneg(x, np.exp(-x) if x.real >= 0.1 else 0.0 * x)


@numba.njit(cache=True, error_model="numpy")
def _table(tab, y):
    n = tab.shape[0]
    s = y.real * (n - 1)
    k = int(np.floor(s))
    if k < 0:
        k = 0
    if k > n - 2:
        k = n - 2
    t = y * (n - 1) - k
    a = tab[k, 0] + (tab[k + 1, 0] - tab[k, 0]) * t
    b = tab[k, 1] + (tab[k + 1, 1] - tab[k, 1]) * t
    d = tab[k, 2] + (tab[k + 1, 2] - tab[k, 2]) * t
    return a, b, d


NPROP = 10


@numba.njit(cache=True, error_model="numpy")
def node_props(v, b, xref, tab, out):
    """Per-node quantities of the fluxes, written to out[0:NPROP] (real or complex):
    v, x_Cl, g_Br, g_Cl, M, q = det(l)/(x_Br x_Cl), f = m_Br/M, g_Br/M, g_Cl/M, 1 - x_V."""
    xv = xref * v
    cl = 1.0 - b - xv
    a, bb, d = _table(tab, cl / (1.0 - xv))
    gbr = a + bb * cl
    gcl = d + bb * b
    m = b * gbr + cl * gcl
    out[0] = v
    out[1] = cl
    out[2] = gbr
    out[3] = gcl
    out[4] = m
    out[5] = a * d - bb * bb * b * cl
    out[6] = b * gbr / m
    out[7] = gbr / m
    out[8] = gcl / m
    out[9] = 1.0 - xv


@numba.njit(cache=True, error_model="numpy")
def _face_delta(pi, pj, bi, bj, dpsi, h, d0):
    """The first stage of face_flux: (Delta, c = D0 M / h)."""
    gbr = 0.5 * (pi[2] + pj[2])
    gcl = 0.5 * (pi[3] + pj[3])
    mf = 0.5 * (pi[4] + pj[4])
    dgam = (gbr * (bj - bi) + gcl * (pj[1] - pi[1])) / (gbr * 0.5 * (bi + bj) + gcl * 0.5 * (pi[1] + pj[1]))
    return dpsi - dgam, d0 * mf / h


@numba.njit(cache=True, error_model="numpy")
def _face_drift(pi, pj, delta, e, c, h, xref, d0):
    """The second stage, given e = exp(-|Delta|): (B(Delta), B(-Delta), J_V/x_ref, D_int, a_up)."""
    # B(-x) = B(x) + x: one exponential; B of the non-negative argument is the small, accurate one
    if delta.real >= 0.0:
        bp = _bernoulli_nonneg(delta, e)
        bm = bp + delta
    else:
        bm = _bernoulli_nonneg(-delta, e)
        bp = bm - delta
    vi = pi[0]
    vj = pj[0]
    jv = c * (bp * vi - bm * vj)
    jx = -xref * jv
    dint = d0 * xref * 0.5 * (vi + vj) * 0.5 * (pi[5] + pj[5]) / (0.5 * (pi[4] + pj[4]))
    # G = the largest m_b / (M x_b) of the two nodes, x_h the smaller halide fraction (selected by
    # real part, so the complex step differentiates the selected branch)
    g = pi[7]
    if pj[7].real > g.real:
        g = pj[7]
    if pi[8].real > g.real:
        g = pi[8]
    if pj[8].real > g.real:
        g = pj[8]
    xh = pi[9]
    if pj[9].real < xh.real:
        xh = pj[9]
    if xh.real < 1e-3:
        xh = 1e-3 + 0.0 * xh
    return bp, bm, jv, dint, jx * (h * g / (2.0 * xh))


@numba.njit(cache=True, error_model="numpy")
def _fitted(a_up, dint):
    """Whether the exchange coefficient is exponentially fitted (else the upwind limit)."""
    return dint.real > 1e-280 * abs(a_up.real) and dint.real > 0.0


@numba.njit(cache=True, error_model="numpy")
def _face_exchange(pi, pj, bi, bj, jv, dint, a_up, e, h, xref):
    """The last stage, given e = exp(-|2 a_up / D_int|) where _fitted: (B(|P|), K, J_Br) with
    K = D_int (P/2) coth(P/2), P = 2 a_up / D_int (B(|P|) = 0 in the upwind limit)."""
    if _fitted(a_up, dint):
        q = _nonneg(2.0 * a_up / dint)
        bap = _bernoulli_nonneg(q, e)
        k = dint * (bap + 0.5 * q)
    else:
        bap = 0.0 * a_up
        k = _nonneg(a_up)
    jbr = 0.5 * (pi[6] + pj[6]) * (-xref * jv) - (k / h) * (pi[1] * bj - bi * pj[1])
    return bap, k, jbr


@numba.njit(cache=True, error_model="numpy")
def face_flux(pi, pj, bi, bj, psi_i, psi_j, h, xref, d0):
    """Fluxes on the face between nodes i and j = i+1 from their node_props pi, pj (real or
    complex: the reference of the complex-step tests).

    Returns (J_V/x_ref, J_Br) in um/s (site fractions times um per s; J_V divided by x_ref).
    The assembly computes the same stages (_face_delta, _face_drift, _face_exchange) for all
    faces at once (face_fluxes).
    """
    delta, c = _face_delta(pi, pj, bi, bj, psi_j - psi_i, h, d0)
    bp, bm, jv, dint, a_up = _face_drift(pi, pj, delta, np.exp(-_nonneg(delta)), c, h, xref, d0)
    e = np.exp(-_nonneg(2.0 * a_up / dint)) if _fitted(a_up, dint) else 0.0 * a_up
    _, _, jbr = _face_exchange(pi, pj, bi, bj, jv, dint, a_up, e, h, xref)
    return jv, jbr


#: columns of the re-used derivatives of assemble: jnode (d props / dv, d props / dx_Br, and the
#: v, x_Br they were taken at), jface (d(J_V/x_ref) and d J_Br with respect to v_i, x_Br,i, v_j,
#: x_Br,j, psi_j - psi_i, and the Delta they were taken at)
JN_V, JN_B = 2 * 10, 2 * 10 + 1
JN_COLS = 2 * 10 + 2
JF_DELTA = 10
JF_COLS = 11


def reuse_arrays(n: int):
    """The re-use arrays of assemble for n nodes, holding nothing yet: (jnode, jface, jstats)."""
    return np.empty((n, JN_COLS)), np.empty((n - 1, JF_COLS)), np.zeros(2, dtype=np.int64)


#: rows of the face work array of face_fluxes (float64[FW_ROWS, n - 1])
FW_DELTA, FW_C, FW_E, FW_BP, FW_BM, FW_JV, FW_DINT, FW_AUP, FW_BAP, FW_K, FW_JBR = range(11)
FW_ROWS = 11


@numba.njit(cache=True, error_model="numpy")
def face_fluxes(y, props, h, xref, d0, w):
    """face_flux on every face (J_V/x_ref in w[FW_JV], J_Br in w[FW_JBR]) and the intermediates
    the derivatives need.  The same arithmetic, stage by stage over all faces: a face's chain of
    two exponentials and seven divisions is long, and faces computed in separate short loops
    overlap in the processor (1.7x faster than face by face; bit-identical, tests)."""
    m = props.shape[0] - 1
    for i in range(m):
        w[FW_DELTA, i], w[FW_C, i] = _face_delta(props[i], props[i + 1], y[3 * i + 1], y[3 * i + 4],
                                                 y[3 * i + 5] - y[3 * i + 2], h[i], d0)
    for i in range(m):
        w[FW_E, i] = np.exp(-_nonneg(w[FW_DELTA, i]))
    for i in range(m):
        w[FW_BP, i], w[FW_BM, i], w[FW_JV, i], w[FW_DINT, i], w[FW_AUP, i] = _face_drift(
            props[i], props[i + 1], w[FW_DELTA, i], w[FW_E, i], w[FW_C, i], h[i], xref, d0)
    for i in range(m):
        a_up = w[FW_AUP, i]
        dint = w[FW_DINT, i]
        w[FW_E, i] = np.exp(-_nonneg(2.0 * a_up / dint)) if _fitted(a_up, dint) else 0.0
    for i in range(m):
        w[FW_BAP, i], w[FW_K, i], w[FW_JBR, i] = _face_exchange(
            props[i], props[i + 1], y[3 * i + 1], y[3 * i + 4], w[FW_JV, i], w[FW_DINT, i], w[FW_AUP, i],
            w[FW_E, i], h[i], xref)


@numba.njit(cache=True, error_model="numpy")
def face_flux_direct(vi, vj, bi, bj, psi_i, psi_j, h, xref, d0, tab):
    """face_flux from real primary variables (for tests and diagnostics)."""
    pi = np.empty(NPROP)
    pj = np.empty(NPROP)
    node_props(vi, bi, xref, tab, pi)
    node_props(vj, bj, xref, tab, pj)
    return face_flux(pi, pj, bi, bj, psi_i, psi_j, h, xref, d0)


@numba.njit(cache=True, error_model="numpy")
def source(v, b, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, fac):
    """Electrode source at one contact node (per unit contact length).

    Returns (S_V / x_ref, S_Br) with S in site fractions per s:
    S_V = r_c (1 - x_V) - r_d x_V,  S_Br = -r_c x_Br + r_d x_V x_Br / (x_Br + x_Cl), where
    (r_c, r_d) = rate_law(y, fac, ln_a_br, ln_a_cl, linear_alpha, rd_on, xref, dEf_kT) is the
    foundation's law (structures.electrode_law; its parameters per electrode from
    structures.parameters.electrode_rate_law), y = x_Cl / (1 - x_V), v = x_V / x_ref;
    fac = |E| times the electrode factor; rd_on = 0 switches r_d off at this node.
    """
    xv = xref * v
    cl = 1.0 - b - xv
    y = cl / (1.0 - xv)
    rc, rd = rate_law(y, fac, ln_a_br, ln_a_cl, linear_alpha, rd_on, xref, dEf_kT)
    sv = (rc * (1.0 - xv) - rd * xv) / xref
    sbr = -rc * b + rd * xv * b / (b + cl)
    return sv, sbr


@numba.njit(cache=True, error_model="numpy")
def source_grad(v, b, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, fac):
    """source (real) and its derivatives: (S_V/x_ref, S_Br, dS_V/x_ref / dv, dS_V/x_ref / dx_Br,
    dS_Br / dv, dS_Br / dx_Br).  The rate law depends on the composition y alone, so one
    complex-step evaluation at y + i h gives r_c, r_d and their y-derivatives; the chain through
    y = x_Cl / (1 - x_V) and the rest of source() is written out by hand (checked against the
    complex step of source() in tests/test_continuum_numerics.py)."""
    xv = xref * v
    s = 1.0 - xv
    cl = 1.0 - b - xv
    y = cl / s
    rcc, rdc = rate_law(complex(y, CS_STEP), fac, ln_a_br, ln_a_cl, linear_alpha, rd_on, xref, dEf_kT)
    rc = rcc.real
    rd = rdc.real
    drc = rcc.imag / CS_STEP
    drd = rdc.imag / CS_STEP
    dy_dv = -xref * b / (s * s)
    dy_db = -1.0 / s
    den = b + cl
    sv = (rc * s - rd * xv) / xref
    sbr = -rc * b + rd * xv * b / den
    dsv_dv = (drc * dy_dv * s - rc * xref - drd * dy_dv * xv - rd * xref) / xref
    dsv_db = (drc * dy_db * s - drd * dy_db * xv) / xref
    # den = b + x_Cl = 1 - x_V: d den / dv = -x_ref, d den / dx_Br = 0
    dsbr_dv = -drc * dy_dv * b + (drd * dy_dv * xv + rd * xref) * b / den + rd * xv * b * xref / (den * den)
    dsbr_db = -drc * dy_db * b - rc + (drd * dy_db * xv * b + rd * xv) / den
    return sv, sbr, dsv_dv, dsv_db, dsbr_dv, dsbr_db


@numba.njit(cache=True, error_model="numpy")
def assemble(y, hist, a0, dt, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0, tab,
             ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, res, ab, with_jac, KU, reuse_tol, jnode, jface, jstats):
    """Residual res float64[3n] and (if with_jac) band Jacobian ab float64[11, 3n] of the step

        vol (a0 y + hist) / dt + div J - src = 0   (rows of v = x_V/x_ref and x_Br; unknown u = ln v)
        ab uses LAPACK band layout with the diagonal in row KU (KU = 5 for solve_banded, 10 for
    dgbtrf, which needs KL extra rows).
    Poisson: (psi_{i+1}-psi_i)/h_r - (psi_i-psi_{i-1})/h_l + kappa vol (v - vbg) = 0,
        or psi_i = psi_d[i] where dirichlet[i].
    The Jacobian written to ab EXCLUDES the time-derivative terms (the caller adds the diagonal
    of d[vol (a0 y + hist)/dt]/dy, so one spatial Jacobian can serve several steps).
    hist float64[2n]: (a1 y_n + a2 y_{n-1}) for v and x_Br; dt in s; a0 the BDF leading coefficient.

    Re-use between Jacobian passes: jnode float64[n, JN_COLS] keeps each node's property
    derivatives and the (v, x_Br) they were taken at, jface float64[n - 1, JF_COLS] each face's
    flux derivatives and the Delta they were taken at, jstats int64[2] (whether they are valid,
    face derivatives computed).  With reuse_tol > 0 a node's derivatives are recomputed only if
    its v (relative to max(1, v)) or x_Br moved by more than reuse_tol since they were taken,
    and a face's only if one of its nodes was or its Delta moved by more; reuse_tol <= 0
    recomputes everything (the exact Jacobian).  The residual is always computed afresh.
    """
    n = vol.shape[0]
    res[:] = 0.0
    if with_jac:  # the band rows of the matrix (the KU - KL rows above them are LAPACK's workspace)
        ab[max(0, KU - KL):KU + KL + 1, :] = 0.0
    # time derivative, Poisson charge, sources
    for i in range(n):
        v = y[3 * i]
        b = y[3 * i + 1]
        res[3 * i] += vol[i] * (a0 * v + hist[2 * i]) / dt
        res[3 * i + 1] += vol[i] * (a0 * b + hist[2 * i + 1]) / dt
        if dirichlet[i]:
            res[3 * i + 2] = y[3 * i + 2] - psi_d[i]
            if with_jac:
                ab[KU, 3 * i + 2] = 1.0
        else:
            res[3 * i + 2] += kappa * vol[i] * (v - vbg[i])
            if with_jac:
                ab[KU + 2, 3 * i] += kappa * vol[i]  # d row(3i+2) / d col(3i)
        if src_w[i] > 0.0 and src_fac[i] > 0.0:
            w = src_w[i]
            sv, sbr = source(v, b, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on[i], src_fac[i])
            res[3 * i] -= w * sv
            res[3 * i + 1] -= w * sbr
            if with_jac:
                _, _, dvv, dvb, dbv, dbb = source_grad(v, b, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT,
                                                       rd_on[i], src_fac[i])
                ab[KU, 3 * i] -= w * dvv
                ab[KU - 1, 3 * i + 1] -= w * dvb
                ab[KU + 1, 3 * i] -= w * dbv
                ab[KU, 3 * i + 1] -= w * dbb
    # node properties (with their derivatives for the Jacobian, where they moved)
    props = np.empty((n, NPROP))
    gv = np.empty(23)
    gb = np.empty(23)
    full = reuse_tol <= 0.0 or jstats[0] == 0
    moved = np.ones(n, dtype=np.bool_)
    for i in range(n):
        v = y[3 * i]
        b = y[3 * i + 1]
        if with_jac and (full or abs(v - jnode[i, JN_V]) > reuse_tol * max(1.0, abs(v))
                         or abs(b - jnode[i, JN_B]) > reuse_tol):
            # the properties with their derivatives
            node_props_grad(v, b, xref, tab, props[i], jnode[i, 0:NPROP], jnode[i, NPROP:2 * NPROP])
            jnode[i, JN_V] = v
            jnode[i, JN_B] = b
        else:
            node_props(v, b, xref, tab, props[i])
            moved[i] = False
    dpv = jnode[:, 0:NPROP]
    dpb = jnode[:, NPROP:2 * NPROP]
    # faces: the fluxes of all faces first (face_fluxes), then the divergence and the derivatives
    w = np.empty((FW_ROWS, n - 1))
    face_fluxes(y, props, h, xref, d0, w)
    for i in range(n - 1):
        j = i + 1
        hf = h[i]
        si = y[3 * i + 2]
        sj = y[3 * j + 2]
        jv = w[FW_JV, i]
        jbr = w[FW_JBR, i]
        res[3 * i] += jv
        res[3 * j] -= jv
        res[3 * i + 1] += jbr
        res[3 * j + 1] -= jbr
        if not dirichlet[i]:
            res[3 * i + 2] += (sj - si) / hf
        if not dirichlet[j]:
            res[3 * j + 2] -= (sj - si) / hf
        if with_jac:
            if not dirichlet[i]:
                ab[KU, 3 * i + 2] += -1.0 / hf
                ab[KU + (3 * i + 2) - (3 * j + 2), 3 * j + 2] += 1.0 / hf
            if not dirichlet[j]:
                ab[KU, 3 * j + 2] += -1.0 / hf
                ab[KU + (3 * j + 2) - (3 * i + 2), 3 * i + 2] += 1.0 / hf
            if full or moved[i] or moved[j] or abs(w[FW_DELTA, i] - jface[i, JF_DELTA]) > reuse_tol:
                # exact derivatives: hand-written reverse mode through the face (_face_grad, gv
                # and gb) chained with forward mode through the node properties (node_props_grad)
                _face_grad(props[i], props[j], y[3 * i + 1], y[3 * j + 1], w[FW_DELTA, i], w[FW_C, i], w[FW_BP, i],
                           w[FW_BM, i], jv, w[FW_DINT, i], w[FW_AUP, i], w[FW_BAP, i], w[FW_K, i], hf, xref, d0, gv,
                           gb)
                for m in range(4):
                    node = i if m < 2 else j
                    off = 0 if m < 2 else 10
                    dgi = 0.0
                    dgb = 0.0
                    for q in range(NPROP):
                        dp = dpv[node, q] if (m == 0 or m == 2) else dpb[node, q]
                        dgi += gv[off + q] * dp
                        dgb += gb[off + q] * dp
                    if m == 1:
                        dgi += gv[20]
                        dgb += gb[20]
                    elif m == 3:
                        dgi += gv[21]
                        dgb += gb[21]
                    jface[i, m] = dgi
                    jface[i, 5 + m] = dgb
                jface[i, 4] = gv[22]
                jface[i, 9] = gb[22]
                jface[i, JF_DELTA] = w[FW_DELTA, i]
                jstats[1] += 1
            # the face's derivatives in the band: columns v_i, x_Br,i, v_j, x_Br,j, psi_j (and
            # psi_i, with the opposite sign: the fluxes depend on psi_j - psi_i only)
            for m in range(6):
                col = (3 * i, 3 * i + 1, 3 * j, 3 * j + 1, 3 * j + 2, 3 * i + 2)[m]
                sg = -1.0 if m == 5 else 1.0
                dgi = sg * jface[i, min(m, 4)]
                dgb = sg * jface[i, 5 + min(m, 4)]
                ab[KU + 3 * i - col, col] += dgi
                ab[KU + 3 * j - col, col] -= dgi
                ab[KU + 3 * i + 1 - col, col] += dgb
                ab[KU + 3 * j + 1 - col, col] -= dgb
    if with_jac:
        jstats[0] = 1


@numba.njit(cache=True, error_model="numpy")
def source_totals(y, src_w, src_fac, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on):
    """(integral of S_V, integral of S_Br) over the contacts, site fractions * um / s."""
    tv = 0.0
    tb = 0.0
    for i in range(src_w.shape[0]):
        if src_w[i] > 0.0 and src_fac[i] > 0.0:
            sv, sbr = source(y[3 * i], y[3 * i + 1], xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on[i],
                                src_fac[i])
            tv += src_w[i] * sv * xref
            tb += src_w[i] * sbr
    return tv, tb


@numba.njit(cache=True, error_model="numpy")
def face_currents(y, h, xref, d0, tab):
    """float64[n-1, 2]: (J_V, J_Br) on every face, site fractions * um / s."""
    n = y.shape[0] // 3
    out = np.empty((n - 1, 2))
    props = np.empty((n, NPROP))
    for i in range(n):
        node_props(y[3 * i], y[3 * i + 1], xref, tab, props[i])
    w = np.empty((FW_ROWS, n - 1))
    face_fluxes(y, props, h, xref, d0, w)
    for i in range(n - 1):
        out[i, 0] = w[FW_JV, i] * xref
        out[i, 1] = w[FW_JBR, i]
    return out


@numba.njit(cache=True, error_model="numpy")
def step_predictor(la, ya, lb, yb, lc, yc, out):
    """out = la ya + lb yb + lc yc (the quadratic predictor of a BDF2 step; same arithmetic as
    the numpy expression, without its temporaries)."""
    for k in range(out.size):
        out[k] = la * ya[k] + lb * yb[k] + lc * yc[k]


@numba.njit(cache=True, error_model="numpy")
def step_history(a1, yn, a2, ym, hist):
    """hist = a1 y_n + a2 y_{n-1} on the v and x_Br unknowns (hist[2i], hist[2i+1]); a2 = 0
    ignores ym.  Same arithmetic as the numpy slices."""
    for i in range(hist.size // 2):
        hist[2 * i] = a1 * yn[3 * i]
        hist[2 * i + 1] = a1 * yn[3 * i + 1]
        if a2 != 0.0:
            hist[2 * i] += a2 * ym[3 * i]
            hist[2 * i + 1] += a2 * ym[3 * i + 1]


@numba.njit(cache=True, error_model="numpy")
def step_error(ynew, ypred, c_err, atol_v, atol_b, rtol):
    """The BDF2 local error norm: the largest of c_err |y - y_pred| / (atol + rtol |y|) over the
    v and x_Br unknowns (the Poisson unknowns are algebraic and not controlled)."""
    err = 0.0
    for k in range(0, ynew.size, 3):
        v = ynew[k]
        ev = c_err * abs(v - ypred[k]) / (atol_v + rtol * abs(v))
        b = ynew[k + 1]
        eb = c_err * abs(b - ypred[k + 1]) / (atol_b + rtol * abs(b))
        if ev > err:
            err = ev
        if eb > err:
            err = eb
    return err


@numba.njit(cache=True, error_model="numpy")
def equilibrate_rows(ab, res, kl, ku):
    """Scale every row of the band matrix (LAPACK dgbtrf layout, diagonal in row kl + ku) and of
    res by 1 / (largest |entry| of the row): the vacancy rows span many orders of magnitude where
    the vacancies are depleted, and unscaled pivoting then loses accuracy.  The band rows are
    walked in storage order (contiguous), matrix row r = column + offset of the band row."""
    n = ab.shape[1]
    dg = kl + ku
    rowmax = np.zeros(n)
    for i in range(kl, dg + kl + 1):
        off = i - dg
        for c in range(max(0, -off), min(n, n - off)):
            a = abs(ab[i, c])
            if a > rowmax[c + off]:
                rowmax[c + off] = a
    for r in range(n):
        if rowmax[r] > 0.0:
            rowmax[r] = 1.0 / rowmax[r]
            res[r] *= rowmax[r]
        else:
            rowmax[r] = 1.0
    for i in range(kl, dg + kl + 1):
        off = i - dg
        for c in range(max(0, -off), min(n, n - off)):
            ab[i, c] *= rowmax[c + off]


@numba.njit(cache=True, error_model="numpy")
def _inv3(m, out):
    """out = inverse of the 3x3 matrix m (adjugate / determinant); returns the determinant."""
    a, b, c = m[0, 0], m[0, 1], m[0, 2]
    d, e, f = m[1, 0], m[1, 1], m[1, 2]
    g, h, k = m[2, 0], m[2, 1], m[2, 2]
    c00 = e * k - f * h
    c01 = -(d * k - f * g)
    c02 = d * h - e * g
    det = a * c00 + b * c01 + c * c02
    s = 1.0 / det
    out[0, 0] = c00 * s
    out[1, 0] = c01 * s
    out[2, 0] = c02 * s
    out[0, 1] = -(b * k - c * h) * s
    out[1, 1] = (a * k - c * g) * s
    out[2, 1] = -(a * h - b * g) * s
    out[0, 2] = (b * f - c * e) * s
    out[1, 2] = -(a * f - c * d) * s
    out[2, 2] = (a * e - b * d) * s
    return det


@numba.njit(cache=True, error_model="numpy")
def block_factor(ab, dg, low, dinv, up, vol, bdf_a0, dt):
    """Block-tridiagonal LU (3x3 blocks, one block row per node) of the band matrix ab (LAPACK
    layout, diagonal in row dg) plus the time-derivative diagonal vol bdf_a0 / dt on the v and
    x_Br rows (bdf_a0 = 0 adds nothing; ab is not changed).  Fills low[i] = A_i D_{i-1},
    dinv[i] = (B_i - low[i] C_{i-1})^-1 and up[i] = C_i (float64[n, 3, 3] each).  Returns False
    if a pivot block is singular.  No pivoting between blocks (a singular pivot block falls back
    to LAPACK with pivoting); within a block the inverse is the adjugate over the determinant.  A
    scaling S of the rows of a block row changes the factors to S L S^-1 and S U and nothing
    else, so the rows need no equilibration here.  An order of magnitude faster than LAPACK's
    general band solver."""
    n = low.shape[0]
    blk = np.empty((3, 3))
    for i in range(n):
        for r in range(3):
            row = 3 * i + r
            for q in range(3):
                blk[r, q] = ab[dg + row - (3 * i + q), 3 * i + q]
                up[i, r, q] = ab[dg + row - (3 * i + 3 + q), 3 * i + 3 + q] if i < n - 1 else 0.0
        if bdf_a0 != 0.0:
            blk[0, 0] += vol[i] * bdf_a0 / dt
            blk[1, 1] += vol[i] * bdf_a0 / dt
        if i > 0:
            # low = A_i D_{i-1}
            for r in range(3):
                row = 3 * i + r
                a0 = ab[dg + row - (3 * i - 3), 3 * i - 3]
                a1 = ab[dg + row - (3 * i - 2), 3 * i - 2]
                a2 = ab[dg + row - (3 * i - 1), 3 * i - 1]
                for q in range(3):
                    low[i, r, q] = a0 * dinv[i - 1, 0, q] + a1 * dinv[i - 1, 1, q] + a2 * dinv[i - 1, 2, q]
            for r in range(3):
                for q in range(3):
                    blk[r, q] -= (low[i, r, 0] * up[i - 1, 0, q] + low[i, r, 1] * up[i - 1, 1, q]
                                  + low[i, r, 2] * up[i - 1, 2, q])
        det = _inv3(blk, dinv[i])
        if not np.isfinite(det) or det == 0.0:
            return False
    return True


@numba.njit(cache=True, error_model="numpy")
def block_solve(low, dinv, up, rhs, x):
    """x = A^-1 rhs with the factors of block_factor."""
    n = low.shape[0]
    y = np.empty(3 * n)
    for r in range(3):
        y[r] = rhs[r]
    for i in range(1, n):
        for r in range(3):
            y[3 * i + r] = rhs[3 * i + r] - (low[i, r, 0] * y[3 * i - 3] + low[i, r, 1] * y[3 * i - 2]
                                             + low[i, r, 2] * y[3 * i - 1])
    for i in range(n - 1, -1, -1):
        t0 = y[3 * i]
        t1 = y[3 * i + 1]
        t2 = y[3 * i + 2]
        if i < n - 1:
            t0 -= up[i, 0, 0] * x[3 * i + 3] + up[i, 0, 1] * x[3 * i + 4] + up[i, 0, 2] * x[3 * i + 5]
            t1 -= up[i, 1, 0] * x[3 * i + 3] + up[i, 1, 1] * x[3 * i + 4] + up[i, 1, 2] * x[3 * i + 5]
            t2 -= up[i, 2, 0] * x[3 * i + 3] + up[i, 2, 1] * x[3 * i + 4] + up[i, 2, 2] * x[3 * i + 5]
        for r in range(3):
            x[3 * i + r] = dinv[i, r, 0] * t0 + dinv[i, r, 1] * t1 + dinv[i, r, 2] * t2


@numba.njit(cache=True, error_model="numpy")
def dbernoulli_of(x, b):
    """dB/dx for real x, given b = bernoulli(x) (B(x) = x / (e^x - 1); no second exponential)."""
    if abs(x) < 0.1:
        x2 = x * x
        return -0.5 + x * (1.0 / 6.0 - x2 * (1.0 / 180.0 - x2 * (1.0 / 5040.0 - x2 / 151200.0)))
    return b * (1.0 - b) / x - b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _face_grad(pi, pj, bi, bj, delta, c, bp, bm, jv, dint, a_up, bap, k, h, xref, d0, out_v, out_b):
    """The derivatives of face_flux_grad from the stages' results (real)."""
    vi = pi[0]
    vj = pj[0]
    cli = pi[1]
    clj = pj[1]
    gbr = 0.5 * (pi[2] + pj[2])
    gcl = 0.5 * (pi[3] + pj[3])
    mf = 0.5 * (pi[4] + pj[4])
    num = gbr * (bj - bi) + gcl * (clj - cli)
    den = 0.5 * gbr * (bi + bj) + 0.5 * gcl * (cli + clj)
    if delta >= 0.0:
        dbp = dbernoulli_of(delta, bp)
        dbm = dbp + 1.0
    else:
        dbm = -dbernoulli_of(-delta, bm)
        dbp = dbm - 1.0
    jx = -xref * jv
    ff = 0.5 * (pi[6] + pj[6])
    qf = 0.5 * (pi[5] + pj[5])
    vs = 0.5 * (vi + vj)
    # selections (as in _face_drift)
    gsel = 0
    g = pi[7]
    if pj[7] > g:
        g = pj[7]
        gsel = 1
    if pi[8] > g:
        g = pi[8]
        gsel = 2
    if pj[8] > g:
        g = pj[8]
        gsel = 3
    xsel = 0
    xh = pi[9]
    if pj[9] < xh:
        xh = pj[9]
        xsel = 1
    if xh < 1e-3:
        xh = 1e-3
        xsel = 2
    if _fitted(a_up, dint):
        p = 2.0 * a_up / dint
        ap = abs(p)
        phi = bap + 0.5 * ap
        dphi = (dbernoulli_of(ap, bap) + 0.5) * (1.0 if p >= 0.0 else -1.0)
        dk_da = 2.0 * dphi
        dk_dd = phi - p * dphi
    else:
        dk_da = 1.0 if a_up >= 0.0 else -1.0
        dk_dd = 0.0
    x_ex = cli * bj - bi * clj
    # the reverse pass (reciprocals computed once)
    ih = 1.0 / h
    ixh = 1.0 / xh
    imf = 1.0 / mf
    iden = 1.0 / den
    for o in range(2):
        out = out_v if o == 0 else out_b
        for q in range(23):
            out[q] = 0.0
        if o == 0:
            a_jv = 1.0
        else:
            # J_Br = ff jx - (k/h) X
            out[6] += 0.5 * jx
            out[16] += 0.5 * jx
            a_k = -x_ex * ih
            a_x = -k * ih
            out[1] += a_x * bj
            out[21] += a_x * cli
            out[20] += -a_x * clj
            out[11] += -a_x * bi
            a_aup = a_k * dk_da
            a_dint = a_k * dk_dd
            # a_up = jx h g / (2 xh)
            a_jx = ff + a_aup * (h * g * 0.5 * ixh)
            a_g = a_aup * jx * h * 0.5 * ixh
            out[(7, 17, 8, 18)[gsel]] += a_g
            if xsel < 2:
                out[(9, 19)[xsel]] += -a_aup * a_up * ixh
            # dint = d0 xref vs qf / mf
            t = a_dint * d0 * xref * imf
            out[0] += 0.5 * t * qf
            out[10] += 0.5 * t * qf
            out[5] += 0.5 * t * vs
            out[15] += 0.5 * t * vs
            out[4] += -0.5 * a_dint * dint * imf
            out[14] += -0.5 * a_dint * dint * imf
            a_jv = -xref * a_jx
        # jv = c (bp vi - bm vj), c = d0 mf / h
        a_c = a_jv * (bp * vi - bm * vj)
        out[4] += 0.5 * a_c * d0 * ih
        out[14] += 0.5 * a_c * d0 * ih
        out[0] += a_jv * c * bp
        out[10] += -a_jv * c * bm
        a_delta = a_jv * c * (dbp * vi - dbm * vj)
        out[22] += a_delta
        a_num = -a_delta * iden
        a_den = a_delta * num * iden * iden
        a_gbr = a_num * (bj - bi) + a_den * 0.5 * (bi + bj)
        a_gcl = a_num * (clj - cli) + a_den * 0.5 * (cli + clj)
        out[21] += a_num * gbr + a_den * 0.5 * gbr
        out[20] += -a_num * gbr + a_den * 0.5 * gbr
        out[11] += a_num * gcl + a_den * 0.5 * gcl
        out[1] += -a_num * gcl + a_den * 0.5 * gcl
        out[2] += 0.5 * a_gbr
        out[12] += 0.5 * a_gbr
        out[3] += 0.5 * a_gcl
        out[13] += 0.5 * a_gcl


@numba.njit(cache=True, error_model="numpy")
def face_flux_grad(pi, pj, bi, bj, dpsi, h, xref, d0, out_v, out_b):
    """face_flux (real) and the partial derivatives of its two outputs (J_V/x_ref, J_Br) with
    respect to the node properties (out_*[0:10] node i, [10:20] node j), x_Br,i ([20]),
    x_Br,j ([21]) and psi_j - psi_i ([22]) -- reverse-mode differentiation written out by hand
    (checked against the complex-step derivative in tests/test_continuum_numerics.py).
    out_v receives d(J_V/x_ref), out_b d(J_Br).  Returns (J_V/x_ref, J_Br).  The stages and
    _face_grad are those of the assembly."""
    delta, c = _face_delta(pi, pj, bi, bj, dpsi, h, d0)
    bp, bm, jv, dint, a_up = _face_drift(pi, pj, delta, np.exp(-_nonneg(delta)), c, h, xref, d0)
    e = np.exp(-_nonneg(2.0 * a_up / dint)) if _fitted(a_up, dint) else 0.0
    bap, k, jbr = _face_exchange(pi, pj, bi, bj, jv, dint, a_up, e, h, xref)
    _face_grad(pi, pj, bi, bj, delta, c, bp, bm, jv, dint, a_up, bap, k, h, xref, d0, out_v, out_b)
    return jv, jbr


@numba.njit(cache=True, error_model="numpy")
def _node_props_derivatives(b, cl, sv, xref, n, sa, sb, sd, a, bb, d, gbr, gcl, m, f, dv, db):
    """The derivative part of node_props_grad from the intermediates of its values (one
    reciprocal of M and of 1 - x_V instead of 18 divisions)."""
    im = 1.0 / m
    isv = 1.0 / sv
    for w in range(2):
        o = dv if w == 0 else db
        if w == 0:
            dcl = -xref
            dbv = 0.0
            dy = -xref * b * isv * isv
            dsv = -xref
            dvv = 1.0
        else:
            dcl = -1.0
            dbv = 1.0
            dy = -isv
            dsv = 0.0
            dvv = 0.0
        da = sa * (n - 1) * dy
        dbb = sb * (n - 1) * dy
        dd = sd * (n - 1) * dy
        dgbr = da + dbb * cl + bb * dcl
        dgcl = dd + dbb * b + bb * dbv
        dm = dbv * gbr + b * dgbr + dcl * gcl + cl * dgcl
        o[0] = dvv
        o[1] = dcl
        o[2] = dgbr
        o[3] = dgcl
        o[4] = dm
        o[5] = da * d + a * dd - 2.0 * bb * dbb * b * cl - bb * bb * (dbv * cl + b * dcl)
        o[6] = ((dbv * gbr + b * dgbr) - f * dm) * im
        o[7] = (dgbr - gbr * im * dm) * im
        o[8] = (dgcl - gcl * im * dm) * im
        o[9] = dsv


@numba.njit(cache=True, error_model="numpy")
def node_props_grad(v, b, xref, tab, out, dv, db):
    """node_props (real) and their derivatives with respect to v (dv) and x_Br (db)."""
    n = tab.shape[0]
    xv = xref * v
    sv = 1.0 - xv
    cl = 1.0 - b - xv
    y = cl / sv
    k = int(np.floor(y * (n - 1)))
    if k < 0:
        k = 0
    if k > n - 2:
        k = n - 2
    t = y * (n - 1) - k
    sa = (tab[k + 1, 0] - tab[k, 0])
    sb = (tab[k + 1, 1] - tab[k, 1])
    sd = (tab[k + 1, 2] - tab[k, 2])
    a = tab[k, 0] + sa * t
    bb = tab[k, 1] + sb * t
    d = tab[k, 2] + sd * t
    gbr = a + bb * cl
    gcl = d + bb * b
    m = b * gbr + cl * gcl
    q = a * d - bb * bb * b * cl
    f = b * gbr / m
    out[0] = v
    out[1] = cl
    out[2] = gbr
    out[3] = gcl
    out[4] = m
    out[5] = q
    out[6] = f
    out[7] = gbr / m
    out[8] = gcl / m
    out[9] = sv
    _node_props_derivatives(b, cl, sv, xref, n, sa, sb, sd, a, bb, d, gbr, gcl, m, f, dv, db)


# --------------------------------------------------------------------------------------------
# the variable-step BDF2 step control (continuum.model.integrate drives it)
# --------------------------------------------------------------------------------------------
#: integer state of the stepper (int64 array ist): the next output, accepted steps, rejected
#: attempts, history points stored (the newest in slot (NACC - 1) % 3), whether the attempt
#: lands on the output
IS_KOUT, IS_STEPS, IS_REJECTED, IS_NACC, IS_LAND = range(5)
#: float state (float64 array fst): time, step size, the attempt's step and end time, its BDF
#: coefficients
FS_T, FS_DT, FS_DT_TRY, FS_TN, FS_A0, FS_A1, FS_A2 = range(7)
#: what bdf2_advance returns
ADV_DONE, ADV_PAUSED, ADV_FALLBACK, ADV_MAX_STEPS, ADV_UNDERFLOW = range(5)


@numba.njit(cache=True, error_model="numpy")
def bdf2_begin(ist, fst, th, yh, t_out, ypred, ynew, hist, max_steps):
    """Set up the next attempt: its step (landing exactly on the next output time when within
    5 %), the BDF2 coefficients (backward Euler for the first step), the quadratic predictor
    ypred through the last three accepted points (linear, constant with fewer), hist = a1 y_n +
    a2 y_{n-1} and ynew = ypred.  Returns ADV_MAX_STEPS / ADV_UNDERFLOW if the integration
    cannot go on, else 0."""
    t = fst[FS_T]
    dt = fst[FS_DT]
    if ist[IS_STEPS] > max_steps:
        return ADV_MAX_STEPS
    if dt < 1e-14 * max(1.0, t):
        return ADV_UNDERFLOW
    t_target = t_out[ist[IS_KOUT]]
    if t + dt >= t_target * (1 - 1e-12) or t + 1.05 * dt > t_target:
        dt_try = t_target - t
        ist[IS_LAND] = 1
    else:
        dt_try = dt
        ist[IS_LAND] = 0
    nacc = ist[IS_NACC]
    sn = (nacc - 1) % 3  # newest accepted point
    sp = (nacc - 2) % 3  # the one before
    so = (nacc - 3) % 3  # and the one before that
    if nacc < 2:
        a0, a1, a2 = 1.0, -1.0, 0.0
    else:
        w = dt_try / (th[sn] - th[sp])
        a0, a1, a2 = (1 + 2 * w) / (1 + w), -(1 + w), w * w / (1 + w)
    tn = t + dt_try
    if nacc >= 3:
        ta, tb, tc = th[so], th[sp], th[sn]
        la = (tn - tb) * (tn - tc) / ((ta - tb) * (ta - tc))
        lb = (tn - ta) * (tn - tc) / ((tb - ta) * (tb - tc))
        lc = (tn - ta) * (tn - tb) / ((tc - ta) * (tc - tb))
        step_predictor(la, yh[so], lb, yh[sp], lc, yh[sn], ypred)
    elif nacc == 2:
        tb, tc = th[sp], th[sn]
        for k in range(ypred.size):
            ypred[k] = yh[sn, k] + (yh[sn, k] - yh[sp, k]) * (tn - tc) / (tc - tb)
    else:
        ypred[:] = yh[sn]
    step_history(a1, yh[sn], a2, yh[sp] if a2 != 0.0 else yh[sn], hist)
    ynew[:] = ypred
    fst[FS_DT_TRY] = dt_try
    fst[FS_TN] = tn
    fst[FS_A0] = a0
    fst[FS_A1] = a1
    fst[FS_A2] = a2
    return 0


@numba.njit(cache=True, error_model="numpy")
def bdf2_end(converged, ist, fst, th, yh, qh, ypred, ynew, ys_out, qv_out, qb_out, rtol, atol_v, atol_b,
             src_w, src_fac, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on):
    """Finish an attempt whose Newton iteration ended (converged or not): reject it (a quarter
    of the step after a Newton failure; 0.9 err^(-1/3), at least 0.2, after a failed error
    test) or accept it: store it in the history, integrate the source totals with the same BDF
    formula (qh), write the output if it landed, and choose the next step (at most 2x)."""
    dt = fst[FS_DT]
    dt_try = fst[FS_DT_TRY]
    if not converged:
        ist[IS_REJECTED] += 1
        fst[FS_DT] = 0.25 * dt_try
        return
    nacc = ist[IS_NACC]
    if nacc >= 2:
        c_err = 2.0 / 11.0 if nacc >= 3 else 0.5
        err = step_error(ynew, ypred, c_err, atol_v, atol_b, rtol)
    else:
        err = 0.0
    if err > 1.0:
        ist[IS_REJECTED] += 1
        fst[FS_DT] = dt_try * max(0.2, 0.9 * err ** (-1.0 / 3.0))
        return
    ist[IS_STEPS] += 1
    a0 = fst[FS_A0]
    a1 = fst[FS_A1]
    a2 = fst[FS_A2]
    sv, sb = source_totals(ynew, src_w, src_fac, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on)
    sn = (nacc - 1) % 3
    sp = (nacc - 2) % 3
    if a2 != 0.0:
        qv = (dt_try * sv - a1 * qh[sn, 0] - a2 * qh[sp, 0]) / a0
        qb = (dt_try * sb - a1 * qh[sn, 1] - a2 * qh[sp, 1]) / a0
    else:
        qv = (dt_try * sv - a1 * qh[sn, 0]) / a0
        qb = (dt_try * sb - a1 * qh[sn, 1]) / a0
    slot = nacc % 3
    th[slot] = fst[FS_TN]
    yh[slot, :] = ynew
    qh[slot, 0] = qv
    qh[slot, 1] = qb
    ist[IS_NACC] = nacc + 1
    fst[FS_T] = fst[FS_TN]
    fac = 2.0 if err == 0.0 else min(2.0, max(0.2, 0.9 * err ** (-1.0 / 3.0)))
    if ist[IS_LAND]:
        k = ist[IS_KOUT]
        ys_out[k, :] = ynew
        qv_out[k] = qv
        qb_out[k] = qb
        ist[IS_KOUT] = k + 1
        fst[FS_DT] = max(dt, dt_try * fac) if dt_try < dt else dt_try * fac
    else:
        fst[FS_DT] = dt_try * fac


@numba.njit(cache=True, error_model="numpy")
def bdf2_advance(resume, pause, max_steps, ist, fst, th, yh, qh, t_out, ypred, ynew, hist, ys_out, qv_out,
                 qb_out, rtol, atol_v, atol_b, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0,
                 tab, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, res, ab, spatial, low, dinv, up, dy,
                 y_start, max_iter, tol, refresh_ratio, counts, reuse_tol, jnode, jface, jstats):
    """Integrate until every output time is reached (ADV_DONE), in one compiled call.

    Every attempt: bdf2_begin, the Newton iteration below, bdf2_end.  resume: the attempt was
    begun by an earlier call (start at its Newton iteration).  pause: return ADV_PAUSED after
    every bdf2_begin, before the Newton iteration, so that the caller can set a time-dependent
    bias for the attempt's end time fst[FS_TN] (then call again with resume).  ADV_FALLBACK: a
    pivot block was singular; ynew is back at the predictor and the caller solves this attempt
    with pivoting (continuum.model._newton, the same decisions), ends it with bdf2_end and calls
    again.  ADV_MAX_STEPS, ADV_UNDERFLOW: from bdf2_begin.  counts int64[2] accumulates Newton
    iterations and Jacobian evaluations as the iteration goes, so it is right even when the
    residual raises (a diverging complex-step iterate).

    The Newton iteration of an attempt: simplified Newton from the predictor on the spatial band
    Jacobian evaluated there (re-using node and face derivatives that moved by less than
    reuse_tol, assemble) plus the time-derivative diagonal, factorised by block elimination;
    evaluated again, exactly, when a correction is more than refresh_ratio of the one before.  It
    stops when the last correction is below tol (v relative to max(1, v), and psi; 1e-3 tol on
    x_Br), or when the corrections still to come at the present contraction rate sum to less
    (NEWTON_RATE_TEST); it fails on a non-finite correction, x_Br beyond 2 or x_V beyond 1/2,
    or after max_iter iterations."""
    n3 = ynew.size
    dg = KL + KU
    while ist[IS_KOUT] < t_out.size:
        if not resume:
            code = bdf2_begin(ist, fst, th, yh, t_out, ypred, ynew, hist, max_steps)
            if code != 0:
                return code
            if pause:
                return ADV_PAUSED
        resume = False
        a0 = fst[FS_A0]
        dt = fst[FS_DT_TRY]
        for k in range(n3):
            y_start[k] = ynew[k]
        prev = np.inf
        jac_valid = False
        have_lu = False
        counts_at_start = counts[1]
        status = 0  # unless it converges within max_iter
        for it in range(max_iter):
            counts[0] += 1
            # one call site of assemble (compiled into this function once): with the Jacobian
            # into spatial (re-using derivatives on the attempt's first evaluation), or the
            # residual alone
            with_jac = not jac_valid
            assemble(ynew, hist, a0, dt, vol, h, src_w, src_fac, vbg, dirichlet, psi_d, kappa, xref, d0, tab,
                     ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on, res, spatial if with_jac else ab, with_jac, dg,
                     reuse_tol if counts_at_start == counts[1] else 0.0, jnode, jface, jstats)
            if with_jac:
                jac_valid = True
                counts[1] += 1
                have_lu = False
            if not have_lu:
                # the matrix: the spatial Jacobian plus the time-derivative diagonal, added in the
                # factorisation; no row equilibration: block elimination is invariant under a
                # scaling of the rows of a block row (L -> S L S^-1, U -> S U), so it would only
                # add rounding; the LAPACK fallback, which pivots, equilibrates (model._newton)
                if not block_factor(spatial, dg, low, dinv, up, vol, a0, dt):
                    status = -1
                    break
                have_lu = True
            for k in range(n3):
                res[k] = -res[k]
            block_solve(low, dinv, up, res, dy)
            finite = True
            for k in range(n3):
                if not np.isfinite(dy[k]):
                    finite = False
            if not finite:
                break
            du = 0.0
            db = 0.0
            dp = 0.0
            for k in range(0, n3, 3):
                du = max(du, abs(dy[k]) / max(1.0, abs(ynew[k])))
                db = max(db, abs(dy[k + 1]))
                dp = max(dp, abs(dy[k + 2]))
            big_b = 0.0
            big_v = 0.0
            for k in range(0, n3, 3):
                ynew[k] += dy[k]
                ynew[k + 1] += dy[k + 1]
                ynew[k + 2] += dy[k + 2]
                big_v = max(big_v, abs(ynew[k]))
                big_b = max(big_b, abs(ynew[k + 1]))
            if big_b > 2.0 or big_v * xref > 0.5:
                break  # diverging
            size = max(du, db * 1e3, dp)
            if du < tol and db < 1e-3 * tol and dp < tol:
                status = 1
                break
            if it > 0 and size < NEWTON_RATE_TEST * prev and size * size / (prev - size) < tol:
                status = 1  # what a contraction at this rate has left to correct is below tol
                break
            if it > 0 and size > refresh_ratio * prev:
                jac_valid = False  # slow contraction: evaluate the Jacobian again, here
            prev = size
        if status == -1:
            ynew[:] = y_start
            return ADV_FALLBACK
        bdf2_end(status == 1, ist, fst, th, yh, qh, ypred, ynew, ys_out, qv_out, qb_out, rtol, atol_v, atol_b,
                 src_w, src_fac, xref, ln_a_br, ln_a_cl, linear_alpha, dEf_kT, rd_on)
    return ADV_DONE
