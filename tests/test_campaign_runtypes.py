"""The registered run types through the campaign engine: the bulk kMC adapter against an exact
result, and the shipped campaign configs (runs/*.toml) load, validate and expand."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ionwire.coupling import campaign as cp
from ionwire.coupling import runtypes

RUNS = Path(__file__).resolve().parent.parent / "runs"


def test_bulk_campaign_vacancy_diffusion_matches_the_exact_random_walk(tmp_path):
    """One vacancy in a pure-Br lattice is an uncorrelated random walk: D_V = w z s^2 / 6 with
    w = nu0 exp(-E_Br / kT), z = 8, s = a / sqrt(2).  8 replicas of 20000 hops each, fanned out
    by the engine; the replica mean must lie within 4 standard errors (two-sided p < 1e-3 for
    a t distribution with 7 dof is 5.4 sigma, so 4 sigma is a strict but not flaky bound)."""
    cfg = tmp_path / "bulk.toml"
    cfg.write_text('run = "bulk"\n[bulk]\ncells = [4, 4, 4]\ncomposition = {Cl = 0.0}\nvacancy_fraction = 0.005\n'
                   'events_per_replica = 20000\nwarmup_events = 0\nblocks = 4\nseed = 5\n[sweep]\nreplicas = 8\n')
    spec = cp.load_spec(cfg)
    # one worker: with a cold numba cache every worker compiles the kernels; the next test (2
    # workers) then loads them from the cache
    rep = cp.run_campaign(spec, tmp_path / "out", workers=1, progress=False)
    assert rep.n_new == 8 and not rep.failed
    row = rep.summary["table"][0]
    assert row["replicas"] == 8 and rep.records[0]["result"]["vacancies"] == 1
    mat = spec.config.material
    w = mat.jump_frequencies_per_s()["Br"]
    s_cm = mat.lattice_constant_A * 1e-8 / math.sqrt(2.0)
    exact = w * 8 * s_cm**2 / 6.0
    d, err = row["D_vacancy_cm2_per_s"], row["D_vacancy_err"]
    assert err > 0 and abs(d - exact) < 4 * err, (d, err, exact)
    # the table carries the Moleko-Allnatt-Allnatt l_ab of the point (random_alloy barriers): for
    # one species it is the uncorrelated collective value, which the replicas must reproduce
    theory = row["l_theory_MAA_per_s"]
    assert theory["BrCl"] == theory["ClCl"] == 0.0
    l, l_err = row["l_per_s"]["BrBr"], row["l_per_s_err"]["BrBr"]
    assert l_err > 0 and abs(l - theory["BrBr"]) < 4 * l_err, (l, l_err, theory)
    # the replicas are independent: distinct seeds, distinct trajectories
    seeds = {r["result"]["seed"] for r in rep.records}
    assert len(seeds) == 8
    assert json.loads((tmp_path / "out" / "bulk_table.json").read_text())[0]["replicas"] == 8


def test_bulk_sweep_axes_apply_to_the_runs(tmp_path):
    cfg = tmp_path / "bulk.toml"
    cfg.write_text('run = "bulk"\n[bulk]\ncells = [3, 3, 3]\nevents_per_replica = 2000\nblocks = 2\n'
                   '[sweep]\ncomposition = [0.25, 0.75]\ntemperature_K = [300.0, 400.0]\n')
    spec = cp.load_spec(cfg)
    assert len(spec.points) == 4
    rep = cp.run_campaign(spec, tmp_path / "out", workers=2, progress=False)
    for rp, rec in zip(spec.points, rep.records):
        assert rec["result"]["x_cl"] == rp.point["composition"]
        assert rec["result"]["temperature_K"] == rp.point["temperature_K"]
    # hotter runs hop more often per unit simulated time: shorter simulated time for the same hops
    t = {(r["result"]["x_cl"], r["result"]["temperature_K"]): r["result"]["time_s"] for r in rep.records}
    assert t[(0.25, 400.0)] < t[(0.25, 300.0)] and t[(0.75, 400.0)] < t[(0.75, 300.0)]


@pytest.mark.parametrize("name, axis", [("fig1e.toml", "field_V_per_um"), ("onsager.toml", "composition")])
def test_shipped_campaign_configs_load_and_expand(name, axis):
    import tomllib

    path = RUNS / name
    if not path.exists():
        pytest.skip(f"{path} not in this checkout")
    sweep = tomllib.loads(path.read_text())["sweep"]
    n_runs = math.prod(len(v) for v in sweep.values() if isinstance(v, list)) * sweep.get("replicas", 1)
    spec = cp.load_spec(path)
    assert len(spec.points) == n_runs
    assert all(axis in rp.point for rp in spec.points)
    assert sorted({rp.point[axis] for rp in spec.points}) == sorted(float(v) for v in sweep[axis])
    assert len({rp.id for rp in spec.points}) == n_runs
    assert [rp.id for rp in cp.load_spec(path).points] == [rp.id for rp in spec.points]  # stable


BENCHMARKS = RUNS.parent / "benchmarks"


@pytest.mark.parametrize("path", sorted(RUNS.glob("*.toml")) + sorted(BENCHMARKS.glob("*.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads_and_expands(path):
    """Every config in runs/ and benchmarks/ passes the strict loader (a renamed key would stop
    the README's commands with its one-line error) and expands to distinct runs."""
    spec = cp.load_spec(path)
    assert spec.points and len({rp.id for rp in spec.points}) == len(spec.points)


def test_the_campaign_benchmark_resizes_its_template_into_valid_configs(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_campaign")
    template = (BENCHMARKS / "bench_campaign_kmc.toml").read_text()
    for name, size in bench.SIZES.items():
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(bench.size_config(template, size["cells"], size["events"], 3))
        spec = cp.load_spec(cfg)
        assert len(spec.points) == 3, name
        bulk = spec.config.bulk
        assert bulk.cells == (size["cells"],) * 3 and bulk.events_per_replica == size["events"]


def test_registered_run_types_import_and_follow_the_protocol():
    from ionwire.structures.runtype import FingerprintedRunType, PreparedRunType, RunType

    for name in runtypes.REGISTRY:
        rt = runtypes.check_run_type(runtypes.get(name), name)
        assert isinstance(rt, RunType), name
        assert isinstance(rt, FingerprintedRunType) == (name != "compare"), name  # compare: the default
    assert isinstance(runtypes.get("continuum"), PreparedRunType)
    assert not isinstance(runtypes.get("bulk"), PreparedRunType)
    # run types live beside their libraries; only compare, onsager and arrhenius (both models) in coupling
    homes = {name: spec.partition(":")[0] for name, spec in runtypes.REGISTRY.items()}
    assert homes == {"continuum": "ionwire.continuum.experiment", "sensitivity": "ionwire.continuum.sensitivity",
                     "bulk": "ionwire.kmc.runtypes",
                     "device": "ionwire.kmc.runtypes", "compare": "ionwire.coupling.runtypes",
                     "onsager": "ionwire.coupling.parameterize", "arrhenius": "ionwire.coupling.arrhenius"}


def test_bulk_and_onsager_run_types_read_one_bulk_config():
    """Same [material] and [bulk] tables, same loader and settings class; an onsager config is a
    bulk config whose sweep names the presets and compositions."""
    from ionwire.kmc.observables import BulkSettings
    from ionwire.kmc.runtypes import BulkConfig

    body = {"material": {"temperature_K": 350.0},
            "bulk": {"cells": [4, 4, 4], "vacancy_fraction": 0.01, "events_per_replica": 20000, "blocks": 10},
            "sweep": {"preset": ["random_alloy"], "composition": [0.3, 0.7], "replicas": 2}}
    onsager = runtypes.get("onsager").load(body)
    bulk = runtypes.get("bulk").load({**body, "sweep": {"composition": [0.3, 0.7], "replicas": 2}})
    assert type(onsager) is type(bulk) is BulkConfig
    assert onsager.bulk == bulk.bulk and isinstance(bulk.bulk, BulkSettings) and bulk.bulk.vacancies == 2
    assert onsager.material == bulk.material and bulk.material.temperature_K == 350.0


def test_device_campaign_writes_one_readable_trajectory_per_run(tmp_path):
    """runs/device_small.toml shrunk (8 x 8 cross-section, 2e-8 s) with a [sweep] of two fields
    and two replicas: four runs, each a complete H5MD trajectory in its own run folder, with
    the field and seed of its point."""
    src = RUNS / "device_small.toml"
    if not src.exists():
        pytest.skip("runs/device_small.toml not in this checkout")
    text = src.read_text()
    for old, new in (("nx = 24", "nx = 8"), ("ny = 24", "ny = 8"), ("duration_s = 2e-6", "duration_s = 2e-8"),
                     ("frame_interval_s = 2e-8", "frame_interval_s = 5e-9")):
        assert old in text, old  # the shrink below must really apply
        text = text.replace(old, new)
    cfg = tmp_path / "device.toml"
    cfg.write_text(text + "\n[sweep]\nfield_V_per_um = [-2.0, 2.0]\nreplicas = 2\n")
    from ionwire.kmc.h5md import open_trajectory

    spec = cp.load_spec(cfg)
    rep = cp.run_campaign(spec, tmp_path / "out", workers=1, progress=False)  # 1: compile the kernels once
    assert rep.n_new == 4 and not rep.failed, rep.failed
    seeds = set()
    for rp, rec in zip(spec.points, rep.records):
        res = rec["result"]
        assert res["completed"] and res["field_V_per_um"] == rp.point["field_V_per_um"]
        seeds.add(res["seed"])
        path = tmp_path / "out" / "runs" / rp.id / res["output"]
        with open_trajectory(path) as traj:
            assert traj.n_frames == 5
            assert traj.times_s[-1] == pytest.approx(2e-8)
            assert int(traj.attributes["seed"]) == res["seed"]
        assert not list(path.parent.glob("*.checkpoint"))
    assert len(seeds) == 4


def test_compare_campaign_gives_the_same_report_as_the_serial_comparison(tmp_path):
    """runs/validate.toml shrunk (4 x 4 cross-section, 4 replicas, 1e-7 and 3e-7 s): the campaign
    fans the kMC replicas out and reduces with coupling.compare.compare; the chi^2 table must be
    identical to the serial ``compare`` on the same config (same seeds, same numbers)."""
    src = RUNS / "validate.toml"
    if not src.exists():
        pytest.skip("runs/validate.toml not in this checkout")
    import re

    text = src.read_text()
    text = re.sub(r"(?m)^nx = \d+", "nx = 4", text)
    text = re.sub(r"(?m)^ny = \d+", "ny = 4", text)
    text = re.sub(r"(?m)^replicas = \d+", "replicas = 4", text)
    text = re.sub(r"(?m)^times_s = \[.*\]", "times_s = [1e-7, 3e-7]", text)
    cfg = tmp_path / "validate.toml"
    cfg.write_text(text)
    spec = cp.load_spec(cfg)
    assert spec.config.compare.replicas == 4 and spec.config.kmc.nx == 4
    assert len(spec.points) == 4 * len(spec.config.compare.fields_V_per_um)
    rep = cp.run_campaign(spec, tmp_path / "out", workers=2, progress=False)  # kernels cached by the test above
    assert not rep.failed and (tmp_path / "out" / "report.h5").is_file()
    from ionwire.coupling.compare import compare

    serial = compare(spec.config, tmp_path / "serial", progress=False)
    assert rep.summary["chi2_per_dof"] == json.loads(json.dumps(serial["chi2_per_dof"], default=float))
    assert rep.summary["accepted"] == json.loads(json.dumps(serial["accepted"], default=float))


def test_continuum_campaign_writes_the_figure_and_its_data(tmp_path):
    """runs/fig1e.toml shrunk (3 fields, 10 min, 200 nodes, no calibration): the campaign writes
    fig1e.png and fig1e.csv with the per-field numbers of the runs, in sweep order."""
    import csv
    import re

    src = RUNS / "fig1e.toml"
    if not src.exists():
        pytest.skip("runs/fig1e.toml not in this checkout")
    text = src.read_text()
    text = re.sub(r"(?m)^duration_s = .*", "duration_s = 600.0", text)
    text = re.sub(r"(?m)^n_nodes = .*", "n_nodes = 200", text)
    text = re.sub(r"(?m)^enabled = true", "enabled = false", text)
    text = re.sub(r"(?m)^field_V_per_um = \[.*\]", "field_V_per_um = [-4.0, 0.0, 4.0]", text)
    cfg = tmp_path / "fig1e_small.toml"
    cfg.write_text(text)
    spec = cp.load_spec(cfg)
    assert [rp.point["field_V_per_um"] for rp in spec.points] == [-4.0, 0.0, 4.0]
    assert not spec.config.calibration.enabled and spec.config.duration_s == 600.0
    out = tmp_path / "out"
    rep = cp.run_campaign(spec, out, workers=2, progress=False)
    assert not rep.failed and (out / "fig1e.png").stat().st_size > 0
    with open(out / "fig1e.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["field_V_per_um"]) for r in rows] == [-4.0, 0.0, 4.0]
    for r, rec in zip(rows, rep.records):
        assert float(r["migration_length_um"]) == rec["result"]["migration_length_um"]
        assert (out / "runs" / rec["id"] / rec["result"]["h5"]).is_file()
    assert rep.summary["migration_length_um"] == [rec["result"]["migration_length_um"] for rec in rep.records]
    assert "rectification ratio" in rep.summary["headline"]


def test_onsager_campaign_writes_the_table(tmp_path):
    """The registered ``onsager`` run type (coupling.parameterize) through the engine: one table
    of two compositions x two replicas, written with its plot into the campaign folder."""
    cfg = tmp_path / "onsager.toml"
    cfg.write_text('run = "onsager"\n[bulk]\ncells = [4, 4, 4]\nvacancy_fraction = 0.01\n'
                   'events_per_replica = 20000\nblocks = 10\nseed = 3\n'
                   '[sweep]\npreset = ["random_alloy"]\ncomposition = [0.3, 0.7]\nreplicas = 2\n')
    spec = cp.load_spec(cfg)
    assert len(spec.points) == 4
    rep = cp.run_campaign(spec, tmp_path / "out", workers=2, progress=False)
    assert not rep.failed
    assert (tmp_path / "out" / "onsager_table.h5").is_file() and (tmp_path / "out" / "onsager_table.png").is_file()
    assert list(rep.summary) == ["random_alloy"]
    seeds = {rec["result"]["seed"] for rec in rep.records}
    assert len(seeds) == 4
