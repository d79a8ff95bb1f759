"""The campaign engine on a tiny but real run type (tests/campaign_toy.py): ids, results,
resume semantics, prepare caching, failures.  Runs go through the real local process pool."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from ionwire.coupling import campaign as cp
from ionwire.structures.runtype import Axis, sweep_points

TOY = """
run = "campaign_toy:Toy"
samples = 4000
seed = 7
{extra}
[sweep]
dimension = {dims}
replicas = {replicas}
"""


def write_config(tmp_path: Path, dims=(2, 3), replicas=3, extra="", run="campaign_toy:Toy", name="toy.toml"):
    text = TOY.format(dims=list(dims), replicas=replicas, extra=extra).replace("campaign_toy:Toy", run)
    path = tmp_path / name
    path.write_text(text)
    return path


def expected_result(spec, point):
    """What the run type computes for one point, computed here in-process."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return spec.run_type.run(spec.config, dict(point), Path(d))


def test_ids_are_stable_unique_and_independent_of_the_rest_of_the_sweep(tmp_path):
    a = cp.load_spec(write_config(tmp_path, dims=(2, 3), replicas=2))
    b = cp.load_spec(write_config(tmp_path, dims=(4, 3), replicas=3, name="other.toml"))
    ids_a = {json.dumps(rp.point, sort_keys=True): rp.id for rp in a.points}
    ids_b = {json.dumps(rp.point, sort_keys=True): rp.id for rp in b.points}
    assert len(set(ids_a.values())) == len(a.points) == 4
    common = set(ids_a) & set(ids_b)
    assert len(common) == 2  # dimension 3, replicas 0 and 1
    for k in common:
        assert ids_a[k] == ids_b[k]
    # a different base parameter is a different run, even for the same point
    c = cp.load_spec(write_config(tmp_path, dims=(2, 3), replicas=2, extra="sleep_s = 0.01", name="c.toml"))
    assert {rp.id for rp in c.points}.isdisjoint(ids_a.values())


def test_campaign_runs_every_point_and_reduces(tmp_path):
    spec = cp.load_spec(write_config(tmp_path, dims=(2, 3), replicas=4))
    out = tmp_path / "out"
    report = cp.run_campaign(spec, out, workers=2, progress=False)
    assert (report.n_runs, report.n_new, report.n_resumed, report.failed) == (8, 8, 0, {})
    index = json.loads((out / "index.json").read_text())
    assert [r["id"] for r in index["runs"]] == [rp.id for rp in spec.points]
    assert all(r["status"] == "done" for r in index["runs"])
    # each run folder holds its own files, and the result is what the run type computes
    for rp, row in zip(spec.points, index["runs"]):
        assert (out / "runs" / rp.id / "samples.json").is_file()
        assert row["result"] == expected_result(spec, rp.point)
    # the reduced volumes agree with the exact unit-ball volumes (4 replicas each;
    # |mean - exact| < 6 standard errors fails with probability < 1e-3 even for t with 3 dof)
    summary = json.loads((out / "summary.json").read_text())
    for d in ("2", "3"):
        v = summary["volumes"][d]
        assert v["replicas"] == 4
        assert abs(v["volume"] - v["exact"]) < 6 * v["volume_err"]
    assert (out / "volumes.json").is_file()


def test_rerun_needs_resume_and_resume_skips_finished_runs(tmp_path):
    cfg = write_config(tmp_path, dims=(2,), replicas=3)
    spec = cp.load_spec(cfg)
    out = tmp_path / "out"
    cp.run_campaign(spec, out, workers=1, progress=False)
    before = {rp.id: json.loads((out / "runs" / rp.id / "result.json").read_text()) for rp in spec.points}
    with pytest.raises(cp.CampaignError, match="--resume"):
        cp.run_campaign(spec, out, workers=1, progress=False)
    report = cp.run_campaign(spec, out, workers=1, progress=False, resume=True)
    assert (report.n_new, report.n_resumed) == (0, 3)
    after = {rp.id: json.loads((out / "runs" / rp.id / "result.json").read_text()) for rp in spec.points}
    assert after == before  # nothing was redone (same pid, start time, result)
    report = cp.run_campaign(spec, out, workers=1, progress=False, overwrite=True)
    assert (report.n_new, report.n_resumed) == (3, 0)
    redone = {rp.id: json.loads((out / "runs" / rp.id / "result.json").read_text()) for rp in spec.points}
    assert all(redone[i]["started_unix"] > before[i]["started_unix"] for i in before)
    assert all(redone[i]["result"] == before[i]["result"] for i in before)  # same seeds, same results


def test_resume_redoes_half_written_and_missing_runs_and_extends_the_sweep(tmp_path):
    spec = cp.load_spec(write_config(tmp_path, dims=(2, 3), replicas=2))
    out = tmp_path / "out"
    cp.run_campaign(spec, out, workers=2, progress=False)
    gone, kept = spec.points[0].id, spec.points[1].id
    # simulate a kill: one run never renamed into place, one half-written temp folder left over
    shutil.rmtree(out / "runs" / gone)
    half = out / "runs" / ".partial" / f"{gone}.999.deadbeef"
    half.mkdir(parents=True)
    (half / "samples.json").write_text("{trunc")
    kept_record = (out / "runs" / kept / "result.json").read_text()
    bigger = cp.load_spec(write_config(tmp_path, dims=(2, 3, 4), replicas=2))
    report = cp.run_campaign(bigger, out, workers=2, progress=False, resume=True)
    assert (report.n_runs, report.n_resumed, report.n_new) == (6, 3, 3)
    assert not any((out / "runs" / ".partial").iterdir())
    assert (out / "runs" / kept / "result.json").read_text() == kept_record
    assert json.loads((out / "runs" / gone / "result.json").read_text())["status"] == "done"
    assert set(json.loads((out / "summary.json").read_text())["volumes"]) == {"2", "3", "4"}


def test_resume_with_a_changed_config_is_refused_naming_the_key(tmp_path):
    out = tmp_path / "out"
    cp.run_campaign(cp.load_spec(write_config(tmp_path, dims=(2,), replicas=2)), out, workers=1, progress=False)
    changed = cp.load_spec(write_config(tmp_path, dims=(2,), replicas=2, extra="sleep_s = 0.01"))
    with pytest.raises(cp.CampaignError, match="sleep_s changed"):
        cp.run_campaign(changed, out, workers=1, progress=False, resume=True)


def test_failed_runs_are_recorded_not_kept_and_retried_on_resume(tmp_path):
    out = tmp_path / "out"
    spec = cp.load_spec(write_config(tmp_path, dims=(2, 3), replicas=2, extra="fail_dimension = 3"))
    report = cp.run_campaign(spec, out, workers=2, progress=False)
    failed_ids = {rp.id for rp in spec.points if rp.point["dimension"] == 3}
    assert set(report.failed) == failed_ids
    assert all("injected failure" in e for e in report.failed.values())
    assert report.summary is None and not (out / "summary.json").exists()
    for rid in failed_ids:
        assert not (out / "runs" / rid).exists()
        assert "RuntimeError" in (out / "failed" / f"{rid}.txt").read_text()
    index = json.loads((out / "index.json").read_text())
    assert sorted(r["status"] for r in index["runs"]) == ["done", "done", "failed", "failed"]


def test_prepare_runs_once_and_is_cached_for_resume(tmp_path, monkeypatch):
    log = tmp_path / "prepare.log"
    monkeypatch.setenv("TOY_PREPARE_LOG", str(log))
    out = tmp_path / "out"
    cfg = write_config(tmp_path, dims=(2,), replicas=2, run="campaign_toy:ToyWithPrepare")
    cp.run_campaign(cp.load_spec(cfg), out, workers=1, progress=False)
    assert json.loads((out / "prepare.json").read_text())["prepared"] == {"scale": 1.0}
    cfg = write_config(tmp_path, dims=(2, 3), replicas=2, run="campaign_toy:ToyWithPrepare")
    report = cp.run_campaign(cp.load_spec(cfg), out, workers=1, progress=False, resume=True)
    assert report.n_new == 2
    assert log.read_text().count("prepare") == 1


def test_a_folder_in_use_is_refused(tmp_path):
    spec = cp.load_spec(write_config(tmp_path, dims=(2,), replicas=2))
    folder = cp.CampaignFolder(tmp_path / "out")
    folder.lock()
    try:
        with pytest.raises(cp.CampaignError, match="in use"):
            cp.run_campaign(spec, tmp_path / "out", workers=1, progress=False)
    finally:
        folder.unlock()


def test_sweep_grammar_product_zip_and_replicas():
    axes = {"a": Axis(float, 0, 10), "b": Axis(int, 1, 5)}
    pts = sweep_points({"a": [1, 2.5], "b": [1, 2, 3]}, axes)
    assert len(pts) == 6 and pts[0] == {"a": 1.0, "b": 1} and isinstance(pts[0]["a"], float)
    pts = sweep_points({"a": [1, 2], "b": [4, 5], "combine": "zip", "replicas": 2}, axes)
    assert pts == [{"a": 1.0, "b": 4, "replica": 0}, {"a": 1.0, "b": 4, "replica": 1},
                   {"a": 2.0, "b": 5, "replica": 0}, {"a": 2.0, "b": 5, "replica": 1}]
    assert sweep_points(None, axes) == [{}]
    assert sweep_points({"a": 3}, axes) == [{"a": 3.0}]


def test_atomic_write_json_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x.json"
    for i in range(3):
        cp.atomic_write_json(target, {"i": i, "nan": math.nan})
    assert json.loads(target.read_text())["i"] == 2
    assert os.listdir(tmp_path) == ["x.json"]


def test_a_dying_worker_fails_only_the_runs_in_flight_and_the_campaign_goes_on(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    trigger = out / "crash_dimension"  # read by campaign_toy.Toy.run
    trigger.write_text("2")
    spec = cp.load_spec(write_config(tmp_path, dims=(2, 3, 4, 5), replicas=2))
    report = cp.run_campaign(spec, out, workers=1, progress=False)
    crashed = {rp.id for rp in spec.points if rp.point["dimension"] == 2}
    assert crashed <= set(report.failed)
    assert all("worker process died" in report.failed[i] for i in crashed)
    # with one worker at most 2 runs are in flight: the pool was replaced and the rest ran
    assert report.n_new >= len(spec.points) - 2 - len(crashed)
    trigger.unlink()
    report = cp.run_campaign(spec, out, workers=1, progress=False, resume=True)
    assert not report.failed and report.n_new == len(spec.points) - report.n_resumed
    assert report.summary is not None
