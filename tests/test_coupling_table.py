"""Onsager table: PSD-preserving interpolation, exact end-member limits, HDF5 round trip."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionwire.structures.onsager import onsager_coefficients
from ionwire.structures.parameters import ParameterError
from ionwire.coupling.io import CouplingFileError
from ionwire.structures.onsager_table import OnsagerTable, load_table, make_interpolator, tables_from_file

F0_SYNTHETIC = 0.65  # any f0 in (0, 1) serves these interpolation tests


def _maa(x, w_br=1.0, w_cl=0.2, c_v=1e-3, f0=F0_SYNTHETIC):
    x = np.asarray(x, dtype=float)
    l = onsager_coefficients((1 - c_v) * (1 - x), (1 - c_v) * x, c_v, w_br, w_cl, f0)
    return np.stack(l, axis=-1)


def _table(x, l, err=None, **kw):
    err = np.full_like(l, 1e-3) if err is None else err
    return OnsagerTable(preset="random_alloy", x_cl=x, l_per_s=l, l_err_per_s=err, x_v=1e-3,
                        w_per_s=(1.0, 0.2), f0=F0_SYNTHETIC, **kw)


def test_interpolation_reproduces_smooth_theory_between_nodes():
    # 9 nodes of the MAA theory: the normalised PCHIP must reproduce it to < 1 % in between
    x = np.linspace(0.1, 0.9, 9)
    f = _table(x, _maa(x)).interpolator()
    xq = np.linspace(0.1, 0.9, 161)
    got = np.stack(f(xq), axis=-1)
    ref = _maa(xq)
    assert np.max(np.abs(got - ref) / np.max(np.abs(ref), axis=0)) < 0.01


def test_end_member_limits_are_exact():
    x = np.linspace(0.1, 0.9, 9)
    f = _table(x, _maa(x)).interpolator()
    lbb, lbc, lcc = f(np.array([0.0, 1.0]))
    assert lcc[0] == 0.0 and lbc[0] == 0.0 and lbc[1] == 0.0 and lbb[1] == 0.0
    assert lbb[0] > 0 and lcc[1] > 0


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 12),
    data=st.data(),
)
def test_interpolant_is_symmetric_positive_definite(n, data):
    # arbitrary (noisy, even non-PSD) table values: the interpolant is PSD everywhere, PD inside
    x = np.sort(np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n, unique=True))))
    if np.any(np.diff(x) < 1e-6) or not np.any((x > 1e-6) & (x < 1 - 1e-6)):
        return
    vals = data.draw(st.lists(st.floats(-0.5, 2.0), min_size=3 * n, max_size=3 * n))
    l = np.array(vals).reshape(n, 3)
    l[np.abs(l) < 1e-6] = 0.0  # no denormal-scale entries: the products below would underflow
    f = make_interpolator(x, l)
    xq = np.linspace(0.0, 1.0, 57)
    lbb, lbc, lcc = f(xq)
    assert np.all(lbb >= 0) and np.all(lcc >= 0)
    det = lbb * lcc - lbc**2
    assert np.all(det >= -1e-14 * np.maximum(lbb * lcc, 1e-300))
    # strictly PD wherever both diagonal entries are positive
    inner = (lbb > 0) & (lcc > 0)
    assert np.all(det[inner] > 0)


def test_nodes_that_satisfy_the_bound_are_reproduced_exactly():
    x = np.array([0.0, 0.3, 0.5, 0.9])
    l = _maa(np.clip(x, 1e-12, 1))
    f = make_interpolator(x, l)
    got = np.stack(f(x[1:]), axis=-1)
    np.testing.assert_allclose(got, l[1:], rtol=1e-12)


def test_bad_tables_are_refused():
    x = np.linspace(0.1, 0.9, 3)
    with pytest.raises(ParameterError, match="increasing"):
        _table(x[::-1], _maa(x))
    with pytest.raises(ParameterError, match="shape"):
        _table(x, _maa(x)[:, :2])
    with pytest.raises(ParameterError, match="x_v"):
        OnsagerTable(preset="host", x_cl=x, l_per_s=_maa(x), l_err_per_s=_maa(x), x_v=1.5,
                     w_per_s=(1, 1), f0=0.5)


def test_hdf5_round_trip_and_bad_files(tmp_path):
    from ionwire.structures.onsager_table import write_onsager_tables

    x = np.linspace(0.1, 0.9, 5)
    rng = np.random.default_rng(1)
    reps = _maa(x)[:, None, :] * (1 + 0.01 * rng.standard_normal((5, 4, 3)))
    t = OnsagerTable.from_replicas("random_alloy", x, reps, x_v=1e-3, w_per_s=(1.0, 0.2),
                                   f0=F0_SYNTHETIC, material={"temperature_K": 300.0},
                                   seeds=np.arange(20).reshape(5, 4), events_per_replica=np.full(5, 10),
                                   wall_s=np.ones(5))
    path = tmp_path / "table.h5"
    write_onsager_tables(path, {"random_alloy": t}, {"command": "test", "seeds": [1, 2]})
    back = load_table(path, "random_alloy")
    np.testing.assert_array_equal(back.l_replicas_per_s, reps)
    np.testing.assert_array_equal(back.l_per_s, t.l_per_s)
    np.testing.assert_array_equal(back.seeds, t.seeds)
    assert back.w_per_s == (1.0, 0.2) and back.material == {"temperature_K": 300.0}
    _, prov = tables_from_file(path)
    assert prov["command"] == "test"
    with pytest.raises(ParameterError, match="no Onsager table for preset 'host'"):
        load_table(path, "host")
    # truncated file
    data = path.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CouplingFileError, match="truncated.h5"):
        load_table(bad, "random_alloy")
    # foreign HDF5
    import h5py

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(CouplingFileError, match="not an ionwire.onsager_table"):
        load_table(foreign, "random_alloy")
    # unfinished campaign
    write_onsager_tables(tmp_path / "part.h5", {"random_alloy": t}, {}, complete=False)
    with pytest.raises(CouplingFileError, match="did not finish"):
        load_table(tmp_path / "part.h5", "random_alloy")


def test_deviation_from_theory_detects_a_wrong_table():
    x = np.linspace(0.1, 0.9, 9)
    err = 0.01 * np.abs(_maa(x)) + 1e-6
    good = _table(x, _maa(x), err=err)
    assert good.deviation_from_theory()["max_abs_z"] < 1e-9
    wrong = _table(x, _maa(x) * 1.05, err=err)
    assert wrong.deviation_from_theory()["max_abs_z"] > 3


def test_plot_tables_draws_into_given_axes_and_returns_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    from ionwire.structures.onsager_table import plot_tables

    x = np.linspace(0.1, 0.9, 5)
    t = _table(x, _maa(x), l_replicas_per_s=np.stack([_maa(x)] * 2, axis=1))
    fig, ax = plt.subplots()
    out = plot_tables({"random_alloy": t}, ax=ax)
    assert out is fig
    # three kMC error-bar series (one per coefficient) landed on the caller's axes
    assert len(ax.containers) == 3 and ax.get_xlabel() == "x_Cl"
    with pytest.raises(ValueError, match="1 tables need 1 axes"):
        plot_tables({"random_alloy": t}, ax=[ax, ax])
    png = tmp_path / "t.png"
    own = plot_tables({"random_alloy": t}, png)
    assert png.stat().st_size > 0 and own is not fig
    plt.close(fig)
