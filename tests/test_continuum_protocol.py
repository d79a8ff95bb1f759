"""Bias protocols in the continuum model (continuum/protocol.py), the PL kymograph (continuum/pl.py)
and `ionwire continuum` / `ionwire pl` with [bias] configs (small meshes, short protocols)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ionwire.continuum.experiment import load_config
from ionwire.continuum.io import ContinuumResult, read_results
from ionwire.continuum.model import Numerics, bias_arrays, simulate_wire, wire_problem
from ionwire.continuum.pl import (HC_EV_NM, blur, cl_fraction_from_wavelength, kymograph, pl_peak_wavelength_nm)
from ionwire.continuum.protocol import (net_migration_per_cycle, protocol_intervals, restart_times,
                                        simulate_protocol)
from ionwire.coupling.cli import main
from ionwire.structures.bias import BiasProtocol
from ionwire.structures.errors import ParameterError
from ionwire.structures.parameters import DeviceParameters

P = DeviceParameters()
NUM = Numerics(n_nodes=160, n_outputs=8, rtol=1e-4)


def _run(protocol, num=NUM):
    return simulate_protocol(P, protocol, num)


def test_two_equal_steps_equal_the_constant_bias():
    """Restarting the integrator at a switch that changes nothing leaves the run unchanged
    within the integrator tolerance (rtol = 1e-4, on profiles and front)."""
    a = _run(BiasProtocol.steps([(4.0, 900.0), (4.0, 900.0)]))
    b = _run(BiasProtocol.constant(4.0, 1800.0))
    assert a.metadata["solver_restarts"] == 1 and b.metadata["solver_restarts"] == 0
    la, lb = a.migration_length_um[-1], b.migration_length_um[-1]
    assert lb > 0.05  # the front moved: a real comparison
    assert abs(la - lb) <= NUM.rtol * lb
    assert np.max(np.abs(a.x_br[-1] - b.x_br[-1])) < 10 * NUM.rtol
    # and a constant run of the old code path (simulate_wire, log-spaced outputs) agrees too
    from ionwire.continuum.observables import migration_lengths_um

    c = simulate_wire(P, 4.0, 1800.0, NUM)
    lc = migration_lengths_um(c.z_um, c.x_br, P.geometry.junction_um)[-1]
    assert abs(lc - lb) <= 10 * NUM.rtol * lb


def test_zero_amplitude_wave_is_rest():
    wave = _run(BiasProtocol.square_wave(0.0, 600.0, 2))
    rest = _run(BiasProtocol.constant(0.0, 1200.0))
    assert np.all(wave.applied_field == 0.0) and wave.metadata["solver_restarts"] == 3
    assert abs(wave.migration_length_um[-1] - rest.migration_length_um[-1]) < 1e-6
    assert np.max(np.abs(wave.x_br[-1] - rest.x_br[-1])) < 10 * NUM.rtol
    # no electrode reactions at zero field; the only current is the relaxation of the initial step
    forward = _run(BiasProtocol.constant(4.0, 1200.0))
    assert abs(wave.charge_passed[-1] - rest.charge_passed[-1]) < 1e-4 * forward.charge_passed[-1]
    assert abs(rest.charge_passed[-1]) < 1e-2 * forward.charge_passed[-1]


def test_polarity_switch_moves_the_positive_electrode():
    """The positive (vacancy-depleted) electrode follows the sign of the field: its contact has
    r_d off (r_d_form irreversible_at_positive) and, after a half-cycle, x_V below x_V^eq."""
    mesh = wire_problem(P, 1.0, NUM).mesh
    (l0, l1), (r0, r1) = P.geometry.contacts_um()
    left = (mesh.z_um > l0 + 1e-9) & (mesh.z_um < l1 - 1e-9)
    right = (mesh.z_um > r0 + 1e-9) & (mesh.z_um < r1 - 1e-9)
    for e, pos, neg in ((4.0, left, right), (-4.0, right, left)):
        _, psi_d, fac, rd_on, _ = bias_arrays(P, mesh, e)
        assert np.all(rd_on[pos] == 0.0) and np.all(rd_on[neg] == 1.0)
        assert np.all(fac[pos] == pytest.approx(4.0 * P.electrodes.positive_electrode_factor))
        il = mesh.index_of(P.geometry.imposed_positions_um()[0])
        assert psi_d[il] * e > 0 and psi_d.sum() == pytest.approx(0.0)  # the left contact is at +U/2
    wave = _run(BiasProtocol.square_wave(4.0, 1200.0, 1))
    xeq = P.vacancies.equilibrium_fraction(P.material, 0.0), P.vacancies.equilibrium_fraction(P.material, 1.0)
    i_half = int(np.argmin(np.abs(wave.times_s - 600.0)))
    assert wave.applied_field[i_half] == 4.0 and wave.applied_field[-1] == -4.0
    # forward: the left (Br) contact depleted below x_V^eq, the right one not; reverse: the other way
    assert wave.x_v[i_half][left].mean() < xeq[0] and wave.x_v[i_half][left].min() < 0.1 * xeq[0]
    assert wave.x_v[i_half][right].mean() > xeq[1]
    assert wave.x_v[-1][right].mean() < xeq[1] and wave.x_v[-1][right].min() < 0.1 * xeq[1]
    assert wave.x_v[-1][left].mean() > wave.x_v[i_half][left].mean()
    assert wave.current_gap[i_half] > 0 > wave.current_gap[-1]


def test_first_half_of_a_wave_is_the_constant_bias_and_the_diode_rectifies():
    """The first half-cycle is a constant bias: the wave and the constant run differ by the
    integrator's global error, so the difference shrinks with the tolerance (rtol 1e-4 -> 1e-6;
    the output grids differ, so the steps do too)."""
    fine_num = Numerics(n_nodes=160, n_outputs=8, rtol=1e-6)
    diffs = []
    for num in (NUM, fine_num):
        wave1 = _run(BiasProtocol.square_wave(4.0, 1800.0, 1), num)
        const = _run(BiasProtocol.constant(4.0, 900.0), num)
        i = int(np.argmin(np.abs(wave1.times_s - 900.0)))
        assert wave1.times_s[i] == 900.0
        diffs.append(abs(wave1.migration_length_um[i] - const.migration_length_um[-1]))
    assert diffs[0] < 1e-3 * const.migration_length_um[-1]
    assert diffs[1] < 0.1 * diffs[0]
    wave = _run(BiasProtocol.square_wave(4.0, 1800.0, 2))
    ac = net_migration_per_cycle(wave, BiasProtocol.square_wave(4.0, 1800.0, 2))
    assert ac["net_migration_per_cycle_um"] > 0  # zero-mean field, net motion towards Br
    assert ac["first_half_change_um"] > 20 * abs(ac["second_half_change_um"])


def test_ramp_converges_to_its_step_approximation():
    """A ramp (time in the assembly) against its piecewise-constant approximations with midpoint
    fields: the difference shrinks at least ~linearly as the step halves."""
    ramp = BiasProtocol.ramp(0.0, 4.0, 4.0 / 1200.0)
    ref = _run(ramp).migration_length_um[-1]
    assert ref > 0.02
    diffs = []
    for n in (2, 4, 8):
        steps = BiasProtocol.steps([(e, b - a) for a, b, e in ramp.piecewise_constant(1200.0 / n)])
        diffs.append(abs(_run(steps).migration_length_um[-1] - ref))
    assert diffs[0] > diffs[1] > diffs[2]
    assert diffs[0] / diffs[2] > 3.0
    assert diffs[2] < 0.01 * ref


def test_triangle_restarts_at_zero_crossings_and_iv_follows_the_voltage(tmp_path):
    tri = BiasProtocol.triangle(4.0, 4.0 / 300.0, 1)
    assert restart_times(tri) == pytest.approx((300.0, 600.0, 900.0))  # vertex, zero crossing, vertex
    assert len(protocol_intervals(tri)) == 4
    res = _run(tri)
    big = np.abs(res.applied_field) > 1.0
    assert np.all(np.sign(res.current_gap[big]) == np.sign(res.applied_field[big]))
    # rectification in the loop: the forward current exceeds the reverse one at the same |E|
    assert res.current_gap.max() > 3 * abs(res.current_gap.min())
    from ionwire.continuum.protocol import plot_iv

    plot_iv(res, tmp_path / "iv.png")
    assert (tmp_path / "iv.png").stat().st_size > 1000
    # a notebook's axes: drawn into, the figure returned (also the PL kymograph's)
    import matplotlib.pyplot as plt

    from ionwire.continuum.pl import plot_kymograph

    fig, ax = plt.subplots()
    assert plot_iv(res, ax=ax) is fig and len(ax.collections) == 1
    fig2, ax2 = plt.subplots()
    (ky,) = plot_kymograph([res], axes=[ax2])
    assert ax2.collections and ky["wavelength_nm"].shape == (res.times_s.size, ky["z_um"].size)
    plt.close("all")


# --------------------------------------------------------------------------------------------
# configs and the command line
# --------------------------------------------------------------------------------------------
BASE = """
run = "continuum"
workers = 1
[numerics]
n_nodes = 120
n_outputs = 6
[calibration]
enabled = false
"""


def test_config_grammar_and_conflicts():
    import tomllib

    cfg = load_config(tomllib.loads(BASE + """
[bias]
steps = [{field_V_per_um = 4.0, duration_s = 7200.0}, {field_V_per_um = 0.0, duration_s = 3600.0}]
"""))
    assert cfg.bias.total_duration_s == 10800.0 and cfg.bias.switch_times() == (7200.0,)
    for extra, message in (("duration_s = 100.0\n", "old-style duration_s"),
                           ("[sweep]\nfield_V_per_um = [1.0, 2.0]\n", "old-style sweep.field_V_per_um"),
                           ("[sweep]\nbias.square_wave.period_s = [1.0]\n", "no \\[bias.square_wave\\]")):
        bias = "[bias]\nfield_V_per_um = 1.0\nduration_s = 10.0\n"
        text = extra + BASE + bias if extra.startswith("duration_s") else BASE + bias + extra
        with pytest.raises(ParameterError, match=message):
            load_config(tomllib.loads(text))
    with pytest.raises(ParameterError, match="needs its duration_s"):
        load_config(tomllib.loads(BASE + "[bias]\nfield_V_per_um = 1.0\n"))


def test_cli_bias_config_json_hdf5_and_pl(tmp_path, capsys):
    cfg = tmp_path / "proto.toml"
    cfg.write_text(BASE + """
[bias]
steps = [{field_V_per_um = 4.0, duration_s = 1200.0}, {field_V_per_um = 0.0, duration_s = 600.0}]
""")
    out = tmp_path / "proto.h5"
    assert main(["continuum", str(cfg), "-o", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["field_V_per_um"] == [4.0] and len(s["migration_length_um"]) == 1
    assert s["migration_length_um"][0] > 0
    rows = s["per_run"][0]["intervals"]
    assert [r["field_V_per_um"] for r in rows] == [4.0, 0.0]
    assert rows[0]["change_um"] > 0 and rows[1]["charge_passed_C_per_m2"] == pytest.approx(0.0, abs=1e-3)
    assert (tmp_path / "proto_bias.png").stat().st_size > 1000
    assert (tmp_path / "proto_kymograph.png").stat().st_size > 1000
    (res,) = read_results(out)
    import h5py

    with h5py.File(out) as f:
        g = f["runs/0"]
        assert g["current_gap"].attrs["units"] in ("A/m2", b"A/m2") and g["charge_passed"].attrs["units"] in ("C/m2", b"C/m2")
        assert g["applied_field"].dims[0][0].name.endswith("time")
    assert res.applied_field[-1] == 0.0 and res.charge_passed[-1] > 0
    png = tmp_path / "k.png"
    assert main(["pl", str(out), "-o", str(png), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert png.stat().st_size > 1000 and info["runs"] == [0]
    assert info["green_length_um"][0][1] < info["green_length_um"][0][0]  # the green segment got shorter
    assert main(["pl", str(out), "-o", str(png), "--run", "3", "--overwrite"]) == 2
    assert "run 3" in capsys.readouterr().err


def test_cli_sweep_over_bias_entries(tmp_path, capsys):
    cfg = tmp_path / "two.toml"
    cfg.write_text(BASE + """
[bias]
field_V_per_um = 4.0
duration_s = 600.0
[sweep]
bias.field_V_per_um = [4.0, -4.0]
""")
    out = tmp_path / "two.h5"
    assert main(["continuum", str(cfg), "-o", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["field_V_per_um"] == [4.0, -4.0]
    lf, lr = s["migration_length_um"]
    assert lf > 0 and abs(lr) < lf / 5  # rectification


# --------------------------------------------------------------------------------------------
# PL
# --------------------------------------------------------------------------------------------
def test_pl_relation_end_points_and_linear_energy():
    assert pl_peak_wavelength_nm(0.0) == pytest.approx(526.0)
    assert pl_peak_wavelength_nm(1.0) == pytest.approx(420.0)
    mid = HC_EV_NM / (0.5 * (HC_EV_NM / 526.0 + HC_EV_NM / 420.0))
    assert pl_peak_wavelength_nm(0.5) == pytest.approx(mid)
    y = np.linspace(0, 1, 11)
    assert cl_fraction_from_wavelength(pl_peak_wavelength_nm(y)) == pytest.approx(y)
    assert cl_fraction_from_wavelength(pl_peak_wavelength_nm(y, 0.2), 0.2) == pytest.approx(y)
    assert pl_peak_wavelength_nm(0.5, bowing_eV=0.2) > mid  # bowing lowers the gap


def test_psf_blur_of_a_step_has_the_gaussian_width():
    """A step blurred by a Gaussian of sigma has a 10-90 % width of 2 * 1.2816 sigma."""
    z = np.linspace(0.0, 10.0, 2001)
    step = np.where(z < 5.0, 0.0, 1.0)
    zg, b = blur(z, step, psf_fwhm_um=0.3, dz_um=0.002)
    sigma = 0.3 / (2 * math.sqrt(2 * math.log(2)))
    w = np.interp(0.9, b, zg) - np.interp(0.1, b, zg)
    assert w == pytest.approx(2 * 1.2815516 * sigma, rel=0.02)
    zg, flat = blur(z, np.full_like(z, 0.3))
    assert np.allclose(flat, 0.3)  # no darkening at the ends
    with pytest.raises(ParameterError, match="psf_fwhm_um"):
        blur(z, step, psf_fwhm_um=0.0)


def test_kymograph_of_a_synthetic_result():
    z = np.linspace(0, 10, 501)
    t = np.array([0.0, 1.0])
    xb = np.stack([np.where(z < 5, 1.0, 0.0), np.where(z < 4, 1.0, 0.0)])
    res = ContinuumResult(z, t, xb, 1 - xb, np.zeros_like(xb), np.zeros_like(xb))
    ky = kymograph(res)
    assert ky["wavelength_nm"].shape == (2, ky["z_um"].size)
    assert ky["green_length_um"] == pytest.approx([5.0, 4.0], abs=0.03)
    assert ky["wavelength_nm"][0, 0] == pytest.approx(526.0) and ky["wavelength_nm"][0, -1] == pytest.approx(420.0)


@pytest.mark.parametrize("name, n_points, kind", [("fig1d.toml", 2, "constant"), ("reversal.toml", 1, "steps"),
                                                  ("ac_diode.toml", 12, "square_wave")])
def test_shipped_bias_configs_load_and_expand(name, n_points, kind):
    from pathlib import Path

    from ionwire.coupling import campaign as cp
    from ionwire.continuum.protocol import protocol_of

    path = Path(__file__).resolve().parent.parent / "runs" / name
    spec = cp.load_spec(path)
    assert len(spec.points) == n_points and spec.config.bias.kind == kind
    protocols = [protocol_of(spec.config.bias, rp.point) for rp in spec.points]
    assert len({p.to_mapping().__repr__() for p in protocols}) == n_points
    if name == "ac_diode.toml":
        assert all(p.field_integral(0.0, p.total_duration_s) == pytest.approx(0.0, abs=1e-9) for p in protocols)
    if name == "fig1d.toml":
        assert [p.field_at(0.0) for p in protocols] == [4.0, -4.0]
        assert {p.total_duration_s for p in protocols} == {28800.0}


def test_square_wave_campaign_run_and_reduce(tmp_path):
    """The campaign path of runs/ac_diode.toml (ContinuumRun.expand / run / reduce) on a small
    mesh: one HDF5 file per point, net migration per cycle against frequency, csv and figure."""
    import csv
    import tomllib

    from ionwire.continuum.experiment import ContinuumRun

    cfg = load_config(tomllib.loads(BASE + """
[bias.square_wave]
amplitude_V_per_um = 4.0
period_s = 100.0
cycles = 2
[sweep]
bias.square_wave.period_s = [60.0, 240.0]
"""))
    points = ContinuumRun.expand(cfg)
    assert points == [{"bias.square_wave.period_s": 60.0}, {"bias.square_wave.period_s": 240.0}]
    results = []
    for k, pt in enumerate(points):
        folder = tmp_path / f"run{k}"
        folder.mkdir()
        results.append(ContinuumRun.run(cfg, pt, folder))
        (res,) = read_results(folder / results[-1]["h5"])
        assert res.applied_field.max() == 4.0 and res.applied_field.min() == -4.0
    out = ContinuumRun.reduce(cfg, points, results, tmp_path)
    net = out["ac"]["net_migration_per_cycle_um"]
    assert out["ac"]["period_s"] == [60.0, 240.0] and all(n > 0 for n in net)
    assert net[1] > 2 * net[0]  # a longer forward half-cycle moves the front further per cycle
    rows = list(csv.DictReader(open(tmp_path / "ac_diode.csv")))
    assert [float(r["net_migration_per_cycle_um"]) for r in rows] == pytest.approx(net)
    import matplotlib.pyplot as plt

    from ionwire.continuum.protocol import plot_ac, plot_protocols

    fig, ax = plt.subplots()
    assert plot_ac(out, ax=ax) is fig and len(ax.lines) >= 2
    fig3, axes = plt.subplots(3, 1)
    assert plot_protocols(out, axes=axes) is fig3 and len(axes[0].lines) == 2  # one line per run
    plt.close("all")
    assert (tmp_path / "ac_diode.png").stat().st_size > 1000 and "AC diode" in out["headline"]
    assert ContinuumRun.fingerprint(cfg)["bias"] == {"square_wave": {"amplitude_V_per_um": 4.0, "cycles": 2,
                                                                     "duty": 0.5, "offset_V_per_um": 0.0,
                                                                     "period_s": 100.0}}
