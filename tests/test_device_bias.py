"""Bias protocols in the device kMC (kmc.device, structures.bias): piecewise-constant segments
exactly (the next event is drawn anew at a switch), ramps as steps that converge, restarts in the
middle of a protocol, the polarity of the electrodes following the sign, the protocol time
series of the trajectory.

Exact references: with hops frozen (kmc.hops = false) the vacancies on the positive contact
are only created, each halide site independently at r_c(t) = r_c(E(t)) (structures.parameters.
electrode_rates, r_c ~ |E|) and never refilled ("irreversible_at_positive"), so the creations
at that contact by time t are Binomial(N_halides(0), 1 - exp(-int_0^t r_c dt)).

Seed-stream semantics: a run's seed fixes its initial state and its kMC stream.  A switch draws
one uniform from that stream (the new waiting time), so a protocol and the constant field of
the same seed are identical event for event up to the first switch and differ afterwards: equal
in distribution, not trajectory by trajectory."""
import dataclasses
import json
import math

import numpy as np
import pytest

from ionwire.kmc import _device_kernels as dk
from ionwire.kmc.device import (DeviceSimulation, bias_segments, load_config, run_device)
from ionwire.kmc.h5md import PROTOCOL_SERIES, open_trajectory, read_checkpoint
from ionwire.structures.bias import BiasProtocol
from ionwire.structures.errors import ParameterError
from ionwire.structures.parameters import electrode_rates
from ionwire.structures.units import ELEMENTARY_CHARGE_C

BASE = {
    "vacancies": {"equilibrium_fraction": {"Br": 1e-2}},
    "geometry": {"wire_length_um": 0.0464, "contact_width_um": 0.0116, "gap_um": 0.0232},
    "electrodes": {"alpha_um_per_V_s": {"Br": 1e5, "Cl": 3e3}},
    "kmc": {"nx": 12, "ny": 12, "seed": 4},
    "output": {"frame_interval_s": 1e-9},
}


def _config(bias=None, *, hops=True, seed=4, frame=1e-9, **kmc):
    m = {k: dict(v) for k, v in BASE.items()}
    m["kmc"].update(hops=hops, seed=seed, **kmc)
    m["output"]["frame_interval_s"] = frame
    if bias is not None:
        m["bias"] = bias
    return load_config(m)


def _steps(*pairs):
    return {"steps": [{"field_V_per_um": e, "duration_s": d} for e, d in pairs]}


def _left_halides(sim):
    """Halide sites on the left contact planes (all Br) and r_c per site and V/um there."""
    c = sim.state.planes.counts
    left = sim.layout.contact == 1
    return int(c[left, 0].sum() + c[left, 1].sum())


def _rc(config, field):
    return float(electrode_rates(config.params, 0.0, field, "positive")[0])


def _binomial_z(k, n, p):
    return (k - n * p) / math.sqrt(n * p * (1 - p))


def _state_equal(a, b, skip=()):
    for key, v in a.items():
        if key not in skip:
            assert np.array_equal(v, b[key]), key


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------
def test_bias_table_with_an_old_style_field_or_duration_is_one_error():
    with pytest.raises(ParameterError, match="both"):
        _config(_steps((3.0, 1e-8)), field_V_per_um=3.0)
    with pytest.raises(ParameterError, match="both"):
        _config(_steps((3.0, 1e-8)), duration_s=1e-8)
    with pytest.raises(ParameterError, match="duration"):
        _config({"field_V_per_um": 3.0})
    with pytest.raises(ParameterError, match="ramp_step_s"):
        _config({"ramp": {"from_V_per_um": 0.0, "to_V_per_um": 3.0, "rate_V_per_um_per_s": 3e8}})


def test_a_bias_config_round_trips_through_its_mapping():
    cfg = _config(_steps((4.0, 2e-8), (0.0, 1e-8)))
    assert cfg.kmc.duration_s == cfg.bias.total_duration_s == pytest.approx(3e-8, rel=1e-12)
    assert np.allclose(bias_segments(cfg), ((0.0, 2e-8, 4.0), (2e-8, 3e-8, 0.0)), rtol=1e-12, atol=0)
    m = cfg.to_mapping()
    assert "field_V_per_um" not in m["kmc"] and "duration_s" not in m["kmc"]
    again = load_config(m)
    assert bias_segments(again) == bias_segments(cfg) and again.to_mapping() == m
    # a config without [bias] keeps the mapping it always had (no new keys)
    old = _config(field_V_per_um=3.0, duration_s=1e-8).to_mapping()
    assert "bias" not in old and set(old["kmc"]) == {"nx", "ny", "field_V_per_um", "duration_s", "seed", "hops",
                                                     "max_events", "background"}


# ---------------------------------------------------------------------------------------------
# exactness of piecewise-constant bias
# ---------------------------------------------------------------------------------------------
def test_a_constant_bias_table_is_the_old_constant_field_event_for_event():
    old = DeviceSimulation(_config(field_V_per_um=3.0, duration_s=2e-8))
    new = DeviceSimulation(_config({"field_V_per_um": 3.0, "duration_s": 2e-8}))
    for sim in (old, new):
        sim.advance(2e-8)
    assert old.events > 5000
    _state_equal(old.state_arrays(), new.state_arrays())


def test_two_equal_steps_follow_the_constant_field_exactly_until_the_switch():
    const = DeviceSimulation(_config(field_V_per_um=3.0, duration_s=2e-8))
    two = DeviceSimulation(_config(_steps((3.0, 1e-8), (3.0, 1e-8))))
    for sim in (const, two):
        sim.advance(1e-8)
        sim.advance(1e-8)  # (at the switch time: no event, no switch yet)
    assert two.bias_segment == 0
    _state_equal(const.state_arrays(), two.state_arrays(), skip=("bias_segment",))
    for sim in (const, two):
        sim.advance(np.nextafter(1e-8, 1.0))
    # the same events; the step protocol has drawn its next event anew at the switch
    assert two.bias_segment == 1 and const.bias_segment == 0
    _state_equal(const.state_arrays(), two.state_arrays(), skip=("fstate", "rng", "bias_segment"))
    assert const.state.clock.fstate[0] == two.state.clock.fstate[0] == np.nextafter(1e-8, 1.0)
    assert not np.array_equal(const.state.clock.rng, two.state.clock.rng)


def test_a_switch_redraws_the_next_event_creations_are_binomial():
    """A nearly zero field, then a strong one: the waiting time drawn with the first segment's
    tiny rate would postpone every creation past the end; redrawn at the switch, the creations
    are Binomial(N, 1 - exp(-(r1 T1 + r2 T2)))."""
    t1, t2 = 2e-6, 1e-6
    e1, e2 = 1e-4, 6.0
    n_total = k_total = 0
    p = None
    zs = []
    for seed in range(4):
        cfg = _config(_steps((e1, t1), (e2, t2)), hops=False, seed=seed, frame=t1 + t2)
        sim = DeviceSimulation(cfg)
        n = _left_halides(sim)
        c0 = int(sim.counters[dk.C_CREATED])
        sim.advance(t1 + t2)
        k = int(sim.counters[dk.C_CREATED]) - c0
        p = 1.0 - math.exp(-(_rc(cfg, e1) * t1 + _rc(cfg, e2) * t2))
        zs.append(_binomial_z(k, n, p))
        n_total += n
        k_total += k
    assert 0.05 < p < 0.5 and k_total > 1000
    assert abs(_binomial_z(k_total, n_total, p)) < 4.0, zs


def test_two_equal_steps_equal_the_constant_field_in_distribution():
    """Replicas of the same seeds: the net Br displacement and the electrode reactions of two
    equal steps agree with the constant field over their sum (4 combined standard errors)."""
    T = 4e-8
    obs = {"const": [], "steps": []}
    for seed in range(12):
        for name, cfg in (("const", _config(field_V_per_um=3.0, duration_s=T, seed=seed, frame=T)),
                          ("steps", _config(_steps((3.0, T / 2), (3.0, T / 2)), seed=seed, frame=T))):
            sim = DeviceSimulation(cfg)
            sim.advance(T)
            c = sim.counters
            obs[name].append([c[dk.C_DZ], c[dk.C_CREATED] + c[dk.C_CREATED + 1], c[dk.C_HOPS]])
    a, b = np.array(obs["const"], float), np.array(obs["steps"], float)
    assert not np.array_equal(a, b)  # different trajectories after the switch
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    assert np.all(se > 0) and a[:, 0].mean() > 3 * se[0]  # a real drift, resolved
    assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 4 * se), (a.mean(axis=0), b.mean(axis=0), se)


def test_a_zero_amplitude_square_wave_is_rest():
    T = 4e-8
    wave = {"square_wave": {"amplitude_V_per_um": 0.0, "period_s": T / 4, "cycles": 4}}
    hops = {"wave": [], "rest": []}
    for seed in range(8):
        for name, bias in (("wave", wave), ("rest", _steps((0.0, T)))):
            cfg = _config(bias, seed=seed, frame=T)
            assert all(E == 0.0 for _, _, E in bias_segments(cfg))
            sim = DeviceSimulation(cfg)
            sim.advance(T)
            assert sim.layout.electrostatics.potential_left_V == 0.0
            c = sim.counters
            # no electrode reaction at zero field (r_c ~ |E|), in both
            assert c[dk.C_CREATED] == c[dk.C_CREATED + 1] == c[dk.C_ANNIHILATED] == c[dk.C_ANNIHILATED + 1] == 0
            hops[name].append(c[dk.C_HOPS] + c[dk.C_HOPS + 1])
        assert sim.bias_segment == 0  # (rest has one segment)
    a, b = np.array(hops["wave"], float), np.array(hops["rest"], float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert a.mean() > 1e4 and abs(a.mean() - b.mean()) < 4 * se


# ---------------------------------------------------------------------------------------------
# polarity
# ---------------------------------------------------------------------------------------------
def test_a_polarity_switch_moves_the_positive_electrode():
    """Forward then reverse: the imposed potential, the electrode roles, the rate tables (r_c ~
    |E| at both contacts, r_d = 0 at the positive one) and the reactions follow the sign."""
    T = 3e-8
    cfg = _config(_steps((3.0, T), (-3.0, T)), frame=T)
    sim = DeviceSimulation(cfg)
    rc_fwd, rd_fwd = sim.rates.create.copy(), sim.rates.refill.copy()
    assert sim.layout.electrode_of_side == ("positive", "negative") and sim.layout.electrostatics.potential_left_V > 0
    sim.advance(T)
    fwd = sim.counters.copy()
    assert sim.bias_segment == 0 and sim.field_V_per_um == 3.0  # at the switch time: still forward
    sim.advance(np.nextafter(T, 1.0))
    assert sim.bias_segment == 1 and sim.field_V_per_um == -3.0
    assert sim.layout.electrode_of_side == ("negative", "positive") and sim.layout.electrostatics.potential_left_V < 0
    np.testing.assert_array_equal(sim.rates.create, rc_fwd)  # the same |E|
    assert np.all(rd_fwd[0] == 0) and np.all(rd_fwd[1] > 0)
    assert np.all(sim.rates.refill[1] == 0) and np.all(sim.rates.refill[0] > 0)
    sim.advance(2 * T)
    rev = sim.counters - fwd
    # refills only at the negative electrode: the right one under forward bias, the left under reverse
    assert fwd[dk.C_ANNIHILATED] == 0 and fwd[dk.C_ANNIHILATED + 1] > 0
    assert rev[dk.C_ANNIHILATED + 1] == 0 and rev[dk.C_ANNIHILATED] > 0
    # the potential the hops see follows: left minus right imposed potential changes sign
    phi = sim.potential_V()
    es = sim.layout.electrostatics
    assert phi[es.left_plane] < phi[es.right_plane]


# ---------------------------------------------------------------------------------------------
# ramps
# ---------------------------------------------------------------------------------------------
def test_ramps_converge_as_the_step_shrinks():
    """A ramp 0 -> E over T, creations at the positive contact by T/3 (inside a step for every
    step length used): each stepped protocol gives its own exact binomial mean, and those means
    converge to the ramp's own as ramp_step_s shrinks (midpoint steps: second order); the kMC
    follows its steps, and at the finest step it agrees with the continuous ramp."""
    E, T = 6.0, 6e-6
    t_obs = T / 3
    ramp = {"from_V_per_um": 0.0, "to_V_per_um": E, "rate_V_per_um_per_s": E / T}
    errors, z_exact = [], {}
    for n in (1, 2, 4, 16):
        cfg = _config({"ramp": ramp, "ramp_step_s": T / n}, hops=False, seed=100 + n, frame=T)
        segs = bias_segments(cfg)
        assert len(segs) == n
        rc1 = _rc(cfg, 1.0)
        assert _rc(cfg, E) == pytest.approx(E * rc1, rel=1e-12)  # r_c ~ |E|
        stepped = sum(rc1 * abs(f) * max(0.0, min(t1, t_obs) - t0) for t0, t1, f in segs)
        exact = rc1 * E * t_obs ** 2 / (2 * T)
        sim = DeviceSimulation(cfg)
        n_h = _left_halides(sim)
        sim.advance(t_obs)
        k = int(sim.counters[dk.C_CREATED])
        p_step, p_exact = 1 - math.exp(-stepped), 1 - math.exp(-exact)
        assert abs(_binomial_z(k, n_h, p_step)) < 4.0, (n, k, n_h * p_step)
        errors.append(abs(p_step - p_exact))
        z_exact[n] = _binomial_z(k, n_h, p_exact)
    assert all(b < a for a, b in zip(errors, errors[1:])) and errors[-1] < errors[0] / 100
    assert abs(z_exact[16]) < 4.0 and abs(z_exact[1]) > 10.0, z_exact


# ---------------------------------------------------------------------------------------------
# restarts and checkpoints
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t_cut, segment, field", [(1.3e-8, 1, -2.0), (1e-8, 0, 3.0)])
def test_restart_in_the_middle_of_a_protocol_is_exact(t_cut, segment, field):
    """Cut inside the second segment, or exactly at the switch (the state is then still in the
    first segment: the switch and its new waiting time come when the run goes on)."""
    cfg = _config(_steps((3.0, 1e-8), (-2.0, 1e-8), (0.0, 5e-9)))
    ref = DeviceSimulation(cfg)
    ref.advance(2.5e-8)
    first = DeviceSimulation(cfg)
    first.advance(t_cut)
    arrays = first.state_arrays()
    assert int(arrays["bias_segment"][0]) == segment and first.time_s == t_cut
    again = DeviceSimulation.from_state(cfg, arrays)
    assert again.field_V_per_um == field
    again.advance(2.5e-8)
    assert ref.events > 10000
    _state_equal(ref.state_arrays(), again.state_arrays())


def test_an_older_checkpoint_without_protocol_arrays_loads():
    cfg = _config(field_V_per_um=3.0, duration_s=2e-8)
    ref = DeviceSimulation(cfg)
    ref.advance(2e-8)
    sim = DeviceSimulation(cfg)
    sim.advance(1e-8)
    arrays = sim.state_arrays()
    del arrays["exchange"], arrays["bias_segment"]
    again = DeviceSimulation.from_state(cfg, arrays)
    again.advance(2e-8)
    out, want = again.state_arrays(), ref.state_arrays()
    _state_equal(want, out, skip=("exchange",))
    # the exchange counters restart at zero: they hold what happened after the restart
    assert out["exchange"].sum() == (want["counters"][dk.C_CREATED:dk.C_CREATED + 4].sum()
                                     - arrays["counters"][dk.C_CREATED:dk.C_CREATED + 4].sum())


def test_run_device_resumes_a_protocol_from_a_checkpoint_bit_for_bit(tmp_path):
    cfg = _config(_steps((3.0, 1e-8), (-3.0, 1e-8)))
    ref = tmp_path / "ref.h5"
    run_device(cfg, ref)
    out = tmp_path / "cut.h5"

    def interrupt(frame, n_frames, sim):  # Ctrl-C after frame 13 (t = 1.3e-8 s, the second segment)
        if frame == 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_device(cfg, out, checkpoint_every=2000, progress=interrupt)
    arrays, attrs = read_checkpoint(str(out) + ".checkpoint")
    assert int(arrays["bias_segment"][0]) == 1 and not attrs["run_complete"]
    run_device(cfg, out, resume=True)
    with open_trajectory(ref) as a, open_trajectory(out) as b:
        assert a.n_frames == b.n_frames == 21
        for name in PROTOCOL_SERIES:
            np.testing.assert_array_equal(a.series(name), b.series(name), err_msg=name)
        np.testing.assert_array_equal(a.observable("x_Br"), b.observable("x_Br"))
        assert a.counters()["events"][-1] > 10000


# ---------------------------------------------------------------------------------------------
# the time series of the trajectory
# ---------------------------------------------------------------------------------------------
def test_protocol_time_series_in_the_trajectory(tmp_path):
    T = 1e-8
    cfg = _config(_steps((3.0, T), (0.0, T / 2), (-3.0, T)))
    out = tmp_path / "p.h5"
    run_device(cfg, out)
    proto = cfg.bias
    with open_trajectory(out) as traj:
        t = traj.times_s
        assert set(traj.series_names) == set(PROTOCOL_SERIES) and traj.n_frames == 26
        v = traj.series("bias_voltage")
        es = DeviceSimulation(cfg).layout.electrostatics
        dist_um = (es.right_plane - es.left_plane) * es.plane_spacing_A * 1e-4
        # the field under which each frame's state was reached: at a switch, the segment ending there
        left_limit = [proto.field_at(max(0.0, x - 1e-15)) for x in t]
        np.testing.assert_allclose(v, np.array(left_limit) * dist_um, rtol=1e-12, atol=0)
        assert v[10] > 0 and v[15] == 0 and v[16] < 0  # t = T: +E; t = 1.5 T: rest; then -E
        c = traj.counters()
        q = traj.series("charge_passed")
        # the charge that entered the wire at a contact is the net vacancy charge made there
        np.testing.assert_array_equal(q[:, 0], c["created_left"] - c["annihilated_left"])
        np.testing.assert_array_equal(q[:, 1], c["created_right"] - c["annihilated_right"])
        ex = traj.series("halide_exchange")
        np.testing.assert_array_equal(ex[:, 0] + ex[:, 2], c["created_from_Br"])
        np.testing.assert_array_equal(ex[:, 4] + ex[:, 6], c["refilled_Br"])
        cur = traj.series("ionic_current")
        assert np.all(cur[0] == 0)
        # current x dt summed = the charge passed (e), per contact
        dq = (cur.sum(axis=2)[1:] * np.diff(t)[:, None]) / ELEMENTARY_CHARGE_C
        np.testing.assert_allclose(np.cumsum(dq, axis=0), q[1:] - q[0], rtol=1e-9, atol=1e-9)
        # at rest no current flows
        rest = (t > T + 1e-12) & (t <= 1.5 * T + 1e-12)
        assert rest.sum() == 5 and np.all(cur[rest] == 0)
        front = traj.series("front_position")
        np.testing.assert_allclose(traj.series("migration_length"), front[0] - front, rtol=0, atol=1e-9)
        assert abs(front[0] - 0.0232 * 1e4) < 4 * 2.9  # the initial junction, within a bin
        with open_trajectory(out) as again:
            with pytest.raises(KeyError, match="no time series"):
                again.series("nothing")


def test_a_run_without_bias_writes_no_protocol_series(tmp_path):
    out = tmp_path / "c.h5"
    run_device(_config(field_V_per_um=3.0, duration_s=2e-9), out)
    import h5py
    with h5py.File(out, "r") as f:
        assert "series" not in f["parameters"].attrs
        assert not set(PROTOCOL_SERIES) & set(f["observables"])
    with open_trajectory(out) as traj:
        assert traj.series_names == ()


# ---------------------------------------------------------------------------------------------
# the kMC against the continuum model under one protocol (coupling.compare)
# ---------------------------------------------------------------------------------------------
def _protocol_compare_mapping(path, bias, times, replicas, cells=None):
    import tomllib
    from pathlib import Path

    m = tomllib.loads((Path(__file__).resolve().parent.parent / "runs" / path).read_text())
    del m["compare"]["fields_V_per_um"]
    m.pop("electrode_kinetics", None)
    m["compare"].update(times_s=times, replicas=replicas)
    if cells:
        m["kmc"] = {"nx": cells, "ny": cells}
    m["bias"] = bias
    return m


def test_compare_config_with_bias_checks():
    from ionwire.coupling.compare import load_config as load_compare

    m = _protocol_compare_mapping("validate.toml", _steps((4.0, 5e-6), (-4.0, 5e-6)), [5e-6, 1e-5], 4)
    cfg = load_compare(m)
    assert cfg.fields == (None,) and cfg.max_abs_field() == 4.0
    m2 = dict(m, compare=dict(m["compare"], fields_V_per_um=[4.0]))
    with pytest.raises(ParameterError, match="both"):
        load_compare(m2)
    m3 = dict(m, compare=dict(m["compare"], times_s=[5e-6, 2e-5]))
    with pytest.raises(ParameterError, match="after the"):
        load_compare(m3)
    from ionwire.coupling.runtypes import CompareRun

    with pytest.raises(ParameterError, match=r"\[bias\].*ionwire compare"):  # a campaign fans out fields only
        CompareRun.load(m)


@pytest.mark.filterwarnings("ignore::ionwire.coupling.compare.RegimeWarning")  # a CI-sized device
def test_kmc_and_continuum_agree_under_a_polarity_switch(tmp_path):
    """validate.toml's device, 4 x 4 cells, 8 replicas: +4 V/um, then -4 V/um (both models restart
    at the switch); x_Br and x_V within the chi^2 threshold of a correct model, fronts within 2
    sigma, at times before, at and after the switch."""
    from ionwire.coupling.compare import compare, load_config as load_compare, protocol_segments

    m = _protocol_compare_mapping("validate.toml", _steps((4.0, 5e-6), (-4.0, 5e-6)), [2e-6, 5e-6, 1e-5], 8, 4)
    cfg = load_compare(m)
    assert protocol_segments(cfg) == ((0.0, 5e-6, 4.0), (5e-6, 1e-5, -4.0))
    s = compare(cfg, tmp_path, progress=False)
    d = s["directions"]["protocol"]
    assert s["rectification"] is None and s["bias"]["steps"][1]["field_V_per_um"] == -4.0
    chi = s["chi2_per_dof_variance_corrected"]["protocol"]
    assert max(chi["x_br"]) < 2.0 and max(chi["x_v"]) < 2.0, chi
    assert s["front_position_agreement"]["protocol"]["all_within"], s["front_position_agreement"]
    assert d["bias_segments"][1][2] == -4.0
    print("protocol comparison:", json.dumps({"chi2": chi, "front": s["front_position_agreement"]["protocol"]},
                                             default=float))


@pytest.mark.validate
@pytest.mark.filterwarnings("ignore::ionwire.coupling.compare.RegimeWarning")
def test_kmc_and_continuum_agree_on_forward_rest_reverse_on_the_scaled_device(tmp_path):
    """runs/rectify.toml's scaled device (16 x 16 cells, 6 replicas; a few minutes): +54 V/um for
    1.5 ms, rest for 0.5 ms, -54 V/um for 1 ms.  The fronts of both models within 2 sigma at
    every compared time (inside the forward step, at its end, at the end of the rest, at the
    end); the forward step moves the front towards the Br end in both, and during the rest it
    moves by less than a bin in both (it stays: no field, no injection, the composition only
    interdiffuses)."""
    from ionwire.coupling.compare import compare, load_config as load_compare

    bias = _steps((54.0, 1.5e-3), (0.0, 0.5e-3), (-54.0, 1.0e-3))
    m = _protocol_compare_mapping("rectify.toml", bias, [5e-4, 1.5e-3, 2e-3, 3e-3], 6, 16)
    s = compare(load_compare(m), tmp_path, progress=False)
    fa = s["front_position_agreement"]["protocol"]
    print("forward-rest-reverse:", json.dumps(fa, default=float))
    assert fa["all_within"], fa
    kmc, cont = np.asarray(fa["kmc_mean"]), np.asarray(fa["continuum"])
    bin_nm = s["bin_nm"]
    z0 = 0.5 * 0.058e3  # the junction (nm)
    assert kmc[1] < z0 - 2 * bin_nm and cont[1] < z0 - 2 * bin_nm  # forward: towards the Br end
    assert abs(kmc[2] - kmc[1]) < bin_nm and abs(cont[2] - cont[1]) < bin_nm  # the rest: it stays


def test_the_device_command_runs_a_bias_config_and_refuses_two_fields(tmp_path, capsys):
    from ionwire.coupling.cli import main

    text = """
[vacancies]
equilibrium_fraction = {Br = 1e-2}
[geometry]
wire_length_um = 0.0464
contact_width_um = 0.0116
gap_um = 0.0232
[electrodes]
alpha_um_per_V_s = {Br = 1e5, Cl = 3e3}
[kmc]
nx = 6
ny = 6
seed = 2
[output]
frame_interval_s = 1e-9
[bias]
steps = [{field_V_per_um = 4.0, duration_s = 2e-9}, {field_V_per_um = 0.0, duration_s = 1e-9}]
"""
    cfg = tmp_path / "b.toml"
    cfg.write_text(text)
    out = tmp_path / "b.h5"
    assert main(["device", str(cfg), "-o", str(out), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["time_s"] == pytest.approx(3e-9, rel=1e-12) and summary["frames"] == 4
    with open_trajectory(out) as traj:
        v = traj.series("bias_voltage")
        assert v[2] > 0 and v[3] == 0.0
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("seed = 2", "seed = 2\nfield_V_per_um = 4.0"))
    assert main(["device", str(bad), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[bias]" in err and "kmc.field_V_per_um" in err


@pytest.mark.validate
@pytest.mark.filterwarnings("ignore::ionwire.coupling.compare.RegimeWarning")
def test_ac_diode_on_the_scaled_device_kmc_against_continuum(tmp_path):
    """The ionic diode under a zero-mean square wave, checked atomistically: runs/rectify.toml's
    scaled device (16 x 16 cells, 6 replicas), +-54 V/um, period 1 ms, 2 cycles.  Both models
    move the front by a net amount towards the Br end every cycle (forward injection outruns the
    reverse), and the kMC's front agrees with the continuum's within 2 sigma at every half cycle;
    the net migration per cycle of the kMC (mean +- SEM over replicas) is within 2 sigma of the
    continuum's."""
    from ionwire.coupling.compare import compare, load_config as load_compare

    bias = {"square_wave": {"amplitude_V_per_um": 54.0, "period_s": 1e-3, "cycles": 2}}
    times = [5e-4, 1e-3, 1.5e-3, 2e-3]
    m = _protocol_compare_mapping("rectify.toml", bias, times, 6, 16)
    s = compare(load_compare(m), tmp_path, progress=False)
    fa = s["front_position_agreement"]["protocol"]
    print("square wave:", json.dumps(fa, default=float))
    assert fa["all_within"], fa
    kmc, cont = np.asarray(fa["kmc_mean"]), np.asarray(fa["continuum"])
    sigma = np.asarray(fa["sigma"])  # replicas' SEM with the lattice quantisation of the front
    z0 = 0.5 * 0.058e3  # the junction (nm)
    # net migration towards Br (front below the junction) after each full cycle, growing
    net_kmc = z0 - kmc[[1, 3]]
    net_cont = z0 - cont[[1, 3]]
    assert np.all(net_cont > 0) and np.all(net_kmc > 0)
    assert net_cont[1] > net_cont[0] and net_kmc[1] > net_kmc[0]
    per_cycle_kmc, per_cycle_cont = net_kmc[1] / 2, net_cont[1] / 2
    assert abs(per_cycle_kmc - per_cycle_cont) <= 2 * sigma[3] / 2, (per_cycle_kmc, per_cycle_cont, sigma[3])
