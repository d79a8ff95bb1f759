"""Atomistic vs continuum comparison: config checks, a small comparison in CI time, and the full
validation of runs/validate.toml (marker ``validate``)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ionwire.structures.parameters import ParameterError
from ionwire.coupling.compare import compare, load_config

REPO = Path(__file__).resolve().parent.parent
VALIDATE = REPO / "runs" / "validate.toml"


def _mapping():
    return tomllib.loads(VALIDATE.read_text())


def test_config_checks_name_the_problem():
    m = _mapping()
    m["geometry"]["wire_length_um"] = 0.05  # not a whole number of 5.8 A cells
    with pytest.raises(ParameterError, match="wire_length_um"):
        load_config(m)
    m = _mapping()
    m["compare"]["times_s"] = [1e-5, 1e-6]
    with pytest.raises(ParameterError, match="times_s"):
        load_config(m)
    m = _mapping()
    m["compare"]["replica"] = 3
    with pytest.raises(ParameterError, match="compare.replica"):
        load_config(m)
    m = _mapping()
    m["geometry"]["contact_width_um"] = 0.0059  # contact edge between planes
    m["geometry"]["gap_um"] = 0.03808
    with pytest.raises(ParameterError, match="plane boundary"):
        load_config(m)


def test_small_comparison_runs_and_reports(tmp_path):
    # 4 x 4 cells, 8 replicas per bias, up to 1e-5 s: ~10 s.  The statistics are those of the full
    # validation; with 8 replicas a correct model has reduced chi^2 ~ 1.4 (raw), 1 (corrected)
    m = _mapping()
    m["kmc"] = {"nx": 4, "ny": 4}
    m["compare"].update(times_s=[1e-6, 1e-5], replicas=8)
    cfg = load_config(m)
    s = compare(cfg, tmp_path, config_toml="", progress=False)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"report.h5", "summary.json", "profiles_forward.png", "profiles_reverse.png",
            "front_chi2_forward.png", "front_chi2_reverse.png"} <= files
    js = json.loads((tmp_path / "summary.json").read_text())
    for key in ("chi2_per_dof", "front_position_agreement", "replicas", "wall_s"):
        assert key in js
    assert js["replicas"] == 8 and set(js["chi2_per_dof"]) == {"forward", "reverse"}
    for d in ("forward", "reverse"):
        chi = js["chi2_per_dof_variance_corrected"][d]
        assert len(chi["x_br"]) == 2 and all(np.isfinite(chi["x_v"]))
        assert max(chi["x_br"]) < 2.0 and max(chi["x_v"]) < 2.0, chi
        assert js["front_position_agreement"][d]["all_within"], js["front_position_agreement"][d]
    from ionwire.coupling.io import read_report

    summary, groups = read_report(tmp_path / "report.h5")
    assert groups["forward"]["kmc_replicas_x_br"].shape[:2] == (8, 2)
    assert summary["replicas"] == 8


def test_cli_one_line_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(VALIDATE.read_text().replace("[kmc]", "[kmc]\nnz = 3"))
    r = subprocess.run([sys.executable, "-m", "ionwire.coupling.cli", "compare", str(bad), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "kmc.nz" in r.stderr


@pytest.mark.validate
def test_validation_random_alloy_forward_and_reverse(tmp_path):
    """Acceptance of the validation on runs/validate.toml (12 replicas per bias, ~4 min): variance-corrected
    reduced chi^2 of x_Br and x_V <= 2 at every compared time, fronts within 2 sigma, both biases."""
    cfg = load_config(_mapping())
    s = compare(cfg, tmp_path, progress=False)
    for d, acc in s["accepted"].items():
        assert acc["chi2"], (d, s["chi2_per_dof_variance_corrected"][d])
        assert acc["front"], (d, s["front_position_agreement"][d])
