"""The SUNDIALS IDA time stepping of the continuum model (continuum.ida) against the exact
properties of the discretisation and against the hand-written BDF2 stepper."""
import numpy as np
import pytest

pytest.importorskip("sksundae")

from ionwire.continuum import ida
from ionwire.continuum.model import Numerics, integrate, simulate_wire, wire_problem
from ionwire.continuum.observables import migration_lengths_um
from ionwire.structures.parameters import DeviceParameters, from_mapping


def _ida_state(prob, y, seed=0):
    """A perturbed IDA state (y, y') around the kernel state y of prob."""
    lay = ida.Layout(prob.src_w, prob.src_fac)
    lay.set_bandwidths(ida.kernel_offsets(prob))
    rng = np.random.default_rng(seed)
    yi = np.zeros(lay.size)
    yi[lay.pos3] = y
    yi[lay.cv[lay.cv >= 0]] = rng.normal(size=(lay.cv >= 0).sum())
    yi[lay.cb[lay.cb >= 0]] = rng.normal(size=(lay.cb >= 0).sum())
    ypi = rng.normal(size=lay.size) * 1e-3
    return lay, yi, ypi


def test_ida_jacobian_matches_finite_differences_of_its_residual():
    """The band Jacobian handed to IDA (kernel band + cj vol + the running-sum rows) against
    central differences of the IDA residual; nothing outside the declared band."""
    p = DeviceParameters()
    prob = wire_problem(p, 4.0, Numerics(n_nodes=40))
    sol = integrate(prob, np.array([0.0, 1e-3, 300.0]), integrator="ida")
    lay, yi, ypi = _ida_state(prob, sol.y[-1])
    n, n3, m = prob.n, 3 * prob.n, prob.mesh
    work = (np.empty(n3), np.empty(2 * n), np.empty(n3))
    args = (m.volume_um, m.h_um, prob.src_w, prob.src_fac, prob.vbg, prob.dirichlet, prob.psi_d, prob.kappa,
            prob.xref, prob.d0, prob.tab, prob.ln_a_br, prob.ln_a_cl, prob.linear_alpha, prob.dEf_kT, prob.rd_on)
    la = (lay.pos3, lay.cv, lay.cb, lay.prev)
    cj = 37.0
    jj = np.zeros((lay.size, lay.size))
    ida._jacobian(yi, cj, *la, *args, *work, np.zeros((11, n3)), jj)

    def res(y, yp):
        out = np.empty(lay.size)
        ida._residual(y, yp, *la, *args, *work, np.empty((1, 1)), out)
        return out

    fd = np.zeros_like(jj)
    for k in range(lay.size):
        e = 1e-6 * max(1.0, abs(yi[k]))
        yp_, ym_ = yi.copy(), yi.copy()
        yp_[k] += e
        ym_[k] -= e
        pp, pm = ypi.copy(), ypi.copy()
        pp[k] += cj * e
        pm[k] -= cj * e
        fd[:, k] = (res(yp_, pp) - res(ym_, pm)) / (2 * e)
    r, c = np.nonzero(np.abs(fd) > 1e-10 * np.abs(fd).max())
    assert np.all(r - c <= lay.kl) and np.all(c - r <= lay.ku)
    scale = np.abs(fd).max(axis=1, keepdims=True) + 1e-300
    assert np.max(np.abs(jj - fd) / scale) < 1e-6  # central differences: ~1e-8


def test_ida_conservation_with_and_without_sources():
    """Each species: N(t) - N(0) equals the IDA-integrated electrode source to 1e-10 relative
    (the running sums keep the linear invariants through every Newton correction)."""
    for enabled in (True, False):
        p = from_mapping(DeviceParameters, {"electrodes": {"enabled": enabled}})
        for field in (4.0, -4.0):
            prob = wire_problem(p, field, Numerics(n_nodes=150))
            sol = integrate(prob, np.array([0.0, 1.0, 100.0, 600.0]), integrator="ida")
            assert np.array_equal(sol.times_s, [0.0, 1.0, 100.0, 600.0])
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
                assert abs(sol.q_v[-1]) > 0.1 * nv[0]
            else:
                assert np.all(sol.q_v == 0)


def test_ida_agrees_with_bdf2():
    """L(+4 V/um, 4 h) of IDA and BDF2 agree within 0.1 %; IDA re-uses its Jacobian over steps."""
    p = DeviceParameters()
    out = {}
    for integ in ("bdf2", "ida"):
        r = simulate_wire(p, 4.0, 4 * 3600.0, Numerics(n_nodes=400, integrator=integ))
        out[integ] = migration_lengths_um(r.z_um, r.x_br, 5.0)[-1]
        if integ == "ida":
            assert r.metadata["solver_jacobian_evaluations"] < 0.5 * r.metadata["solver_steps"]
    assert out["bdf2"] > 0.5
    assert abs(out["ida"] - out["bdf2"]) < 1e-3 * out["bdf2"]


def test_ida_counters_come_from_the_ida_memory():
    """The IDA memory reached through ctypes is the solver's own: its residual and Jacobian
    counts equal the calls the callbacks saw, and its step count is at most the step attempts."""
    p = DeviceParameters()
    prob = wire_problem(p, 4.0, Numerics(n_nodes=60))
    sol = integrate(prob, np.array([0.0, 1.0, 600.0]), integrator="ida")
    st = sol.stats
    assert "error_test_failures" in st  # the memory was reached
    assert st["residual_evaluations"] == st["residual_calls"] > 0
    assert st["jacobian_evaluations"] == st["jacobian_calls"] > 0
    assert 0 < st["steps"] <= st["newton_iterations"] <= st["residual_evaluations"]
