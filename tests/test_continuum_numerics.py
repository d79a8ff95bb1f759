"""Numerics of the continuum model against exact results."""
import math

import numpy as np
import pytest
from scipy.special import erfc

from ionwire.continuum import _kernels as K
from ionwire.continuum.mesh import Mesh, graded_mesh
from ionwire.continuum.model import Numerics, Problem, integrate, scales, simulate_wire, wire_problem
from ionwire.continuum.observables import front_position_um, migration_lengths_um
from ionwire.structures.parameters import DeviceParameters, from_mapping
from ionwire.continuum.transport import maa_table
from ionwire.structures.units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, site_density_per_m3

F0 = 0.69


def _uniform_problem(z, x_br, v, w_br=6.3e8, w_cl=6.3e8, dirichlet_nodes=(0,), psi=(0.0,), params=None):
    """A bare Problem on nodes z: no electrodes, background = initial v."""
    p = params or DeviceParameters()
    sc = scales(p)
    mesh = Mesh.from_nodes(z)
    n = mesh.n
    y0 = np.zeros(3 * n)
    y0[0::3] = v
    y0[1::3] = x_br
    dirichlet = np.zeros(n, dtype=np.bool_)
    psi_d = np.zeros(n)
    for i, s in zip(dirichlet_nodes, psi):
        dirichlet[i] = True
        psi_d[i] = s
        y0[3 * i + 2] = s
    return Problem(mesh=mesh, y0=y0, vbg=np.asarray(v, dtype=float).copy() * np.ones(n), dirichlet=dirichlet,
                   psi_d=psi_d, src_w=np.zeros(n), src_fac=np.zeros(n), kappa=sc["kappa_per_um2"],
                   xref=sc["xref"], d0=sc["d0_um2"], tab=np.ascontiguousarray(maa_table(w_br, w_cl, F0).abd_per_s),
                   thermal_voltage_V=sc["thermal_voltage_V"])


def test_poisson_operator_sign_and_exact_quadratic():
    """A uniform positive excess charge between grounded ends gives psi = kappa dv z (L - z) / 2 > 0
    (d^2 psi/dz^2 = -rho/eps: a positive charge is a potential maximum).  The 3-point FV operator is
    exact for a quadratic on a uniform mesh."""
    z = np.linspace(0.0, 2.0, 41)
    n = z.size
    prob = _uniform_problem(z, np.full(n, 0.5), np.ones(n), dirichlet_nodes=(0, n - 1), psi=(0.0, 0.0))
    prob.vbg = np.full(n, 0.8)  # background smaller than the vacancies: net positive charge
    y = prob.y0.copy()
    res = np.empty(3 * n)
    ab = np.zeros((2 * K.KL + K.KU + 1, 3 * n))
    hist = np.zeros(2 * n)
    prob.assemble(y, hist, 1.0, 1.0, res, ab, True, K.KL + K.KU)
    # the Poisson rows are linear in psi: one Newton step on them alone solves them
    rows = np.arange(2, 3 * n, 3)
    a = np.zeros((n, n))
    for r_i, r in enumerate(rows):
        for c_i, c in enumerate(rows):
            if abs(r - c) <= K.KL:
                a[r_i, c_i] = ab[K.KL + K.KU + r - c, c]
    psi = np.linalg.solve(a, -res[rows])
    exact = prob.kappa * 0.2 * z * (z[-1] - z) / 2.0
    assert np.all(psi[1:-1] > 0)
    np.testing.assert_allclose(psi, exact, rtol=1e-10, atol=1e-12)
    # the diagonal of the discrete Laplacian is negative (operator negative definite)
    assert np.all(np.diag(a)[1:-1] < 0)


def test_staged_face_fluxes_equal_face_flux_and_both_residual_passes_agree():
    """face_fluxes (all faces, stage by stage: what the assembly uses) gives bit for bit the
    fluxes of face_flux face by face, and the residual of the Jacobian pass (face_flux_grad) is
    bit for bit that of the residual pass, on a driven wire and on random states (both signs of
    the potential step, small and large, vacancy-rich and depleted nodes)."""
    p = DeviceParameters()
    prob = wire_problem(p, 4.0, Numerics(n_nodes=200))
    sol = integrate(prob, np.array([0.0, 1e-3, 600.0]))
    rng = np.random.default_rng(3)
    n = prob.n
    states = [sol.y[-1].copy()]
    for trial in range(4):
        y = np.empty(3 * n)
        y[0::3] = rng.uniform(0.0, 80.0, n) * (rng.random(n) < 0.8)
        y[1::3] = rng.uniform(0.0, 1.0, n) * (1 - prob.xref * y[0::3])
        y[1::3][rng.random(n) < 0.2] = 0.0
        y[2::3] = np.cumsum(rng.normal(0.0, 0.05 if trial % 2 else 20.0, n))
        states.append(y)
    for y in states:
        props = np.empty((n, K.NPROP))
        for i in range(n):
            K.node_props(y[3 * i], y[3 * i + 1], prob.xref, prob.tab, props[i])
        w = np.empty((K.FW_ROWS, n - 1))
        K.face_fluxes(y, props, prob.mesh.h_um, prob.xref, prob.d0, w)
        ref = np.array([K.face_flux(props[i], props[i + 1], y[3 * i + 1], y[3 * i + 4], y[3 * i + 2], y[3 * i + 5],
                                    prob.mesh.h_um[i], prob.xref, prob.d0) for i in range(n - 1)])
        assert np.array_equal(w[K.FW_JV], ref[:, 0]) and np.array_equal(w[K.FW_JBR], ref[:, 1])
        hist = -y.reshape(n, 3)[:, :2].ravel()
        r_jac, r_res = np.empty(3 * n), np.empty(3 * n)
        ab = np.zeros((2 * K.KL + K.KU + 1, 3 * n))
        prob.assemble(y, hist, 1.5, 10.0, r_jac, ab, True, K.KL + K.KU)
        prob.assemble(y, hist, 1.5, 10.0, r_res, ab, False, K.KL + K.KU)
        assert np.array_equal(r_jac, r_res)


def _assemble_reusing(prob, y, reuse_tol, store):
    """K.assemble with the re-use arrays ``store`` (jnode, jface, jstats): (res, band)."""
    n3 = y.size
    res = np.empty(n3)
    ab = np.zeros((2 * K.KL + K.KU + 1, n3))
    hist = -y.reshape(-1, 3)[:, :2].ravel()
    K.assemble(y, hist, 1.0, 10.0, prob.mesh.volume_um, prob.mesh.h_um, prob.src_w, prob.src_fac, prob.vbg,
               prob.dirichlet, prob.psi_d, prob.kappa, prob.xref, prob.d0, prob.tab, prob.ln_a_br, prob.ln_a_cl,
               prob.linear_alpha, prob.dEf_kT, prob.rd_on, res, ab, True, K.KL + K.KU, reuse_tol, *store)
    return res, ab


def test_jacobian_reuse_recomputes_exactly_the_faces_that_moved():
    """With re-use, a node's derivatives (and its two faces') are recomputed once its v or x_Br
    moved by more than the tolerance, a face's once its Delta did; everything else is kept, and
    what is recomputed equals the exact Jacobian."""
    p = from_mapping(DeviceParameters, {"electrodes": {"enabled": False}})  # node terms constant
    prob = wire_problem(p, 4.0, Numerics(n_nodes=80))
    y0 = integrate(prob, np.array([0.0, 1e-3, 300.0])).y[-1].copy()
    n = prob.n
    tol = 1e-3
    store = K.reuse_arrays(n)
    exact = lambda y: _assemble_reusing(prob, y, 0.0, K.reuse_arrays(n))
    r0, j0 = _assemble_reusing(prob, y0, tol, store)  # the first pass computes everything
    assert store[2][1] == n - 1 and np.array_equal(j0, exact(y0)[1])
    # every argument moved by less than tol: nothing recomputed, the old Jacobian, a new residual
    y1 = y0.copy()
    y1[0::3] *= 1 + 0.2 * tol
    y1[2::3] += 0.1 * tol * np.arange(n)  # Delta moves by 0.1 tol per face
    r1, j1 = _assemble_reusing(prob, y1, tol, store)
    assert store[2][1] == n - 1 and np.array_equal(j1, j0)
    assert np.array_equal(r1, exact(y1)[0]) and not np.array_equal(r1, r0)
    # x_Br of node k moved by 2 tol: its two faces recomputed; its columns exact, far ones kept
    k = n // 2
    y2 = y1.copy()
    y2[3 * k + 1] += 2 * tol
    _, j2 = _assemble_reusing(prob, y2, tol, store)
    assert store[2][1] == n - 1 + 2
    cols = slice(3 * k, 3 * k + 2)
    np.testing.assert_array_equal(j2[:, cols], exact(y2)[1][:, cols])
    far = np.r_[0:3 * (k - 2) + 3, 3 * (k + 2):3 * n]
    np.testing.assert_array_equal(j2[:, far], j0[:, far])
    # psi of node k moved by 2 tol: the Delta of its two faces, so those two again
    y3 = y2.copy()
    y3[3 * k + 2] += 2 * tol
    _, j3 = _assemble_reusing(prob, y3, tol, store)
    assert store[2][1] == n - 1 + 4
    np.testing.assert_array_equal(j3[:, 3 * k + 2], exact(y3)[1][:, 3 * k + 2])


def test_jacobian_reuse_changes_the_solution_only_within_the_newton_tolerance():
    """The +4 V/um wire (300 nodes, 1 h) integrated with re-used derivatives and with the exact
    Jacobian at every step: the same steps, L(t) equal to 1e-9 um."""
    from ionwire.continuum import model as M

    p = DeviceParameters()
    out = {}
    saved = M.JACOBIAN_REUSE
    try:
        for reuse in (0.0, saved):
            M.JACOBIAN_REUSE = reuse
            r = simulate_wire(p, 4.0, 3600.0, Numerics(n_nodes=300))
            out[reuse] = (migration_lengths_um(r.z_um, r.x_br, p.geometry.junction_um), r.metadata)
    finally:
        M.JACOBIAN_REUSE = saved
    (l_exact, m_exact), (l_reuse, m_reuse) = out[0.0], out[saved]
    assert saved > 0 and m_reuse["solver_steps"] == m_exact["solver_steps"]
    assert m_reuse["solver_jacobian_faces_recomputed"] < 0.7 * m_exact["solver_jacobian_faces_recomputed"]
    assert l_exact[-1] > 0.2
    np.testing.assert_allclose(l_reuse, l_exact, rtol=0, atol=1e-9)


def test_jacobian_matches_finite_differences():
    p = DeviceParameters()
    prob = wire_problem(p, 4.0, Numerics(n_nodes=60))
    sol = integrate(prob, np.array([0.0, 1e-3, 300.0]))
    y = sol.y[-1].copy()
    n3 = y.size
    hist = np.empty(2 * prob.n)
    hist[0::2] = -1.01 * y[0::3]
    hist[1::2] = -y[1::3]
    res = np.empty(n3)
    ab = np.zeros((2 * K.KL + K.KU + 1, n3))
    prob.assemble(y, hist, 1.0, 10.0, res, ab, True, K.KL + K.KU)
    # assemble leaves out the time-derivative diagonal (the integrator adds it): add it here
    ab[K.KL + K.KU, 0::3] += prob.mesh.volume_um / 10.0
    ab[K.KL + K.KU, 1::3] += prob.mesh.volume_um / 10.0
    dummy = np.zeros_like(ab)
    rp = np.empty(n3)
    rm = np.empty(n3)
    worst = 0.0
    for k in range(n3):
        e = 1e-6 * max(1.0, abs(y[k]))
        yp = y.copy()
        yp[k] += e
        ym = y.copy()
        ym[k] -= e
        prob.assemble(yp, hist, 1.0, 10.0, rp, dummy, False, K.KL + K.KU)
        prob.assemble(ym, hist, 1.0, 10.0, rm, dummy, False, K.KL + K.KU)
        fd = (rp - rm) / (2 * e)
        lo, hi = max(0, k - K.KU), min(n3, k + K.KL + 1)
        band = np.array([ab[K.KL + K.KU + i - k, k] for i in range(lo, hi)])
        scale = np.abs(fd[lo:hi]).max() + 1e-300
        worst = max(worst, np.abs(band - fd[lo:hi]).max() / scale)
        assert np.abs(np.delete(fd, np.arange(lo, hi))).max() <= 1e-8 * scale  # nothing outside the band
    assert worst < 1e-6  # central differences: truncation + round-off ~1e-8


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_sg_flux_vanishes_on_discrete_boltzmann_profile(ratio):
    """Every face flux is zero (to round-off) on x_V/(1-x_V) = C exp(-psi) with a uniform halide
    ratio, for potential steps from tiny to 60 kT per face: the exponential fitting is exact."""
    p = DeviceParameters()
    sc = scales(p)
    tab = np.ascontiguousarray(maa_table(6.3e8, 1.3e8, F0).abd_per_s)
    xref = sc["xref"]
    rng = np.random.default_rng(1)
    # (exact up to the O((x_V,i+1 - x_V,i)^3) error of the face-mean form of Delta gamma, < 1e-16
    # for x_V <= 1e-5 as here)
    for dpsi in np.concatenate(([1e-9, 1e-3, 0.05, 0.2, -4.0, 60.0], rng.uniform(-4, 60, 20))):
        psi_i = rng.uniform(-5, 5)
        psi_j = psi_i + dpsi
        ri = rng.uniform(0.1, 5.0)            # x_V/(1-x_V) / x_ref at node i
        rj = ri * math.exp(-dpsi)
        xvi, xvj = xref * ri / (1 + xref * ri), xref * rj / (1 + xref * rj)
        bi, bj = (1 - xvi) * (1 - ratio), (1 - xvj) * (1 - ratio)
        jv, jbr = K.face_flux_direct(xvi / xref, xvj / xref, bi, bj, psi_i, psi_j, 0.01, xref, sc["d0_um2"], tab)
        # scale: the two one-sided Scharfetter-Gummel terms
        one_sided = sc["d0_um2"] * 6.3e8 * (float(K.bernoulli(dpsi)) * ri + float(K.bernoulli(-dpsi)) * rj) / 0.01
        assert abs(jv) < 1e-12 * one_sided, (dpsi, jv, one_sided)
        # halide flux: J_X = -x_ref J_V is zero; the interdiffusion term sees the round-off of
        # x_Cl = 1 - x_Br - x_V, at the scale d0 w x_V / h
        assert abs(jbr) < 1e-12 * xref * max(one_sided, sc["d0_um2"] * 6.3e8 * (ri + rj) / 0.01)


def test_exact_discrete_boltzmann_at_zero_current():
    """Pure Br wire, no electrode reactions, bias on: the steady state has zero current on every
    face and x_V/(1-x_V) proportional to exp(-e phi/kT) exactly (Scharfetter-Gummel)."""
    p = from_mapping(DeviceParameters, {"electrodes": {"enabled": False}})
    prob = wire_problem(p, 0.3, Numerics(n_nodes=150))
    # make the wire pure Br (uniform composition)
    prob.y0[0::3] = 1.0
    prob.y0[1::3] = 1.0 - prob.xref
    prob.vbg[:] = 1.0
    sol = integrate(prob, np.array([0.0, 1e3]), rtol=1e-4)
    y = sol.y[-1]
    xv = prob.xref * y[0::3]
    psi = y[2::3]
    # Newton converges x_V/x_ref to 1e-9 absolute, so the relation is checked where x_V/x_ref > 1e-2
    ok = xv > 1e-2 * prob.xref
    assert ok.sum() > 0.5 * ok.size
    lhs = np.log(xv[ok] / (1.0 - xv[ok])) + psi[ok]
    assert np.ptp(lhs) < 1e-6, np.ptp(lhs)
    # strongly non-uniform: depletion and accumulation did form
    assert xv.max() > 10 * prob.xref and xv.min() < 1e-6 * prob.xref
    cur = prob.currents(y)
    one_sided = prob.d0 * 6.3e8 * xv.max() / prob.mesh.h_um.min()
    assert np.abs(cur[:, 0]).max() < 1e-12 * one_sided
    np.testing.assert_allclose(y[1::3] + xv, 1.0, atol=1e-14)  # x_Cl stays 0


def test_gouy_chapman_depletion_width():
    """Depletion layer at the positive contact against the depletion (Gouy-Chapman/Schottky)
    estimate w = sqrt(2 eps (dpsi - kT/e) / (e c_s x_V^eq)), dpsi the potential drop from the
    contact to the neutral bulk; agreement within 3 % (the estimate neglects the Debye tail,
    0.26 um against w ~ 2 um)."""
    p = from_mapping(DeviceParameters, {"electrodes": {"enabled": False}})
    prob = wire_problem(p, 0.125, Numerics(n_nodes=400))  # 1 V over the 8 um between the outer edges
    prob.y0[0::3] = 1.0
    prob.y0[1::3] = 1.0 - prob.xref
    prob.vbg[:] = 1.0
    sol = integrate(prob, np.array([0.0, 1e3]), rtol=1e-4)
    y = sol.y[-1]
    z = prob.mesh.z_um
    v = y[0::3]
    phi = y[2::3] * prob.thermal_voltage_V
    i0 = prob.mesh.index_of(1.0)
    bulk = (z > 4.5) & (z < 5.5)
    assert np.all(np.abs(v[bulk] - 1.0) < 1e-2)  # a neutral bulk exists (up to Debye tails)
    drop = phi[i0] - phi[bulk].mean()
    right = np.nonzero((z > 1.0) & (v >= 0.5))[0][0]
    zl, zr = z[right - 1], z[right]
    w_sim = zl + (zr - zl) * (0.5 - v[right - 1]) / (v[right] - v[right - 1]) - 1.0
    mat = p.material
    eps = mat.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    n = site_density_per_m3(mat.lattice_constant_A) * prob.xref
    w_gc = math.sqrt(2 * eps * (drop - prob.thermal_voltage_V) / (ELEMENTARY_CHARGE_C * n)) * 1e6
    assert w_sim == pytest.approx(w_gc, rel=0.03)
    assert 1.5 < w_gc < 3.0


def _erf_profile(z, zj, d, t, xv):
    return 0.5 * (1 - xv) * erfc((z - zj) / (2 * np.sqrt(d * t)))


def _interdiffusion_error(n, t0=2e3, t1=8e3, rtol=1e-7):
    """Max error of x_Br against the erf solution for equal Br/Cl jump frequencies (constant
    interdiffusion coefficient D = D0 x_V w f0 (1 - x_V)), uniform mesh of n nodes on [0, 2] um,
    starting from the exact profile at t0."""
    p = DeviceParameters()
    sc = scales(p)
    w = 6.3e8
    xv = sc["xref"]
    d = sc["d0_um2"] * xv * w * F0 * (1 - xv)
    z = np.linspace(0.0, 2.0, n)
    prob = _uniform_problem(z, _erf_profile(z, 1.0, d, t0, xv), np.ones(n), w_br=w, w_cl=w)
    sol = integrate(prob, np.array([0.0, t1 - t0]), rtol=rtol, initial_step_s=1.0)
    return np.abs(sol.y[-1][1::3] - _erf_profile(z, 1.0, d, t1, xv)).max(), d


def test_zero_bias_interdiffusion_matches_erf():
    err, d = _interdiffusion_error(201)
    assert 4 * d * 8e3 > 0.05  # the profile really spread (diffusion length ~0.3 um)
    assert err < 2e-4


def test_spatial_convergence_order():
    errs = [_interdiffusion_error(n)[0] for n in (26, 51, 101)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert min(orders) >= 1.8, (errs, orders)


def test_conservation_with_and_without_sources():
    """Each species: N(t) - N(0) equals the integrated electrode source to 1e-10 relative."""
    for enabled in (True, False):
        p = from_mapping(DeviceParameters, {"electrodes": {"enabled": enabled}})
        for field in (4.0, -4.0):
            prob = wire_problem(p, field, Numerics(n_nodes=150))
            sol = integrate(prob, np.array([0.0, 1.0, 100.0, 600.0]))
            vol = prob.mesh.volume_um
            xv = prob.xref * sol.y[:, 0::3]
            xbr = sol.y[:, 1::3]
            xcl = 1 - xbr - xv
            nv, nb, nc = (x @ vol for x in (xv, xbr, xcl))
            created = np.abs(sol.q_v).max() + nv[0]
            assert np.abs(nv - nv[0] - sol.q_v).max() <= 1e-10 * created
            assert np.abs(nb - nb[0] - sol.q_br).max() <= 1e-10 * nb[0]
            assert np.abs(nc - nc[0] + sol.q_v + sol.q_br).max() <= 1e-10 * nc[0]
            if enabled:
                assert abs(sol.q_v[-1]) > 0.1 * nv[0]  # the sources really did something
            else:
                assert np.all(sol.q_v == 0)


def test_tolerance_independence_and_bounded_fractions():
    """L(+4 V/um, 4 h) changes by < 1 % between rtol 1e-3 (default) and 1e-4; fractions stay in
    [0, 1] (to 1e-10) behind the moving front."""
    p = DeviceParameters()
    out = {}
    for rtol in (1e-3, 1e-4):
        r = simulate_wire(p, 4.0, 4 * 3600.0, Numerics(rtol=rtol))
        out[rtol] = migration_lengths_um(r.z_um, r.x_br, 5.0)[-1]
        assert r.x_br.min() > -1e-10 and r.x_cl.min() > -1e-10
        assert r.x_br.max() < 1 + 1e-12 and r.x_v.max() < 1e-3
    assert out[1e-3] > 0.5
    assert abs(out[1e-3] - out[1e-4]) < 0.01 * out[1e-4]


def test_front_position_interpolates():
    z = np.linspace(0, 1, 11)
    x = np.clip(1.5 - 2 * z, 0, 1)
    assert front_position_um(z, x, 0.5) == pytest.approx((1.5 - 0.55) / 2)
    assert math.isnan(front_position_um(z, np.ones(11), 0.5))


def test_hand_derivatives_match_complex_step():
    """face_flux_grad / node_props_grad (the Jacobian's building blocks) against the complex-step
    derivative of face_flux / node_props, to round-off, over random states and potential steps."""
    tab = np.ascontiguousarray(maa_table(6.3e8, 1.3e8, F0).abd_per_s)
    xref, d0, h, cs = 3.3e-8, 2.24e-7, 0.01, 1e-30
    rng = np.random.default_rng(0)

    def props_c(v, b, dv, db):
        out = np.empty(K.NPROP, dtype=complex)
        K.node_props(complex(v, dv), complex(b, db), xref, tab, out)
        return out

    for trial in range(60):
        vi, vj = rng.uniform(0.01, 50, 2)
        bi, bj = rng.uniform(0, 1, 2) * (1 - xref * np.array([vi, vj]))
        if trial % 3 == 0:
            bi, bj = 1 - xref * vi, 1 - xref * vj
        dpsi = rng.uniform(-0.05, 0.05) if trial % 2 else rng.uniform(-30, 30)
        pi, pj = np.empty(K.NPROP), np.empty(K.NPROP)
        dvi, dbi, dvj, dbj = (np.empty(K.NPROP) for _ in range(4))
        K.node_props_grad(vi, bi, xref, tab, pi, dvi, dbi)
        K.node_props_grad(vj, bj, xref, tab, pj, dvj, dbj)
        np.testing.assert_allclose(dvi, props_c(vi, bi, cs, 0).imag / cs, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(dbj, props_c(vj, bj, 0, cs).imag / cs, rtol=1e-12, atol=1e-300)
        gv, gb = np.empty(23), np.empty(23)
        jv, jbr = K.face_flux_grad(pi, pj, bi, bj, dpsi, h, xref, d0, gv, gb)
        ref = K.face_flux(pi, pj, bi, bj, 0.0, dpsi, h, xref, d0)
        assert jv == pytest.approx(ref[0], rel=1e-14, abs=1e-300) and jbr == pytest.approx(ref[1], rel=1e-14, abs=1e-300)

        def f_c(dvi_=0, dbi_=0, dvj_=0, dbj_=0, dps=0):
            r = K.face_flux(props_c(vi, bi, dvi_, dbi_), props_c(vj, bj, dvj_, dbj_), complex(bi, dbi_),
                            complex(bj, dbj_), 0j, complex(dpsi, dps), h, xref, d0)
            return np.array([r[0].imag, r[1].imag]) / cs

        ref_d = [f_c(dvi_=cs), f_c(dbi_=cs), f_c(dvj_=cs), f_c(dbj_=cs), f_c(dps=cs)]
        for o, g in enumerate((gv, gb)):
            got = [g[:10] @ dvi, g[:10] @ dbi + g[20], g[10:20] @ dvj, g[10:20] @ dbj + g[21], g[22]]
            scale = max(abs(r[o]) for r in ref_d) + 1e-300
            for m in range(5):
                assert abs(got[m] - ref_d[m][o]) < 1e-12 * scale, (trial, o, m)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("rd_on", [1.0, 0.0, -1.0], ids=["detailed_balance", "one_way", "equal_rates"])
def test_source_derivatives_match_complex_step(linear, rd_on):
    """source_grad (the electrode source and its derivatives in the Jacobian) against the
    complex-step derivative of source, for every electrode law, to round-off."""
    xref, cs = 3.3e-8, 1e-30
    la, lb, lin, de, ron = np.log(1.3e-5), np.log(3.8e-7), linear, 4.6, rd_on
    rng = np.random.default_rng(1)
    for trial in range(40):
        v = rng.uniform(0.01, 1e3)
        b = rng.uniform(0, 1) * (1 - xref * v)
        fac = rng.uniform(0.1, 8.0)
        got = K.source_grad(v, b, xref, la, lb, lin, de, ron, fac)
        ref = K.source(v, b, xref, la, lb, lin, de, ron, fac)
        assert got[0] == pytest.approx(ref[0], rel=1e-14, abs=1e-300)
        assert got[1] == pytest.approx(ref[1], rel=1e-14, abs=1e-300)
        dv = K.source(complex(v, cs), complex(b, 0.0), xref, la, lb, lin, de, ron, fac)
        db = K.source(complex(v, 0.0), complex(b, cs), xref, la, lb, lin, de, ron, fac)
        want = (dv[0].imag / cs, db[0].imag / cs, dv[1].imag / cs, db[1].imag / cs)
        scale_v = max(abs(want[0]), abs(want[1])) + 1e-300
        scale_b = max(abs(want[2]), abs(want[3])) + 1e-300
        for k in range(4):
            scale = scale_v if k < 2 else scale_b
            assert abs(got[2 + k] - want[k]) <= 1e-12 * scale, (trial, k, got[2 + k], want[k])


def test_graded_mesh_reuse_returns_independent_equal_meshes():
    """A repeated graded_mesh call gives the same nodes as a fresh equidistribution, in arrays
    of its own (changing one mesh does not change the next)."""
    from ionwire.continuum import mesh as M

    keys = [0.0, 1.0, 2.5, 5.0, 7.5, 9.0, 10.0]
    a = M.graded_mesh(keys, 300)
    fresh = M._graded_nodes.__wrapped__(tuple(keys), 300, 20.0, 0.15)
    a.z_um[:] = 0.0
    b = M.graded_mesh(keys, 300)
    assert np.array_equal(b.z_um, fresh) and b.z_um[-1] == 10.0
    assert b.z_um is not a.z_um and b.z_um.flags.writeable


def test_the_pivoting_fallback_solves_every_step_as_the_compiled_newton_does(monkeypatch):
    """Every attempt of a +4 V/um run (150 nodes, 1 h) handed to the LAPACK Newton iteration
    (continuum.model._newton, the fallback for a singular pivot block of the compiled block
    elimination), as if each had failed there: the same steps, and L(t) and the profiles within
    the Newton tolerance of the compiled run."""
    p = DeviceParameters()
    t_out = np.linspace(0.0, 3600.0, 7)
    ref = integrate(wire_problem(p, 4.0, Numerics(n_nodes=150)), t_out)
    compiled = K.bdf2_advance
    handed = []

    def every_attempt_to_the_fallback(*args):
        code = compiled(*args)
        if code == K.ADV_PAUSED:  # an attempt begun, its Newton iteration not yet: the fallback's state
            handed.append(code)
            return K.ADV_FALLBACK
        return code

    monkeypatch.setattr(K, "bdf2_advance", every_attempt_to_the_fallback)
    prob = wire_problem(p, 4.0, Numerics(n_nodes=150))
    prob.at_time = lambda problem, t: None  # a constant bias that pauses before every attempt
    sol = integrate(prob, t_out)
    assert len(handed) == sol.stats["steps"] + sol.stats["rejected"] > 50
    assert sol.stats["steps"] == ref.stats["steps"]
    z, junction = prob.mesh.z_um, p.geometry.junction_um
    l_ref = migration_lengths_um(z, ref.y[:, 1::3], junction)
    l_fallback = migration_lengths_um(z, sol.y[:, 1::3], junction)
    assert l_ref[-1] > 0.2
    np.testing.assert_allclose(l_fallback, l_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sol.y[:, 1::3], ref.y[:, 1::3], rtol=0, atol=1e-7)
