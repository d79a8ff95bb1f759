"""Onsager table from bulk kMC: agreement with the MAA theory (random_alloy) and its effect on the
continuum model; config validation and the CLI.

Statistical statements: kMC values carry the standard error over independent replicas; a point
"agrees" when |kMC - MAA| <= 4 sigma (two-sided 4-sigma: 6e-5 per value, < 1e-3 for the whole
table).  At the ~2 % precision of this table the MAA approximation error (below 1 %, measured by
the kMC engine's tests and by runs/onsager.toml) is inside the error bars.
"""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ionwire.structures.parameters import ParameterError
from ionwire.coupling.parameterize import build_tables, load_config, OnsagerTableRun

REPO = Path(__file__).resolve().parent.parent

SMALL = {
    "material": {"temperature_K": 300.0},
    "bulk": {"cells": [8, 8, 8], "vacancy_fraction": 0.002, "events_per_replica": 600_000,
             "warmup_events": 60_000, "blocks": 100, "seed": 7},
    "sweep": {"preset": ["random_alloy"], "composition": [0.0, 0.3, 0.7, 1.0], "replicas": 10},
}


@pytest.fixture(scope="module")
def kmc_table():
    cfg = load_config(SMALL)
    points = OnsagerTableRun.expand(cfg)
    results = [OnsagerTableRun.run(cfg, p, None) for p in points]
    return build_tables(cfg, points, results)["random_alloy"]


def test_table_reproduces_maa_theory_within_error_bars(kmc_table):
    dev = kmc_table.deviation_from_theory()
    assert kmc_table.n_replicas == 10 and kmc_table.x_cl.size == 4
    # the table is precise enough for the statement to mean something
    inner = slice(1, 3)  # at the end members l_BrCl and one diagonal vanish exactly
    l, e = kmc_table.l_per_s[inner], kmc_table.l_err_per_s[inner]
    assert np.all(e[:, [0, 2]] < 0.04 * l[:, [0, 2]]) and np.all(e[:, 1] < 0.1 * np.sqrt(l[:, 0] * l[:, 2]))
    # end members: one species, uncorrelated collective motion: l = w (1 - x_V) within 4 sigma
    w_br, w_cl = kmc_table.w_per_s
    ends = kmc_table.l_per_s[[0, -1]]
    assert ends[0, 1] == ends[0, 2] == ends[1, 0] == ends[1, 1] == 0.0
    assert abs(ends[0, 0] - w_br * (1 - kmc_table.x_v)) < 4 * kmc_table.l_err_per_s[0, 0]
    assert abs(ends[1, 2] - w_cl * (1 - kmc_table.x_v)) < 4 * kmc_table.l_err_per_s[-1, 2]
    assert dev["max_abs_z"] <= 4.0, dev["z"]
    # and the interpolated matrix is symmetric positive definite at every inner node
    lbb, lbc, lcc = kmc_table.interpolator()(kmc_table.x_cl[inner])
    assert np.all(lbb * lcc - lbc**2 > 0)


def _continuum_cl_uptake(onsager, f0=None):
    """Cl that entered the Br half (nm of pure Cl) after 1e-2 s forward in the validation device."""
    import tomllib

    from ionwire.continuum.model import Numerics, integrate, solution_to_result, wire_problem
    from ionwire.coupling.compare import load_config as load_validation

    cfg = load_validation(tomllib.loads((REPO / "runs" / "validate.toml").read_text()))
    num = Numerics(n_nodes=400, refinement=5.0, layer_width_um=0.005, rtol=1e-4, initial_step_s=1e-12)
    prob = wire_problem(cfg.params, 4.0, num, onsager=onsager, f0=f0)
    res = solution_to_result(prob, integrate(prob, np.array([0.0, 1e-2]), num.rtol, num.initial_step_s))
    z = res.z_um * 1e3
    half = z <= 0.5 * z[-1]
    return float(np.trapezoid(np.where(half, res.x_cl[-1], 0.0), z))


def test_continuum_with_the_table_matches_continuum_with_the_theory(kmc_table):
    from ionwire.structures.onsager import F0_ANION_PEROVSKITE
    from ionwire.structures.onsager_table import make_interpolator

    q_theory = _continuum_cl_uptake(None, f0=F0_ANION_PEROVSKITE)
    # 1) the interpolation itself: theory sampled at 11 compositions -> same answer to 0.5 %
    x9 = np.linspace(0.0, 1.0, 11)
    th9 = dataclasses.replace(kmc_table, x_cl=x9, l_per_s=kmc_table.theory(x9),
                              l_err_per_s=np.zeros((11, 3)), l_replicas_per_s=None, seeds=None,
                              events_per_replica=None, wall_s=None)
    # (the table's x_V = 0.002 shifts the theory by ~0.2 %, inside the tolerance)
    assert _continuum_cl_uptake(th9.interpolator()) == pytest.approx(q_theory, rel=0.005)
    # 2) the measured table: agreement within its propagated uncertainty (jackknife over replicas)
    q_table = _continuum_cl_uptake(kmc_table.interpolator())
    reps = kmc_table.l_replicas_per_s
    R = reps.shape[1]
    q_jack = []
    for i in range(R):
        keep = np.delete(reps, i, axis=1).mean(axis=1)
        q_jack.append(_continuum_cl_uptake(make_interpolator(kmc_table.x_cl, keep)))
    q_jack = np.array(q_jack)
    sigma = math.sqrt((R - 1) / R * np.sum((q_jack - q_jack.mean()) ** 2))
    assert q_theory > 1.0  # the front really moved (nm of Cl in the Br half)
    assert abs(q_table - q_theory) <= 4 * sigma + 0.005 * q_theory, (q_table, q_theory, sigma)


def test_config_errors_name_the_key():
    bad = {**SMALL, "bulk": {**SMALL["bulk"], "cels": [4, 4, 4]}}
    with pytest.raises(ParameterError, match="bulk.cels"):
        load_config(bad)
    with pytest.raises(ParameterError, match="replicas"):
        load_config({**SMALL, "sweep": {**SMALL["sweep"], "replicas": 1}})
    with pytest.raises(ParameterError, match=r"sweep.composition\[0\]"):
        load_config({**SMALL, "sweep": {**SMALL["sweep"], "composition": [1.5, 0.5]}})
    with pytest.raises(ParameterError, match="blocks"):
        load_config({**SMALL, "bulk": {**SMALL["bulk"], "blocks": 10_000}})
    with pytest.raises(ParameterError, match="sweep"):
        load_config({k: v for k, v in SMALL.items() if k != "sweep"})


def test_cli_writes_table_with_provenance_and_rejects_bad_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("""
[bulk]
cells = [4, 4, 4]
vacancy_fraction = 0.01
events_per_replica = 20000
blocks = 10
seed = 3
[sweep]
preset = ["random_alloy", "host"]
composition = [0.3, 0.7]
replicas = 2
""")
    out = tmp_path / "t.h5"
    r = subprocess.run([sys.executable, "-m", "ionwire.coupling.cli", "parameterize", str(cfg), "-o", str(out), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    from ionwire.structures.onsager_table import tables_from_file

    tables, prov = tables_from_file(out)
    assert set(tables) == {"random_alloy", "host"}
    assert tables["host"].seeds.shape == (2, 2) and len(np.unique(tables["host"].seeds)) == 4
    assert prov["config_toml"].strip().startswith("[bulk]") and prov["numba"] and prov["git_commit"]
    # host barriers: Br in Cl-rich octahedron = E_Cl
    assert tables["host"].material["barriers_eV"]["Br_in_Cl"] == pytest.approx(0.29)
    assert out.with_suffix(".png").stat().st_size > 1000
    cfg.write_text("[bulk]\nevents = 3\n")
    r = subprocess.run([sys.executable, "-m", "ionwire.coupling.cli", "parameterize", str(cfg), "-o", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bulk.events" in r.stderr
