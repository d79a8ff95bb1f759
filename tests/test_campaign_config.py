"""Config validation of ``ionwire campaign``: every bad config gives exit status 2 and ONE line on
stderr that names the offending key (and the allowed range where there is one); nothing runs."""
from __future__ import annotations

import pytest

from ionwire.coupling import cli, runtypes

GOOD_BODY = 'samples = 1000\n[sweep]\ndimension = [2, 3]\nreplicas = 2\n'
TOY = 'run = "campaign_toy:Toy"\n'

# (id, config text, fragments the error line must contain)
BAD_CONFIGS = [
    ("no-run", GOOD_BODY, ["run", "missing"]),
    ("run-not-a-string", "run = 3\n" + GOOD_BODY, ["run", "3"]),
    ("unknown-run-type", 'run = "warp_drive"\n' + GOOD_BODY, ["run", "warp_drive", "available"]),
    ("run-type-module-missing", 'run = "no_such_module_xyz:Thing"\n' + GOOD_BODY, ["run", "no_such_module_xyz"]),
    ("run-type-attribute-missing", 'run = "campaign_toy:Nope"\n' + GOOD_BODY, ["run", "Nope"]),
    ("not-a-run-type", 'run = "campaign_toy:ToyConfig"\n' + GOOD_BODY, ["run", "not a run type"]),
    ("unknown-top-level-key", TOY + "sampels = 10\n" + GOOD_BODY, ["sampels", "allowed", "samples"]),
    ("wrong-type", TOY + 'samples = "many"\n[sweep]\ndimension = [2]\n', ["samples", "integer"]),
    ("float-for-int", TOY + "samples = 10.5\n[sweep]\ndimension = [2]\n", ["samples", "integer"]),
    ("out-of-range", TOY + "samples = -5\n[sweep]\ndimension = [2]\n", ["samples", "[1, 1e8]"]),
    ("out-of-range-float", TOY + "sleep_s = 99.0\n[sweep]\ndimension = [2]\n", ["sleep_s", "[0, 60]"]),
    ("sweep-value-out-of-range", TOY + "[sweep]\ndimension = [2, 11]\n", ["sweep.dimension[1]", "[1, 10]", "11"]),
    ("sweep-value-wrong-type", TOY + '[sweep]\ndimension = [2, "three"]\n', ["sweep.dimension[1]", "[1, 10]"]),
    ("sweep-empty-list", TOY + "[sweep]\ndimension = []\n", ["sweep.dimension", "empty"]),
    ("sweep-duplicate", TOY + "[sweep]\ndimension = [2, 3, 2]\n", ["sweep.dimension[2]", "duplicate"]),
    ("sweep-unknown-axis", TOY + "[sweep]\ntemperature_K = [300.0]\n", ["sweep.temperature_K", "allowed", "dimension"]),
    ("sweep-bad-combine", TOY + '[sweep]\ndimension = [2]\ncombine = "cross"\n', ["sweep.combine", "product", "zip"]),
    ("sweep-zero-replicas", TOY + "[sweep]\ndimension = [2]\nreplicas = 0\n", ["sweep.replicas", "[1, 100000]"]),
    ("sweep-zip-unequal", TOY + '[sweep]\ndimension = [2, 3]\nsamples = [10]\ncombine = "zip"\n',
     ["sweep", "zip", "dimension: 2", "samples: 1"]),
    ("sweep-not-a-table", TOY + "sweep = 5\n", ["sweep", "table"]),
    ("toml-syntax", TOY + "samples = = 3\n", ["line 2"]),
    # the shipped run types (their own loaders, same one-line error)
    ("bulk-cells", 'run = "bulk"\n[bulk]\ncells = [1, 8, 8]\n', ["bulk.cells", "[2, 4096]"]),
    ("bulk-cells-length", 'run = "bulk"\n[bulk]\ncells = [8, 8]\n', ["bulk.cells", "3 values"]),
    ("bulk-sweep-composition", 'run = "bulk"\n[sweep]\ncomposition = [0.5, 1.5]\n', ["sweep.composition[1]", "[0, 1]"]),
    ("bulk-sweep-x_cl", 'run = "bulk"\n[sweep]\nx_cl = [0.5]\n', ["sweep.x_cl", "renamed sweep.composition"]),
    ("bulk-x_cl", 'run = "bulk"\n[bulk]\nx_cl = 0.5\n', ["bulk.x_cl is no longer a key", "bulk.composition = {Cl = ...}"]),
    ("bulk-sweep-unknown", 'run = "bulk"\n[sweep]\nseed = [1, 2]\n', ["sweep.seed", "allowed", "composition"]),
    ("bulk-material-key", 'run = "bulk"\n[material]\ntemperature = 300\n', ["material.temperature", "temperature_K"]),
    ("bulk-temperature", 'run = "bulk"\n[material]\ntemperature_K = -3.0\n', ["temperature_K"]),
    ("bulk-events", 'run = "bulk"\n[bulk]\nevents_per_replica = 5\n', ["events_per_replica", "blocks"]),
    # the bulk and onsager run types share one [bulk] table: keys of earlier configs name their successor
    ("bulk-old-top-level-key", 'run = "bulk"\ncells = [8, 8, 8]\n', ["cells", "bulk.cells"]),
    ("bulk-old-events", 'run = "bulk"\nevents = 1000\n', ["events", "bulk.events_per_replica"]),
    ("bulk-old-vacancies", 'run = "bulk"\n[bulk]\nvacancies = 3\n', ["bulk.vacancies", "bulk.vacancy_fraction"]),
    ("bulk-old-sweep-axis", 'run = "bulk"\n[sweep]\nevents = [1000, 2000]\n',
     ["sweep.events", "sweep.events_per_replica"]),
    ("bulk-sweep-point-invalid", 'run = "bulk"\n[bulk]\nblocks = 10\n[sweep]\nevents_per_replica = [100000, 10]\n',
     ["sweep point", "events_per_replica", "blocks"]),
    ("onsager-old-f0", 'run = "onsager"\n[bulk]\nf0 = 0.7\n', ["bulk.f0", "top level"]),
    ("onsager-field", 'run = "onsager"\n[bulk]\nfield_V_per_um = 1.0\n[sweep]\npreset = ["host"]\n'
     'composition = [0.1, 0.2]\nreplicas = 2\n', ["bulk.field_V_per_um", "zero-field"]),
    ("compare-old-key", 'run = "compare"\n[compare]\nmax_events_per_replica = 10\n',
     ["compare.max_events_per_replica", "kmc.max_events"]),
    ("compare-kmc-seed", 'run = "compare"\n[kmc]\nseed = 3\n', ["kmc.seed", "compare.seed"]),
    ("continuum-field", 'run = "continuum"\n[sweep]\nfield_V_per_um = [1.0, 100.0]\n',
     ["field_V_per_um[1]", "[-50, 50]"]),
    ("continuum-negative-length", 'run = "continuum"\n[geometry]\nwire_length_um = -1.0\n', ["wire_length_um"]),
    ("continuum-unknown-section", 'run = "continuum"\n[geometri]\nwire_length_um = 1.0\n', ["geometri", "geometry"]),
    ("onsager-replicas", 'run = "onsager"\n[sweep]\npreset = ["host"]\ncomposition = [0.1, 0.2]\nreplicas = 1\n',
     ["sweep.replicas", ">= 2"]),
]


@pytest.mark.parametrize("text, fragments", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_gives_one_line_naming_the_key(tmp_path, capsys, text, fragments):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    status = cli.main(["campaign", str(cfg), "-o", str(out), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ionwire campaign: error: ")
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert not out.exists()  # validation happens before anything is written or started


@pytest.mark.parametrize("argv, fragment", [
    (["--workers", "0"], "--workers"),
    (["--scheduler", "tcp://127.0.0.1:1"], "tcp://127.0.0.1:1"),
    (["--scheduler", "nonsense"], "--scheduler nonsense"),
    (["--scheduler", "tcp://127.0.0.1:notaport"], "--scheduler tcp://127.0.0.1:notaport"),
])
def test_bad_options_give_one_line(tmp_path, capsys, argv, fragment):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(TOY + GOOD_BODY)
    status = cli.main(["campaign", str(cfg), "-o", str(tmp_path / "out"), "--no-progress", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and fragment in err[0], err


def test_the_good_config_is_accepted(tmp_path, capsys):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(TOY + GOOD_BODY)
    assert cli.main(["campaign", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "dimension=3 replica=1" in out


@pytest.mark.parametrize("name", sorted(runtypes.REGISTRY))
def test_registered_run_types_reject_an_unknown_key(tmp_path, capsys, name):
    try:
        runtypes.get(name)
    except Exception as exc:  # the library of this run type is not in this installation
        pytest.skip(f"run type {name} unavailable: {exc}")
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'run = "{name}"\nnot_a_parameter_xyz = 1\n')
    assert cli.main(["campaign", str(cfg), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_a_parameter_xyz" in err[0], err


def test_an_output_path_that_is_a_file_gives_one_line(tmp_path, capsys):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(TOY + GOOD_BODY)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["campaign", str(cfg), "-o", str(afile), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0], err
    assert afile.read_text() == "x"
