"""Bad input and injected faults across every command: one line naming the problem, exit status 2,
and no file changed or lost.

The table below runs the CLI in-process (``ionwire.coupling.cli.main``) in one shared folder of
inputs and outputs whose every file is hashed before and after each case.  Faults that need the
machine's help (a full disk, a non-finite result) are injected by replacing one library call.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ionwire.coupling.cli import main

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent / "runs"

DEVICE_TINY = """run = "device"
[vacancies]
equilibrium_fraction = {{Br = 2e-2}}
[geometry]
wire_length_um = 0.0116
contact_width_um = 0.00116
gap_um = 0.00928
[electrodes]
alpha_um_per_V_s = {{Br = 2e3, Cl = 60.0}}
[kmc]
nx = 2
ny = 2
field_V_per_um = 1.0
duration_s = {duration}
seed = 3
[output]
frame_interval_s = {interval}
species = false
"""

TOY = """run = "campaign_toy:Toy"
samples = 500
seed = 7
[sweep]
dimension = [2, 3]
"""


# --------------------------------------------------------------------------------------------
# the shared folder
# --------------------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and 'dir' for every folder) under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames:
            out[os.path.relpath(os.path.join(dirpath, n), root)] = "dir"
        for n in filenames:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _write_trajectory(path: Path) -> None:
    from ionwire.kmc.h5md import OBSERVABLES, TrajectoryWriter
    from ionwire.structures.lattice import AnionLattice

    lat = AnionLattice(2, 2, 4)
    zeros = np.zeros(lat.n_planes)
    rng = np.random.default_rng(0)
    with TrajectoryWriter.create(path, lat, config={}, seed=0, counter_names=("events",)) as w:
        for k in range(3):
            occ = rng.integers(0, 3, lat.n_sites).astype(np.uint8)
            w.write_frame(k, 1e-9 * k, occ, {name: zeros for name in OBSERVABLES}, np.array([k]))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    (d / "device.toml").write_text(DEVICE_TINY.format(duration=1e-9, interval=5e-10))
    (d / "nothing.toml").write_text('run = "device"\n[vacancies]\nequilibrium_fraction = {Br = 1e-15}\n[geometry]\n'
                                    'wire_length_um = 0.0116\ncontact_width_um = 0.00116\ngap_um = 0.00928\n'
                                    '[kmc]\nnx = 2\nny = 2\n')
    (d / "continuum.toml").write_text('run = "continuum"\nduration_s = 100.0\n[sweep]\nfield_V_per_um = [1.0]\n')
    (d / "compare.toml").write_text((RUNS / "validate.toml").read_text())
    (d / "onsager.toml").write_text((RUNS / "onsager.toml").read_text())
    (d / "toy.toml").write_text(TOY)
    (d / "latin1.toml").write_bytes('run = "device"\n# caf\xe9\n'.encode("latin-1"))
    (d / "broken.toml").write_text('run = "device"\n[kmc\nnx = 2\n')
    (d / "notes.txt").write_text("a file the user wrote\n")
    (d / "existing.h5").write_bytes(b"\x89HDF\r\n\x1a\n not really, but precious\n")
    (d / "existing.png").write_bytes(b"\x89PNG precious picture")
    (d / "existing.extxyz").write_text("precious\n")
    (d / "adir").mkdir()
    (d / "report").mkdir()
    (d / "report" / "mine.txt").write_text("do not touch\n")
    _write_trajectory(d / "traj.h5")
    # a campaign folder of another config, and a project-like folder holding a campaign
    (d / "camp").mkdir()
    (d / "camp" / "campaign.json").write_text(json.dumps({"run": "toy", "fingerprint_sha": "0" * 64,
                                                          "fingerprint": {"samples": 1}}))
    proj = d / "proj"
    (proj / "runs").mkdir(parents=True)
    (proj / "runs" / "fig1e.toml").write_text((RUNS / "fig1e.toml").read_text())
    (proj / "campaign.json").write_text((d / "camp" / "campaign.json").read_text())
    (proj / "README.md").write_text("the user's project\n")
    # outputs another process is writing right now: their locks are held by a live process
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        "fds = []\n"
        "for p in sys.argv[1:]:\n"
        "    fd = os.open(p, os.O_RDWR | os.O_CREAT); fcntl.lockf(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode());"
        " fds.append(fd)\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"), *(str(d / f".busy{s}.lock") for s in (".h5", ".extxyz", ".png"))],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield d
    holder.kill()
    holder.wait()


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    err = [ln for ln in cap.err.splitlines() if ln.strip() and not ln.startswith("ionwire: compiling")]
    return rc, cap.out, err


# --------------------------------------------------------------------------------------------
# the table: (case id, argv with {d} for the folder, regex the one error line must match)
# --------------------------------------------------------------------------------------------
BIG = str(2**64)
CASES = [
    # --- device
    ("device-missing-config", "device {d}/nope.toml -o {d}/out.h5", r"nope\.toml: no such config file"),
    ("device-config-is-folder", "device {d}/adir -o {d}/out.h5", r"adir: is a folder"),
    ("device-config-not-utf8", "device {d}/latin1.toml -o {d}/out.h5", r"latin1\.toml: not a UTF-8"),
    ("device-config-syntax", "device {d}/broken.toml -o {d}/out.h5", r"broken\.toml: "),
    ("device-output-exists", "device {d}/device.toml -o {d}/existing.h5", r"existing\.h5.* exists: pass --resume"),
    ("device-output-is-folder", "device {d}/device.toml -o {d}/adir", r"adir is a folder"),
    ("device-output-folder-missing", "device {d}/device.toml -o {d}/no/where/out.h5", r"output folder .*no/where.* does not exist"),
    ("device-output-busy", "device {d}/device.toml -o {d}/busy.h5", r"busy\.h5 is in use by another running process \(process \d+\)"),
    ("device-output-read-only", "device {d}/device.toml -o /proc/ionwire-out.h5", r"cannot write output /proc/ionwire-out\.h5: "),
    ("device-resume-and-overwrite", "device {d}/device.toml -o {d}/out.h5 --resume --overwrite", r"--resume and --overwrite exclude"),
    ("device-resume-nothing", "device {d}/device.toml -o {d}/out.h5 --resume", r"out\.h5"),
    ("device-resume-foreign-file", "device {d}/device.toml -o {d}/notes.txt --resume", r"notes\.txt"),
    ("device-seed-too-big", "device {d}/device.toml -o {d}/out.h5 --seed " + BIG, r"--seed must be an integer in \[0, 2\^64 - 1\]"),
    ("device-seed-negative", "device {d}/device.toml -o {d}/out.h5 --seed -1", r"--seed must be an integer"),
    ("device-checkpoint-inf", "device {d}/device.toml -o {d}/out.h5 --checkpoint-every inf", r"--checkpoint-every"),
    ("device-checkpoint-inf-seconds", "device {d}/device.toml -o {d}/out.h5 --checkpoint-every infs", r"--checkpoint-every must be a positive finite"),
    ("device-checkpoint-zero", "device {d}/device.toml -o {d}/out.h5 --checkpoint-every 0", r"--checkpoint-every must be a positive"),
    ("device-checkpoint-garbage", "device {d}/device.toml -o {d}/out.h5 --checkpoint-every soon", r"--checkpoint-every expects"),
    ("device-nothing-moves", "device {d}/nothing.toml -o {d}/out.h5", r"nothing can happen in this device: 0 vacancies"),
    # --- device config values (written per case into {d}/case.toml)
    ("device-unknown-key", ["device", "{case}", "-o", "{d}/out.h5"], r"unknown key kmc\.bogus", {"kmc": "bogus = 1"}),
    ("device-nx-1", ["device", "{case}", "-o", "{d}/out.h5"], r"nx and ny must be >= 2", {"kmc": "nx = 1"}),
    ("device-field-absurd", ["device", "{case}", "-o", "{d}/out.h5"], r"kmc\.field_V_per_um = 1e\+12 V/um is implausible", {"kmc": "field_V_per_um = 1e12"}),
    ("device-duration-absurd", ["device", "{case}", "-o", "{d}/out.h5"], r"kmc\.duration_s = 1e\+30 s is implausible", {"kmc": "duration_s = 1e30", "output": "frame_interval_s = 1e29"}),
    ("device-seed-2-64-in-config", ["device", "{case}", "-o", "{d}/out.h5"], r"kmc\.seed must be an integer in \[0, 2\^64 - 1\]", {"kmc": "seed = " + BIG}),
    ("device-lattice-too-big", ["device", "{case}", "-o", "{d}/out.h5"], r"needs about .* of memory, more than 80% of this machine", {"kmc": "nx = 100000\nny = 100000"}),
    ("device-frames-too-many", ["device", "{case}", "-o", "{d}/out.h5"], r"frames \(more than 1e6\)", {"output": "frame_interval_s = 1e-20"}),
    ("device-wrong-type", ["device", "{case}", "-o", "{d}/out.h5"], r"kmc\.nx", {"kmc": 'nx = "eight"'}),
    # --- continuum
    ("continuum-missing-config", "continuum {d}/nope.toml -o {d}/c.h5", r"nope\.toml: no such config file"),
    ("continuum-output-exists", "continuum {d}/continuum.toml -o {d}/existing.h5", r"existing\.h5 exists: pass --overwrite"),
    ("continuum-output-is-folder", "continuum {d}/continuum.toml -o {d}/adir", r"adir: is a directory"),
    ("continuum-output-folder-missing", "continuum {d}/continuum.toml -o {d}/no/c.h5", r"output folder .* does not exist"),
    ("continuum-output-busy", "continuum {d}/continuum.toml -o {d}/busy.h5", r"busy\.h5 is in use"),
    ("continuum-output-read-only", "continuum {d}/continuum.toml -o /proc/ionwire-c.h5", r"cannot write output /proc/ionwire-c\.h5: "),
    ("continuum-workers-0", "continuum {d}/continuum.toml -o {d}/c.h5 --workers 0", r"--workers must be >= 1"),
    ("continuum-device-config", "continuum {d}/device.toml -o {d}/c.h5", r"run: this config is for 'device'"),
    ("continuum-config-not-utf8", "continuum {d}/latin1.toml -o {d}/c.h5", r"not a UTF-8"),
    ("continuum-unknown-key", ["continuum", "{case}", "-o", "{d}/c.h5"], r"unknown key numerics\.bogus", {"numerics": "bogus = 1"}, "continuum"),
    ("continuum-duration-absurd", ["continuum", "{case}", "-o", "{d}/c.h5"], r"duration_s = 1e\+30 s is implausible", {"": "duration_s = 1e30"}, "continuum"),
    ("continuum-duration-negative", ["continuum", "{case}", "-o", "{d}/c.h5"], r"duration_s must be a positive", {"": "duration_s = -1.0"}, "continuum"),
    ("continuum-field-absurd", ["continuum", "{case}", "-o", "{d}/c.h5"], r"field_V_per_um\[0\] must be in \[-50, 50\]", {"sweep": "field_V_per_um = [1e12]"}, "continuum"),
    # --- export
    ("export-missing-input", "export {d}/nope.h5 -o {d}/e.extxyz", r"no such file: .*nope\.h5"),
    ("export-not-a-trajectory", "export {d}/notes.txt -o {d}/e.extxyz", r"notes\.txt"),
    ("export-unknown-suffix", "export {d}/traj.h5 -o {d}/e.pdf", r"cannot tell the output format"),
    ("export-output-exists", "export {d}/traj.h5 -o {d}/existing.extxyz", r"existing\.extxyz exists: pass --overwrite"),
    ("export-output-folder-missing", "export {d}/traj.h5 -o {d}/no/e.extxyz", r"does not exist"),
    ("export-output-busy", "export {d}/traj.h5 -o {d}/busy.extxyz", r"busy\.extxyz is in use"),
    ("export-frames-garbage", "export {d}/traj.h5 -o {d}/e.extxyz --frames a:b", r"--frames"),
    ("export-frames-out-of-range", "export {d}/traj.h5 -o {d}/e.extxyz --frames 7", r"--frames"),
    ("export-onto-its-input", "export {d}/traj.h5 -o {d}/traj.h5", r"cannot tell the output format|is the input"),
    ("export-read-only", "export {d}/traj.h5 -o /proc/ionwire-e.extxyz", r"cannot write output /proc/ionwire-e\.extxyz: "),
    # --- snapshot
    ("snapshot-missing-input", "snapshot {d}/nope.h5 -o {d}/s.png", r"no such file: .*nope\.h5"),
    ("snapshot-not-png", "snapshot {d}/traj.h5 -o {d}/s.jpg", r"must end in \.png"),
    ("snapshot-output-exists", "snapshot {d}/traj.h5 -o {d}/existing.png --renderer png", r"existing\.png exists: pass --overwrite"),
    ("snapshot-output-busy", "snapshot {d}/traj.h5 -o {d}/busy.png --renderer png", r"busy\.png is in use"),
    ("snapshot-output-folder-missing", "snapshot {d}/traj.h5 -o {d}/no/s.png", r"does not exist"),
    ("snapshot-frame-out-of-range", "snapshot {d}/traj.h5 -o {d}/s.png --frame 9", r"--frame 9 is out of range"),
    ("snapshot-z-cells-garbage", "snapshot {d}/traj.h5 -o {d}/s.png --z-cells x:y", r"--z-cells"),
    ("snapshot-size-absurd", "snapshot {d}/traj.h5 -o {d}/s.png --size 100000x100000", r"--size 100000x100000"),
    ("snapshot-seed-too-big", "snapshot {d}/traj.h5 -o {d}/s.png --seed " + BIG, r"--seed must be an integer"),
    ("snapshot-not-a-result", "snapshot {d}/notes.txt -o {d}/s.png", r"cannot read .*notes\.txt"),
    # --- bulk and bench
    ("bulk-cells-1", "bulk --cells 1 2 2", r"--cells must be at least 2 2 2"),
    ("bulk-vacancies-0", "bulk --cells 4 4 4 --vacancies 0", r"--vacancies must be in \[1, 192\]"),
    ("bulk-field-inf", "bulk --field inf", r"--field = inf V/um is implausible"),
    ("bulk-field-absurd", "bulk --field 1e12", r"--field = 1e\+12 V/um is implausible"),
    ("bulk-lattice-too-big", "bulk --cells 100000 100000 100000", r"needs about .* of memory"),
    ("bulk-seed-too-big", "bulk --seed " + BIG, r"--seed must be an integer in \[0, 2\^64 - 1\]"),
    ("bulk-x-cl-2", "bulk --x-cl 2", r"--x-cl must be in \[0, 1\]"),
    ("bulk-events-0", "bulk --events 0", r"--events must be an integer >= 1"),
    ("bulk-events-inf", "bulk --events inf", r"--events must be an integer"),
    ("bulk-preset-unknown", "bulk --preset glass", r"preset must be one of"),
    ("bulk-replicas-0", "bulk --replicas 0", r"--replicas must be >= 1"),
    ("bench-lattice-too-big", "bench kmc --cells 100000 100000 100000", r"needs about .* of memory"),
    ("bench-repeat-0", "bench kmc --repeat 0", r"--repeat and --events must be >= 1"),
    # --- campaign
    ("campaign-missing-config", "campaign {d}/nope.toml -o {d}/c1", r"nope\.toml: no such config file"),
    ("campaign-config-not-utf8", "campaign {d}/latin1.toml -o {d}/c1", r"not a UTF-8"),
    ("campaign-workers-0", "campaign {d}/toy.toml -o {d}/c1 --workers 0", r"--workers: must be >= 1"),
    ("campaign-scheduler-garbage", "campaign {d}/toy.toml -o {d}/c1 --scheduler tcp://:x", r"--scheduler tcp://:x"),
    ("campaign-scheduler-timeout-0", "campaign {d}/toy.toml -o {d}/c1 --scheduler-timeout 0", r"--scheduler-timeout"),
    ("campaign-output-is-file", "campaign {d}/toy.toml -o {d}/notes.txt", r"notes\.txt exists and is not a folder"),
    ("campaign-exists-no-resume", "campaign {d}/toy.toml -o {d}/camp", r"already holds a campaign .* add --resume"),
    ("campaign-resume-other-config", "campaign {d}/toy.toml -o {d}/camp --resume", r"holds a campaign with a different config"),
    ("campaign-overwrite-foreign-files", "campaign {d}/toy.toml -o {d}/proj --overwrite", r"--overwrite refused: .*proj holds files no campaign wrote \(README\.md, runs/fig1e\.toml\)"),
    ("campaign-unknown-run-type", ["campaign", "{case}", "-o", "{d}/c1"], r"nosuchrun", {"": 'run = "nosuchrun"'}, "bare"),
    ("campaign-top-and-sweep", ["campaign", "{case}", "-o", "{d}/c1"], r"dimension: set both at the top level and as sweep\.dimension", {"": "dimension = 4"}, "toy"),
    ("campaign-missing-run", ["campaign", "{case}", "-o", "{d}/c1"], r"run: missing", {"": "samples = 3"}, "bare"),
    # --- campaign configs: the single-run plausibility limits, for every run, before anything runs
    ("campaign-device-duration-absurd", ["campaign", "{case}", "-o", "{d}/c1"],
     r'run [0-9a-f]{12} \(\{"field_V_per_um":1\.0\}\): kmc\.duration_s = 1e\+30 s is implausible',
     {"kmc": "duration_s = 1e30", "output": "frame_interval_s = 1e29"}, "camp_device"),
    ("campaign-device-lattice-too-big", ["campaign", "{case}", "-o", "{d}/c1"],
     r"run [0-9a-f]{12} .*: the device lattice \(100000 x 100000 x 20 cells.* needs about .* of memory",
     {"kmc": "nx = 100000\nny = 100000"}, "camp_device"),
    ("campaign-device-field-absurd", ["campaign", "{case}", "-o", "{d}/c1"],
     r'run [0-9a-f]{12} \(\{"seed":1\}\): kmc\.field_V_per_um = 1e\+12 V/um is implausible',
     {"kmc": "field_V_per_um = 1e12"}, "camp_device_seeds"),
    ("campaign-device-seed-too-big", ["campaign", "{case}", "-o", "{d}/c1"],
     r"kmc\.seed must be an integer in \[0, 2\^64 - 1\]", {"kmc": "seed = " + BIG}, "camp_device"),
    ("campaign-device-sweep-field-absurd", ["campaign", "{case}", "-o", "{d}/c1", "--dry-run"],
     r"sweep\.field_V_per_um\[1\]: must be in \[-5000, 5000\] V/um", {"sweep": "field_V_per_um = [1.0, 1e12]"},
     "camp_device"),
    ("campaign-device-duration-dry-run", ["campaign", "{case}", "-o", "{d}/c1", "--dry-run"],
     r"kmc\.duration_s = 1e\+30 s is implausible", {"kmc": "duration_s = 1e30", "output": "frame_interval_s = 1e29"},
     "camp_device"),
    ("campaign-continuum-duration-absurd", ["campaign", "{case}", "-o", "{d}/c1"],
     r"run [0-9a-f]{12} .*: duration_s = 1e\+30 s is implausible", {"": "duration_s = 1e30"}, "continuum"),
    ("campaign-continuum-memory", ["campaign", "{case}", "-o", "{d}/c1"],
     r"the stored profiles \(numerics\.n_nodes = 100000000 x numerics\.n_outputs = 1000\) needs about",
     {"numerics": "n_nodes = 100000000\nn_outputs = 1000"}, "continuum"),
    ("campaign-bulk-seed-too-big", ["campaign", "{case}", "-o", "{d}/c1"], r"bulk\.seed must be an integer",
     {"bulk": "seed = " + BIG}, "camp_bulk"),
    ("campaign-bulk-field-absurd", ["campaign", "{case}", "-o", "{d}/c1"], r"bulk\.field_V_per_um",
     {"bulk": "field_V_per_um = 1e12"}, "camp_bulk"),
    ("campaign-bulk-lattice-too-big", ["campaign", "{case}", "-o", "{d}/c1"],
     r"run [0-9a-f]{12} .*: bulk\.cells: the lattice \(1500 x 1500 x 1500 cells.* needs about .* of memory",
     {"bulk": "cells = [1500, 1500, 1500]\nevents_per_replica = 3000000000\nblocks = 1"}, "camp_bulk"),
    ("continuum-memory", ["continuum", "{case}", "-o", "{d}/c.h5"], r"the stored profiles .* needs about",
     {"numerics": "n_nodes = 100000000\nn_outputs = 1000"}, "continuum"),
    # --- compare and parameterize
    ("compare-missing-config", "compare {d}/nope.toml -o {d}/r1", r"nope\.toml: no such config file"),
    ("compare-output-is-file", "compare {d}/compare.toml -o {d}/notes.txt", r"notes\.txt exists and is not a folder"),
    ("compare-report-not-empty", "compare {d}/compare.toml -o {d}/report", r"report is not empty: pass --overwrite"),
    ("compare-replicas-0", "compare {d}/compare.toml -o {d}/r1 --replicas 0", r"replicas"),
    ("parameterize-missing-config", "parameterize {d}/nope.toml -o {d}/t.h5", r"nope\.toml: no such config file"),
    ("parameterize-output-exists", "parameterize {d}/onsager.toml -o {d}/existing.h5", r"existing\.h5 exists: pass --overwrite"),
    ("parameterize-png-exists", "parameterize {d}/onsager.toml -o {d}/existing.x", r"existing\.png exists: pass --overwrite"),
    ("parameterize-output-busy", "parameterize {d}/onsager.toml -o {d}/busy.h5", r"busy\.h5 is in use"),
]
# two placeholders above are replaced by cases whose expected line needs the folder itself
CASES = [c for c in CASES if c[2] is not None]
CASES += [
    ("continuum-figure-exists", "continuum {d}/continuum.toml -o {d}/existing.h5x", r"existing_fig1e\.png exists", None,
     "needs-figure"),
]

BASE_CONFIGS = {"device": DEVICE_TINY.format(duration=1e-9, interval=5e-10),
                "continuum": 'run = "continuum"\nduration_s = 100.0\n[sweep]\nfield_V_per_um = [1.0]\n',
                "toy": TOY, "bare": "",
                "camp_device": DEVICE_TINY.format(duration=1e-9, interval=5e-10) + "\n[sweep]\nfield_V_per_um = [1.0, -1.0]\n",
                "camp_device_seeds": DEVICE_TINY.format(duration=1e-9, interval=5e-10) + "\n[sweep]\nseed = [1, 2]\n",
                "camp_bulk": 'run = "bulk"\n[bulk]\ncells = [4, 4, 4]\n[sweep]\ncomposition = [0.5]\n'}


def _case_config(d: Path, tables: dict, base: str) -> Path:
    """The base config with extra lines added to the named tables ('' = top level)."""
    text = BASE_CONFIGS[base]
    for table, lines in tables.items():
        if table or base != "toy":  # the new value replaces the base's line of that key
            for line in lines.splitlines():
                key = line.split("=")[0].strip()
                text = "".join(t for t in text.splitlines(keepends=True) if not t.startswith(f"{key} ="))
        if not table:
            text = lines + "\n" + text if base != "toy" else text.replace("samples = 500", "samples = 500\n" + lines)
        elif f"[{table}]" in text:
            text = text.replace(f"[{table}]\n", f"[{table}]\n{lines}\n")
        else:
            text += f"\n[{table}]\n{lines}\n"
    path = d / "case.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, folder, capsys, monkeypatch):
    name, argv, pattern = case[:3]
    tables = case[3] if len(case) > 3 else None
    base = case[4] if len(case) > 4 else "device"
    monkeypatch.chdir(folder)
    case_file = None
    if base == "needs-figure":
        (folder / "existing_fig1e.png").write_bytes(b"precious figure")
        tables = None
    if tables:
        case_file = _case_config(folder, tables, base)
    before = _tree(folder)
    if isinstance(argv, str):
        argv = argv.split()
    argv = [a.replace("{d}", str(folder)).replace("{case}", str(case_file)) for a in argv]
    try:
        rc, out, err = _run(argv, capsys)
    finally:
        after = _tree(folder)
        if case_file is not None:
            case_file.unlink()
        if base == "needs-figure":
            (folder / "existing_fig1e.png").unlink()
    assert rc == 2, (name, rc, err)
    assert len(err) == 1, err
    assert err[0].startswith(f"ionwire {argv[0]}: error: "), err
    assert re.search(pattern, err[0]), (pattern, err[0])
    assert out == ""
    assert after == before, "files changed: " + ", ".join(sorted(set(after.items()) ^ set(before.items())))


def test_the_table_is_large_enough():
    commands = {(c[1].split()[0] if isinstance(c[1], str) else c[1][0]) for c in CASES}
    assert len(CASES) >= 60
    assert commands >= {"device", "continuum", "export", "snapshot", "bulk", "bench", "campaign", "compare",
                        "parameterize"}


# --------------------------------------------------------------------------------------------
# injected faults: a full disk, a non-finite result, a closed pipe, a silent scheduler
# --------------------------------------------------------------------------------------------
def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_during_export_is_one_line_and_leaves_no_output(folder, capsys, monkeypatch, tmp_path):
    import ionwire.coupling.commands.export as export

    monkeypatch.setattr(export, "_write_frames", _full_disk)
    rc, out, err = _run(["export", folder / "traj.h5", "-o", tmp_path / "e.extxyz"], capsys)
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0]
    assert sorted(os.listdir(tmp_path)) == []


def test_full_disk_during_continuum_is_one_line(folder, capsys, monkeypatch, tmp_path):
    import ionwire.continuum.experiment as experiment

    monkeypatch.setattr(experiment, "run_sweep", _full_disk)
    rc, out, err = _run(["continuum", folder / "continuum.toml", "-o", tmp_path / "c.h5", "--no-calibrate"], capsys)
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0]
    assert sorted(os.listdir(tmp_path)) == []  # the lock file is gone too


def test_a_non_finite_continuum_result_is_an_error_naming_the_run(folder, capsys, monkeypatch, tmp_path):
    import ionwire.continuum.experiment as experiment

    monkeypatch.setattr(experiment, "run_sweep", lambda *a, **k: {"field_V_per_um": [1.0, -1.0],
                                                                 "migration_length_um": [0.4, float("nan")]})
    rc, out, err = _run(["continuum", folder / "continuum.toml", "-o", tmp_path / "c.h5", "--no-calibrate"], capsys)
    assert rc == 2 and len(err) == 1
    assert "the continuum run at E = -1 V/um gave a non-finite migration length (nan)" in err[0]


def test_a_broken_pipe_exits_quietly(capsys, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def fileno(self):
            raise ValueError("no file")

    monkeypatch.setattr(sys, "stdout", Closed())
    rc = main(["campaign", str(RUNS / "onsager.toml"), "--dry-run"])
    assert rc == 141
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_in_a_real_pipe_exits_quietly(tmp_path):
    """``ionwire campaign --dry-run ... | head -1``: head closes the pipe; no traceback."""
    cmd = (f"{sys.executable} -m ionwire.coupling.cli campaign {RUNS / 'onsager.toml'} --dry-run | head -c 10 "
           "> /dev/null; echo ${PIPESTATUS[0]}")
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert res.stderr == "", res.stderr
    assert res.stdout.strip() in ("0", "141")


def test_a_tcp_service_that_is_not_a_scheduler_times_out(folder, capsys, tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])  # accepted, never answered
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        rc, out, err = _run(["campaign", folder / "toy.toml", "-o", tmp_path / "c", "--no-progress",
                             "--scheduler", f"tcp://127.0.0.1:{srv.getsockname()[1]}", "--scheduler-timeout", "2"],
                            capsys)
        wall = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()
    assert rc == 2 and len(err) == 1, err
    assert "dask scheduler" in err[0] and "127.0.0.1" in err[0]
    assert wall < 30


def test_a_non_finite_campaign_result_fails_that_run_by_name(tmp_path):
    from ionwire.coupling import campaign as cp

    class NaNToy:
        @staticmethod
        def run(config, point, outdir):
            return {"migration_length_um": float("nan"), "f": float("nan")}

    rec = cp.execute_run(NaNToy, None, "abc123abc123", {"field_V_per_um": -4.0}, str(tmp_path))
    assert rec["status"] == "failed"
    assert "run abc123abc123" in rec["error"] and '"field_V_per_um":-4.0' in rec["error"]
    assert "migration_length_um = nan" in rec["error"]
    rec = cp.execute_run(type("Inf", (), {"run": staticmethod(lambda c, p, o: {"x": [1.0, float("inf")]})}),
                         None, "abc123abc124", {}, str(tmp_path))
    assert rec["status"] == "failed" and "result.x[1] = inf" in rec["error"]
    # NaN as "undefined" elsewhere (e.g. the correlation factor of an absent species) is kept
    rec = cp.execute_run(type("Undef", (), {"run": staticmethod(lambda c, p, o: {"f": {"Cl": float("nan")}})}),
                         None, "abc123abc125", {}, str(tmp_path))
    assert rec["status"] == "done"


# --------------------------------------------------------------------------------------------
# --overwrite removes only what the campaign wrote
# --------------------------------------------------------------------------------------------
def test_campaign_overwrite_removes_only_what_the_campaign_wrote(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    cfg = tmp_path / "toy.toml"
    cfg.write_text(TOY)
    out = tmp_path / "c"
    argv = ["campaign", cfg, "-o", out, "--workers", "1", "--no-progress"]
    assert _run(argv, capsys)[0] == 0
    names = set(os.listdir(out))
    assert {"campaign.json", "index.json", "summary.json", "volumes.json", "runs"} <= names
    manifest = json.loads((out / ".ionwire-campaign-manifest.json").read_text())
    assert set(manifest["written"]) - {"summary.json"} == {"volumes.json"}  # what reduce() wrote
    # a genuine campaign folder: --overwrite starts again
    assert _run(argv + ["--overwrite"], capsys)[0] == 0
    # a file of the user's in it: refused, nothing removed
    (out / "my_notes.txt").write_text("mine")
    (out / "runs" / "keep.toml").write_text("mine too")
    before = _tree(out)
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    assert rc == 2 and len(err) == 1 and "my_notes.txt, runs/keep.toml" in err[0]
    assert _tree(out) == before


def test_campaign_in_a_project_folder_never_deletes_its_files(tmp_path, capsys, monkeypatch):
    """``-o .`` in a project root: the campaign may run there, but --overwrite then refuses
    because runs/ and the README were there before (recorded in the manifest)."""
    monkeypatch.syspath_prepend(str(HERE))
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "fig1e.toml").write_text("precious")
    (tmp_path / "README.md").write_text("precious")
    (tmp_path / "toy.toml").write_text(TOY)
    monkeypatch.chdir(tmp_path)
    argv = ["campaign", "toy.toml", "-o", ".", "--workers", "1", "--no-progress"]
    assert _run(argv, capsys)[0] == 0
    before = _tree(tmp_path)
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    assert rc == 2 and len(err) == 1 and "README.md" in err[0] and "runs" in err[0]
    assert _tree(tmp_path) == before


# --------------------------------------------------------------------------------------------
# device: the last frame lands on the requested duration
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("duration, interval, expected", [
    (1e-9, 3e-10, [0.0, 3e-10, 6e-10, 9e-10, 1e-9]),  # not a multiple: a last frame at 1e-9
    (1e-9, 5e-9, [0.0, 1e-9]),  # interval longer than the duration
    (1e-9, 2.5e-10, [0.0, 2.5e-10, 5e-10, 7.5e-10, 1e-9]),  # a multiple: unchanged
])
def test_device_frames_end_on_the_duration(tmp_path, capsys, duration, interval, expected):
    from ionwire.kmc.h5md import open_trajectory

    cfg = tmp_path / "d.toml"
    cfg.write_text(DEVICE_TINY.format(duration=duration, interval=interval))
    rc, out, err = _run(["device", cfg, "-o", tmp_path / "d.h5", "--quiet", "--json"], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    with open_trajectory(tmp_path / "d.h5") as traj:
        times = np.asarray(traj.times_s)
    assert np.allclose(times, expected, rtol=1e-12, atol=0)
    assert summary["frames"] == len(expected)
    assert summary["time_s"] == pytest.approx(duration, rel=1e-12)
