"""Every kind of HDF5 file ionwire writes, produced fresh by its own writers: each opens in xarray
(netCDF-4 / CF-style files with named coordinates), and every ``units`` / ``unit`` attribute parses
in pint with the dimensionality its variable needs.  Plus the one continuum result type."""
import json
import re
import tomllib

import h5py
import numpy as np
import pytest
from small_configs import continuum_toml, tiny_device

pint = pytest.importorskip("pint")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

UREG = pint.UnitRegistry()

CONTINUUM = continuum_toml(fields=(-4.0, 4.0))
DEVICE = tiny_device()


def _table():
    from ionwire.structures.onsager import onsager_coefficients
    from ionwire.structures.onsager_table import OnsagerTable

    x = np.linspace(0.1, 0.9, 5)
    lab = np.stack(onsager_coefficients(1e-3 * 0 + (1 - 1e-3) * (1 - x), (1 - 1e-3) * x, 1e-3, 1.0, 0.2, 0.69), -1)
    reps = lab[:, None, :] * (1 + 0.01 * np.random.default_rng(2).standard_normal((5, 4, 3)))
    return OnsagerTable.from_replicas("random_alloy", x, reps, x_v=1e-3, w_per_s=(1.0, 0.2), f0=0.69,
                                      seeds=np.arange(20).reshape(5, 4), events_per_replica=np.full(5, 10),
                                      wall_s=np.ones(5))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{kind: path} of one fresh file of every kind ionwire writes."""
    from ionwire.continuum.experiment import load_config as load_continuum, run_sweep
    from ionwire.coupling import report
    from ionwire.coupling.io import write_report
    from ionwire.kmc.device import load_config as load_device, run_device
    from ionwire.kmc.h5md import checkpoint_path
    from ionwire.structures.onsager_table import write_onsager_tables

    d = tmp_path_factory.mktemp("formats")
    out = {"trajectory": d / "device.h5"}
    run_device(load_device(DEVICE), out["trajectory"])
    out["trajectory_bias"] = d / "device_bias.h5"  # with the protocol time series
    biased = {k: dict(v) for k, v in DEVICE.items()}
    del biased["kmc"]["field_V_per_um"], biased["kmc"]["duration_s"]
    biased["bias"] = {"steps": [{"field_V_per_um": 3.0, "duration_s": 1e-9}, {"field_V_per_um": -3.0, "duration_s": 1e-9}]}
    run_device(load_device(biased), out["trajectory_bias"])
    out["checkpoint"] = type(out["trajectory"])(checkpoint_path(out["trajectory"]))
    out["continuum"] = d / "continuum.h5"
    run_sweep(load_continuum(tomllib.loads(CONTINUUM)), out["continuum"])
    out["onsager_table"] = d / "onsager_table.h5"
    write_onsager_tables(out["onsager_table"], {"random_alloy": _table()}, {"command": "test"})
    edges = np.linspace(0.0, 100.0, 51)
    zc = 0.5 * (edges[1:] + edges[:-1])
    times = np.array([1e-6, 1e-5])
    rng = np.random.default_rng(0)
    truth = 0.5 * (1 - np.tanh((zc[None, :] - np.array([50.0, 45.0])[:, None]) / 4.0))
    kmc = {"x_br": truth + 0.02 * rng.standard_normal((6, 2, zc.size)),
           "x_v": rng.poisson(1.2, (6, 2, zc.size)) / 1200.0}
    cont = {"x_br": truth, "x_v": np.full((2, zc.size), 1e-3)}
    arrays, summary = report.analyse_direction(edges, times, kmc, cont, np.full(zc.size, 1200.0), "left", 0.02585, 4.0)
    arrays["kmc_events"] = np.arange(6)
    arrays["kmc_wall_s"] = np.ones(6)
    out["comparison_report"] = d / "report.h5"
    write_report(out["comparison_report"], {"forward": summary}, {"forward": arrays}, "x = 1\n")
    return out


def _unit_attributes(path):
    """[(object name, attribute name, value)] of every attribute called units or unit."""
    found = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for key, value in obj.attrs.items():
                if key in ("units", "unit"):
                    found.append((name, key, value.decode() if isinstance(value, bytes) else str(value)))
        visit("/", f)
        f.visititems(visit)
    return found


# the unit each variable's unit must be compatible with, by object name (regex)
EXPECTED = [
    (r"(^|/)(position/value|box/edges/value|site_position)$", "m"),
    (r"(^|/)time$", "s"),
    (r"(^|/)(z|z_face|z_edge|front_um|front_kmc_nm|front_continuum_nm|migration_length_um|volume_um|q_v|q_br)$",
     "m"),
    (r"(^|/)(x_br|x_cl|x_v|observables/x_\w+/value|composition|chi2_per_dof_\w+|kmc_events|sites_per_bin"
     r"|(kmc_mean|kmc_sem|kmc_replicas|continuum)_x_\w+|events_per_replica)$", "1"),
    (r"(^|/)(phi_V|observables/potential/value|(kmc_mean|kmc_sem|kmc_replicas|continuum)_phi_V)$", "V"),
    (r"(^|/)(j_v|j_br)$", "m/s"),
    (r"(^|/)l_\w*per_s$", "1/s"),
    (r"(^|/)(wall_s|kmc_wall_s)$", "s"),
    (r"(^|/)field$", "V/m"),
    (r"(^|/)observables/(charge|charge_passed)/value$", "C"),
    (r"(^|/)observables/(front_position|migration_length)/value$", "m"),
    (r"(^|/)observables/bias_voltage/value$", "V"),
    (r"(^|/)observables/ionic_current/value$", "A"),
]


def test_every_unit_attribute_parses_in_pint(files):
    n_checked = 0
    for kind, path in files.items():
        attrs = _unit_attributes(path)
        if kind != "checkpoint":  # the checkpoint holds exact state arrays, no physical annotations
            assert len(attrs) >= 5, (kind, attrs)
        for name, key, unit in attrs:
            try:
                quantity = UREG.parse_expression(unit)
            except Exception as exc:  # pint raises several types
                pytest.fail(f"{kind} {name}@{key} = {unit!r} does not parse in pint: {exc}")
            matches = [ref for pattern, ref in EXPECTED if re.search(pattern, name)]
            assert matches, f"{kind} {name}: a unit attribute the test does not know ({unit!r})"
            assert UREG.Quantity(quantity).is_compatible_with(matches[0]), (kind, name, unit, matches[0])
            n_checked += 1
    assert n_checked >= 40  # the walk really found the files' variables


def test_trajectory_units_follow_the_h5md_units_grammar(files):
    """A sequence of unit factors separated by spaces: at most one leading number, then symbols
    with an optional signed integer power; the units module is declared."""
    factor = r"[A-Za-z]+(-?[1-9][0-9]*)?"
    grammar = re.compile(rf"^(([0-9]+(\.[0-9]+)?)( {factor})*|{factor}( {factor})*)$")
    units = _unit_attributes(files["trajectory"])
    assert {u for _, _, u in units} >= {"s", "angstrom", "V", "e", "1"}
    for name, key, unit in units + _unit_attributes(files["trajectory_bias"]):
        assert key == "unit" and grammar.match(unit), (name, unit)
    assert {u for _, _, u in _unit_attributes(files["trajectory_bias"])} >= {"A", "e", "angstrom", "V"}
    with h5py.File(files["trajectory"], "r") as f:
        assert list(f["h5md/modules/units"].attrs["version"]) == [1, 0]
        assert f["h5md/modules/units"].attrs["system"] == "SI"


def test_xarray_opens_every_kind_with_named_coordinates(files):
    from ionwire.continuum.io import read_result

    ds = xr.open_dataset(files["continuum"], engine="h5netcdf")
    assert ds["field"].values.tolist() == [-4.0, 4.0] and ds["field"].attrs["units"] == "V/um"
    one = xr.open_dataset(files["continuum"], engine="h5netcdf", group="runs/1")
    assert set(one.coords) == {"z", "time", "z_face", "field"} and float(one["field"]) == 4.0
    assert one["x_br"].dims == ("time", "z") and one["j_v"].dims == ("time", "z_face")
    assert one["z"].attrs["units"] == "um" and one["time"].attrs["units"] == "s"
    r = read_result(files["continuum"], 4.0)
    np.testing.assert_array_equal(one["z"].values, r.z_um)
    np.testing.assert_array_equal(one["time"].values, r.times_s)
    np.testing.assert_array_equal(one["phi_V"].values, r.phi_V)

    table = xr.open_dataset(files["onsager_table"], engine="h5netcdf", group="tables/random_alloy")
    assert table["l_replicas_per_s"].dims == ("composition", "replica", "coefficient")
    assert table["l_per_s"].dims == ("composition", "coefficient") and table["seeds"].dims == ("composition", "replica")
    assert table["coefficient"].values.tolist() == ["BrBr", "BrCl", "ClCl"]
    np.testing.assert_allclose(table["composition"].values, np.linspace(0.1, 0.9, 5))
    xr.testing.assert_identical(table.drop_attrs(), _table().to_xarray().drop_attrs())

    rep = xr.open_dataset(files["comparison_report"], engine="h5netcdf", group="forward")
    assert rep["kmc_replicas_x_br"].dims == ("replica", "time", "z") and rep.sizes["replica"] == 6
    assert rep["front_kmc_nm"].dims == ("replica", "time") and rep["z"].attrs["units"] == "nm"

    # the H5MD trajectory and the checkpoint have no dimension scales: xarray opens every group
    for kind in ("trajectory", "checkpoint"):
        tree = xr.open_datatree(files[kind], engine="h5netcdf", phony_dims="access")
        assert len(list(tree.subtree)) > 1
    tree = xr.open_datatree(files["trajectory"], engine="h5netcdf", phony_dims="access")
    assert tree["particles/anions/species"]["value"].shape[0] == 3
    assert tree["observables/x_V"]["value"].attrs["unit"] == "1"


def test_own_readers_still_read_every_kind(files):
    from ionwire.continuum.io import read_results
    from ionwire.coupling.io import read_report
    from ionwire.kmc.h5md import open_trajectory, read_checkpoint
    from ionwire.structures.onsager_table import load_table

    with open_trajectory(files["trajectory"]) as traj:
        assert traj.n_frames == 3
    arrays, attrs = read_checkpoint(files["checkpoint"])
    assert attrs["run_complete"] and len(arrays) > 0
    assert [r.metadata["field_V_per_um"] for r in read_results(files["continuum"])] == [-4.0, 4.0]
    t = load_table(files["onsager_table"], "random_alloy")
    np.testing.assert_array_equal(t.l_replicas_per_s, _table().l_replicas_per_s)
    summary, groups = read_report(files["comparison_report"])
    assert set(groups["forward"]) >= {"z_nm", "z_edges_nm", "times_s", "kmc_replicas_x_br", "front_kmc_nm"}
    assert groups["forward"]["kmc_replicas_x_br"].shape == (6, 2, 50) and summary["forward"]["replicas"] == 6


# ---------------------------------------------------------------------------------------------
# the one continuum result type
# ---------------------------------------------------------------------------------------------
def test_one_continuum_result_in_memory_and_on_disk(tmp_path):
    """A simulated field written and read back is the same class with the same arrays; its repr is
    short; to_xarray() is what xarray reads from the file; plot() draws into a given axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ionwire.continuum import io as cio
    from ionwire.continuum.experiment import load_config, run_field
    from ionwire.continuum.model import WireResult

    assert WireResult is cio.ContinuumResult
    cfg = load_config(tomllib.loads(CONTINUUM))
    res, summary = run_field(cfg, 4.0)
    assert isinstance(res, cio.ContinuumResult)
    path = tmp_path / "one.h5"
    cio.create(path, {"run": "test"})
    cio.append_run(path, res, {"field_V_per_um": 4.0, "summary": summary, "label": "forward"})
    back = cio.read_result(path)
    assert type(back) is type(res)
    for name in ("z_um", "times_s", "x_br", "x_cl", "x_v", "phi_V") + cio._OPTIONAL:
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name), err_msg=name)
    assert back.metadata["label"] == "forward" and back.metadata["summary"]["field_V_per_um"] == 4.0
    text = repr(back)
    assert len(text) < 300 and "field 4 V/um" in text and f"{res.z_um.size} nodes" in text
    assert text.startswith("ContinuumResult(") and "migration length" in text
    assert len(repr(res)) < 300

    mem = res.to_xarray()
    with xr.open_dataset(path, engine="h5netcdf", group="runs/0") as opened:
        disk = opened.load()
    assert set(mem.data_vars) == set(disk.data_vars) and set(mem.coords) == set(disk.coords)
    for name in mem.variables:
        np.testing.assert_array_equal(mem[name].values, disk[name].values, err_msg=name)
        assert mem[name].dims == disk[name].dims
        assert mem[name].attrs.get("units") == disk[name].attrs.get("units"), name
    both = cio.open_dataset(path)
    assert both.sizes["run"] == 1 and both["label"].values.tolist() == ["forward"]

    fig, ax = plt.subplots()
    assert res.plot("x_br", times_s=[0.0, 600.0], ax=ax) is fig
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), res.x_br[-1])
    assert res.plot("x_v").axes[0].get_xlabel() == "z (um)"
    plt.close("all")
    with pytest.raises(ValueError, match="quantity"):
        res.plot("j_v")
    with pytest.raises(ValueError, match="x_br must have shape"):
        cio.append_run(path, {"z_um": res.z_um, "times_s": res.times_s, "x_br": res.x_br[:, :-1]},
                       {"field_V_per_um": 1.0})
    with h5py.File(path, "r") as f:  # a refused run leaves no trace
        assert list(f["runs"]) == ["0"] and f["run"].shape == (1,)
    json.dumps(back.to_xarray().attrs["summary"])  # metadata dicts are kept as JSON strings


def test_files_of_the_first_layouts_are_still_read(tmp_path):
    """Version 1 continuum results, Onsager tables and reports (no dimension scales, z_um /
    x_cl / z_nm names) keep reading through ionwire's readers."""
    from ionwire.continuum.io import read_result
    from ionwire.coupling.io import read_report
    from ionwire.structures.onsager_table import load_table

    z, t = np.linspace(0.0, 2.0, 5), np.array([0.0, 10.0])
    x_br = np.tile(np.linspace(1.0, 0.0, 5), (2, 1))
    with h5py.File(tmp_path / "c1.h5", "w") as f:
        f.attrs.update({"schema": "ionwire-continuum", "version": 1, "config": "{}", "calibrated": "{}"})
        g = f.create_group("runs/0")
        for k, v in {"z_um": z, "times_s": t, "x_br": x_br, "x_cl": 1 - x_br, "x_v": 0 * x_br,
                     "phi_V": 0 * x_br, "front_um": np.array([1.0, 0.9])}.items():
            g[k] = v
        g.attrs.update({"field_V_per_um": 2.0, "complete": True})
    r = read_result(tmp_path / "c1.h5")
    assert r.field_V_per_um == 2.0 and np.array_equal(r.z_um, z) and np.array_equal(r.front_um, [1.0, 0.9])
    assert r.j_v is None and "field 2 V/um" in repr(r)

    table = _table()
    with h5py.File(tmp_path / "t1.h5", "w") as f:
        f.attrs.update({"schema": "ionwire.onsager_table", "schema_version": 1, "complete": True})
        f.create_group("provenance").attrs["command"] = "old"
        g = f.create_group("tables/random_alloy")
        g.attrs.update({"preset": "random_alloy", "x_v": 1e-3, "w_Br_per_s": 1.0, "w_Cl_per_s": 0.2, "f0": 0.69,
                        "material_json": "{}"})
        for k in ("x_cl", "l_per_s", "l_err_per_s", "l_replicas_per_s", "seeds", "events_per_replica", "wall_s"):
            g[k] = getattr(table, k)
    np.testing.assert_array_equal(load_table(tmp_path / "t1.h5", "random_alloy").l_per_s, table.l_per_s)

    with h5py.File(tmp_path / "r1.h5", "w") as f:
        f.attrs.update({"schema": "ionwire.comparison_report", "schema_version": 1, "summary_json": "{}"})
        g = f.create_group("forward")
        g["z_nm"], g["times_s"] = np.arange(3.0), np.array([1e-6])
        g.attrs["field_V_per_um"] = 4.0
    _, groups = read_report(tmp_path / "r1.h5")
    assert groups["forward"]["z_nm"].tolist() == [0.0, 1.0, 2.0] and groups["forward"]["field_V_per_um"] == 4.0


def test_onsager_table_repr_is_short_and_to_xarray_names_its_axes():
    t = _table()
    text = repr(t)
    assert text.startswith("OnsagerTable('random_alloy', 5 compositions") and "4 replicas" in text and len(text) < 200
    ds = t.to_xarray()
    assert ds["l_replicas_per_s"].dims == ("composition", "replica", "coefficient")
    np.testing.assert_array_equal(ds["l_per_s"].sel(coefficient="BrCl").values, t.l_per_s[:, 1])
    assert ds["l_per_s"].attrs["units"] == "1/s"
