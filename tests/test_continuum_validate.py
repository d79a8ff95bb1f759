"""Acceptance of the continuum model on the real sweep (runs/fig1e.toml): calibration + 17 fields, ~10 s CPU."""
import pytest

from ionwire.continuum.experiment import load_config_file, run_sweep

pytestmark = pytest.mark.validate


def test_fig1e_acceptance(tmp_path):
    cfg = load_config_file("runs/fig1e.toml")
    out = run_sweep(cfg, tmp_path / "fig1e.h5", figure=tmp_path / "fig1e.png")
    cal = out["calibrated"]
    assert set(cal) == {"alpha_Br_um_per_V_s", "alpha_Cl_um_per_V_s"}  # at most two fitted parameters
    for rec in cal.values():
        assert abs(rec["residual_um"]) < 0.01 * rec["target_um"]
    lengths = dict(zip(out["field_V_per_um"], out["migration_length_um"]))
    assert out["forward_linear_fit"]["r_squared"] >= 0.98
    assert 0.7 <= lengths[4.0] <= 1.3
    assert all(abs(v) < 0.1 for e, v in lengths.items() if e < 0)
    rev = [lengths[e] for e in sorted(lengths) if e <= -1.5]
    assert max(rev) - min(rev) < 0.05  # nearly field-independent on the um scale of the forward branch
    assert 10 <= out["rectification_ratio"] <= 40
    assert all(p["min_fraction"] > -1e-10 for p in out["per_field"])
    assert (tmp_path / "fig1e.png").stat().st_size > 1000
