"""`ionwire bulk` and `ionwire bench kmc`: the documented JSON keys and one-line user errors."""
import json

import pytest

from ionwire.coupling.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_bulk_json_has_the_documented_keys(capsys):
    out = _json(capsys, ["bulk", "--cells", "4", "4", "4", "--x-cl", "0.5", "--vacancies", "4", "--events", "20000",
                         "--replicas", "2", "--seed", "3", "--json"])
    for key in ("w", "l", "l_err", "f", "f_err", "D_tracer", "events", "wall_s", "events_per_second"):
        assert key in out
    assert set(out["l"]) == set(out["l_err"]) == {"BrBr", "BrCl", "ClCl"}
    assert set(out["f"]) == set(out["D_tracer"]) == set(out["w"]) == {"Br", "Cl"}
    assert out["events"] == 40_000 and out["events_per_second"] > 0
    assert out["l"]["BrBr"] > 0 and out["l_err"]["BrBr"] > 0
    assert out["w"]["Br"] == pytest.approx(1e13 * 2.718281828459045 ** (-0.25 / (8.617333262e-5 * 300)), rel=1e-6)
    assert "l_theory_MAA" in out  # random_alloy preset: theory alongside
    # explicit barriers and a field: mobilities appear, the halides drift against the field
    out = _json(capsys, ["bulk", "--cells", "4", "4", "4", "--vacancies", "4", "--events", "20000", "--replicas", "2",
                         "--barriers", "0.25", "0.3", "0.28", "0.33", "--field", "20", "--json"])
    assert out["parameters"]["barriers_eV"] == [0.25, 0.3, 0.28, 0.33]
    assert out["drift_velocity"]["V"] > 0 and out["mobility"]["V"] > 0
    assert out["drift_velocity"]["Br"] < 0


def test_bench_kmc_json_keys(capsys):
    out = _json(capsys, ["bench", "kmc", "--cells", "8", "8", "8", "--events", "20000", "--warmup", "1000", "--json"])
    for key in ("events_per_second", "sites", "vacancies", "bytes_per_site"):
        assert key in out
    assert out["sites"] == 3 * 8**3 and out["vacancies"] == round(0.01 * out["sites"])
    assert out["bytes_per_site"] <= 16


@pytest.mark.parametrize("argv, needle", [
    (["bulk", "--vacancies", "0"], "--vacancies"),
    (["bulk", "--preset", "nope"], "preset"),
    (["bulk", "--x-cl", "1.5"], "--x-cl"),
    (["bulk", "--events", "1.5"], "--events"),
    (["bulk", "--temperature", "-3"], "temperature"),
])
def test_bulk_user_errors_are_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ionwire bulk: error:") and needle in err[0]
