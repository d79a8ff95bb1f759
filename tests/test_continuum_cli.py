"""`ionwire continuum`, the experiment API and the HDF5 results (small, fast configs)."""
import json

import h5py
import numpy as np
import pytest

from ionwire.continuum import io as cio
from ionwire.continuum.experiment import (ContinuumRun, bind, expand, load_config, run_point, summarize)
from ionwire.structures.parameters import ParameterError
from ionwire.coupling.cli import main
from small_configs import continuum_toml

SMALL = continuum_toml()


def test_cli_json_and_hdf5(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "out.h5"
    assert main(["continuum", str(cfg), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("field_V_per_um", "migration_length_um", "rectification_ratio", "cl_uptake", "calibrated", "wall_s"):
        assert key in summary
    assert summary["field_V_per_um"] == [-4.0, 0.0, 4.0]
    l_fwd, l_rev = summary["migration_length_um"][2], summary["migration_length_um"][0]
    assert l_fwd > 0 > l_rev  # forward moves towards Br, reverse towards Cl
    assert summary["rectification_ratio"] == pytest.approx(l_fwd / abs(l_rev))
    assert summary["calibrated"] == {}
    assert (tmp_path / "out_fig1e.png").stat().st_size > 1000
    r = cio.read_result(out, 4.0)
    nt, nz = r.x_br.shape
    assert r.z_um.shape == (nz,) and r.times_s.shape == (nt,) and r.phi_V.shape == (nt, nz)
    assert r.x_v.shape == (nt, nz) and r.times_s[0] == 0.0 and r.times_s[-1] == pytest.approx(600.0)
    np.testing.assert_allclose(r.x_br + r.x_cl + r.x_v, 1.0, atol=1e-12)
    assert r.metadata["migration_length_um"] == pytest.approx(l_fwd)
    assert [r.field_V_per_um for r in cio.read_results(out)] == [-4.0, 0.0, 4.0]
    assert cio.read_result(out).field_V_per_um == -4.0


def test_cli_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(SMALL.replace("[numerics]", "[numerics]\nspeed = 3"))
    assert main(["continuum", str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "numerics.speed" in err[0]
    cfg.write_text(SMALL.replace("[numerics]", "[geometry]\nwire_length_um = -3.0\n[numerics]"))
    assert main(["continuum", str(cfg)]) == 2
    assert "geometry.wire_length_um" in capsys.readouterr().err
    assert main(["continuum", str(tmp_path / "missing.toml")]) == 2


def test_read_result_rejects_bad_files(tmp_path):
    with pytest.raises(cio.ResultFileError, match="nope.h5"):
        cio.read_result(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(cio.ResultFileError, match="junk.h5"):
        cio.read_result(junk)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["schema"] = "something-else"
    with pytest.raises(cio.ResultFileError, match="foreign.h5"):
        cio.read_result(foreign)
    empty = tmp_path / "empty.h5"
    cio.create(empty, {})
    with pytest.raises(cio.ResultFileError, match="no complete run"):
        cio.read_result(empty)
    # a truncated copy of a real file
    good = tmp_path / "good.h5"
    cio.create(good, {})
    cio.append_run(good, {"z_um": np.arange(3.0), "times_s": np.arange(2.0), "x_br": np.ones((2, 3)),
                          "x_cl": np.zeros((2, 3)), "x_v": np.zeros((2, 3)), "phi_V": np.zeros((2, 3))},
                   {"field_V_per_um": 1.0})
    assert cio.read_result(good).field_V_per_um == 1.0
    data = good.read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(cio.ResultFileError, match="trunc.h5"):
        cio.read_result(trunc)


def test_run_type_protocol(tmp_path):
    """The campaign layer's view: load -> bind -> expand -> run -> reduce."""
    import tomllib

    cfg = ContinuumRun.load(tomllib.loads(SMALL))
    with pytest.raises(ParameterError, match="run"):
        load_config({"run": "device"})
    record = {"alpha_Br_um_per_V_s": {"value": 2e-5}, "alpha_Cl_um_per_V_s": {"value": 1e-6}}
    bound = bind(cfg, record)
    assert bound.electrodes.alphas_um_per_V_s[0] == 2e-5 and bound.electrodes.alphas_um_per_V_s[1] == 1e-6
    points = ContinuumRun.expand(bound)
    assert points == expand(bound) == [{"field_V_per_um": -4.0}, {"field_V_per_um": 0.0}, {"field_V_per_um": 4.0}]
    res = ContinuumRun.run(bound, points[2], tmp_path)
    json.dumps(res)
    assert (tmp_path / "continuum.h5").exists() and res["migration_length_um"] > 0
    out = summarize(bound, points[2:], [res])
    assert out["migration_length_um"] == [res["migration_length_um"]]
    assert out["calibrated"]["alpha_Br_um_per_V_s"]["value"] == 2e-5


def test_paper_figures_small(tmp_path):
    """The --paper-figures path on a tiny config: every figure and its data are written, and the
    physics statements hold qualitatively (no sources: no motion; S16 sensitivity)."""
    import tomllib

    from ionwire.continuum.figures import paper_figures

    cfg = load_config(tomllib.loads(SMALL.replace("duration_s = 600.0", "duration_s = 1800.0")))
    out = paper_figures(cfg, tmp_path)
    for name in ("fig2b", "fig2d", "fig3a", "fig3b", "figS10", "figS16"):
        assert (tmp_path / out["files"][name].split("/")[-1]).stat().st_size > 1000
    assert len(cio.read_results(tmp_path / "paper_figures.h5")) == 12 + 5 + 4
    s10 = out["figS10_no_sources_L_um"]
    assert abs(s10["+4"]) < 0.01 * out["fig2_forward_L_um"]["+4"]
    s16 = out["figS16_L_um"]
    assert s16["positive_factor"]["2"] > 1.5 * s16["positive_factor"]["1"]
    assert abs(s16["negative_factor"]["2"] - s16["negative_factor"]["1"]) < 0.01 * s16["negative_factor"]["1"]


def test_onsager_table_callable_matches_theory():
    """A table passed as a callable l_ab(x_Cl) (what coupling passes) reproduces the theory run."""
    from ionwire.continuum.model import Numerics, default_f0, simulate_wire
    from ionwire.structures.onsager import onsager_coefficients
    from ionwire.structures.parameters import DeviceParameters

    p = DeviceParameters()
    w = p.material.jump_frequencies_per_s()
    f0 = default_f0()[0]
    num = Numerics(n_nodes=120, n_outputs=5)
    a = simulate_wire(p, 3.0, 900.0, num, f0=f0)
    b = simulate_wire(p, 3.0, 900.0, num,
                      onsager=lambda x: onsager_coefficients(1 - x, x, 0.0, w["Br"], w["Cl"], f0))
    # (the callable table takes its end-member values from x_Cl = 0.001 and 0.999: tiny differences)
    np.testing.assert_allclose(b.x_br, a.x_br, atol=1e-5)
    np.testing.assert_allclose(b.x_v, a.x_v, rtol=1e-3, atol=1e-6 * a.x_v.max())


def test_cli_reports_solver_breakdown_in_one_line(tmp_path, capsys):
    """Without a vacancy sink the dilute model breaks down: one clear line, exit status 2."""
    cfg = tmp_path / "inert.toml"
    cfg.write_text(SMALL.replace("[numerics]", "[electrodes]\nnegative_electrode = \"inert\"\n[numerics]")
                   .replace("[-4.0, 0.0, 4.0]", "[4.0]"))
    assert main(["continuum", str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pile up" in err[0]


def _reversed_mapper(calls):
    """A mapper with map() semantics that evaluates its items last-to-first (and records them)."""
    def mapper(fn, iterable):
        items = list(iterable)
        calls.append([float(e) for _, e in items])
        return reversed([fn(x) for x in reversed(items)])
    return mapper


def test_runs_and_calibration_go_through_the_given_mapper():
    import tomllib

    from ionwire.continuum.experiment import calibrate, map_fields

    cfg = load_config(tomllib.loads(SMALL))
    calls, seen = [], []
    summaries = map_fields(cfg, [-4.0, 0.0, 4.0], _reversed_mapper(calls), lambda a, s: seen.append(s["field_V_per_um"]))
    # the mapper got the expensive (forward) field first; results and callbacks in the given order
    assert calls == [[4.0, -4.0, 0.0]]
    assert [s["field_V_per_um"] for s in summaries] == seen == [-4.0, 0.0, 4.0]
    serial = map_fields(cfg, [-4.0, 0.0, 4.0])
    assert [s["migration_length_um"] for s in serial] == [s["migration_length_um"] for s in summaries]
    # one calibration iteration: its two target fields go to the mapper together
    one = load_config(dict(tomllib.loads(SMALL), calibration={"enabled": True, "max_iterations": 1}))
    calls.clear()
    record = calibrate(one, _reversed_mapper(calls))
    assert calls == [[2.0, -4.0]] and record["iterations"] == 1
    assert record["alpha_Br_um_per_V_s"]["achieved_um"] == record["history"][0]["L_forward_um"]


def test_a_process_pool_mapper_gives_the_serial_results():
    # the local process pool of the campaign layer as the mapper: same numbers as in-process
    import tomllib

    from ionwire.continuum.experiment import map_fields
    from ionwire.coupling.campaign import local_mapper

    cfg = load_config(tomllib.loads(SMALL))
    serial = map_fields(cfg, [-4.0, 4.0])
    with local_mapper(2) as mapper:
        assert mapper is not map
        pooled = map_fields(cfg, [-4.0, 4.0], mapper)
    for a, b in zip(serial, pooled):
        assert a["migration_length_um"] == b["migration_length_um"] and a["steps"] == b["steps"]


def test_fig1e_marks_come_from_the_config_and_the_paper_module():
    import tomllib

    from ionwire.continuum.experiment import fig1e_figure
    from ionwire.structures import paper

    cfg = load_config(dict(tomllib.loads(SMALL), duration_s=1800.0,
                           calibration={"forward_field_V_per_um": 1.0, "forward_length_um": 0.3}))
    cfg = bind(cfg, {"alpha_Br_um_per_V_s": {"value": 2e-5}, "alpha_Cl_um_per_V_s": {"value": 1e-6}})
    points = expand(cfg)
    fake = [{"field_V_per_um": p["field_V_per_um"], "migration_length_um": 0.1 * p["field_V_per_um"],
             "cl_uptake": 0.0, "cl_uptake_window": 0.0, "front_width_um": 0.0, "wall_s": 0.0} for p in points]
    out = summarize(cfg, points, fake)
    assert out["duration_s"] == 1800.0
    assert out["calibration_targets"] == [[1.0, 0.3], [-4.0, paper.CALIBRATION_REVERSE.value]]
    fig = fig1e_figure(out)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    target = lines["calibration targets (|L|)"]
    assert list(target.get_xdata()) == [1.0, -4.0] and list(target.get_ydata()) == [0.3, 0.05]
    mark = next(ln for label, ln in lines.items() if label.startswith("paper mobility"))
    # mu E t for half an hour at 4 V/um: 0.98 um / 8
    assert mark.get_ydata()[0] == pytest.approx(paper.FORWARD_LENGTH_4H.value / 8, rel=0.01)
    assert "after 0.5 h" in ax.get_ylabel()
    # without a fit no targets are drawn
    plain = summarize(load_config(tomllib.loads(SMALL)), points, fake)
    assert plain["calibration_targets"] == []
    ax = fig1e_figure(plain).axes[0]
    assert "calibration targets (|L|)" not in [ln.get_label() for ln in ax.get_lines()]
    assert "after 0.167 h" in ax.get_ylabel()  # 600 s
    # a notebook's axes: drawn into, that figure returned
    import matplotlib.pyplot as plt

    from ionwire.continuum.fig1e_panels import fig1e_pair_figure

    given, own = plt.subplots()
    assert fig1e_figure(plain, ax=own) is given and own.get_lines()
    pred = {"field_V_per_um": [-4.0, 4.0], "migration_length_um": [-0.02, 1.0], "rectification_ratio": 50.0,
            "reverse_sign": -1, "alpha_Br_um_per_V_s": 2.6e-5, "alpha_Cl_um_per_V_s": 7.6e-7}
    pair_fig, pair = plt.subplots(1, 2)
    assert fig1e_pair_figure(dict(plain, prediction_paper_alphas=pred), axes=pair) is pair_fig
    model = next(ln for ln in pair[0].get_lines() if ln.get_label() == "continuum model (signed L)")
    assert list(model.get_ydata()) == [-0.02, 1.0]
    plt.close("all")


def test_campaign_calibrates_on_its_own_pool(tmp_path, monkeypatch):
    # ionwire campaign: prepare() (the calibration) receives the map of the campaign's process
    # pool, and gives the fit of the serial calibration
    import tomllib

    from ionwire.continuum import experiment
    from ionwire.continuum.experiment import calibrate
    from ionwire.coupling import campaign as cp

    mappers = []

    def recording_prepare(cfg, mapper=map):
        mappers.append(mapper)
        return calibrate(cfg, mapper)

    monkeypatch.setattr(experiment.ContinuumRun, "prepare", staticmethod(recording_prepare))

    text = SMALL.replace("enabled = false", "enabled = true\nmax_iterations = 1").replace("[-4.0, 0.0, 4.0]", "[4.0]")
    path = tmp_path / "cal.toml"
    path.write_text(text)
    rep = cp.run_campaign(cp.load_spec(path), tmp_path / "out", workers=2, progress=False)
    assert not rep.failed
    assert len(mappers) == 1 and isinstance(getattr(mappers[0], "__self__", None), cp.LocalPool)
    prepared = json.loads((tmp_path / "out" / "prepare.json").read_text())["prepared"]
    serial = calibrate(load_config(tomllib.loads(text)))
    assert prepared["iterations"] == serial["iterations"] == 1
    assert prepared["alpha_Br_um_per_V_s"]["value"] == serial["alpha_Br_um_per_V_s"]["value"]
    assert prepared["alpha_Cl_um_per_V_s"]["achieved_um"] == serial["alpha_Cl_um_per_V_s"]["achieved_um"]
