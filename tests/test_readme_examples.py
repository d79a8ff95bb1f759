"""Every shell example of README.md runs, on small inputs, after the README's main job.

The examples are read from README.md when the tests run (every ```bash block; a line ending in a
backslash continues), so a rewritten README is checked as it stands.  Each block runs, line by
line as a user would type it, in its own copy of one working directory prepared like a user's
checkout after the main job:

- every top-level entry of the checkout is linked into it (commands run from the checkout, as
  the README's are), except ``runs/``, whose ``*.toml`` hold the shipped configs with the overrides of ``SMALL`` merged in (fewer
  fields, replicas, events and cells, shorter times: the same keys, so every option of the
  examples is exercised; the rest of each file is the shipped one);
- the main job (``ionwire campaign runs/fig1e.toml``) has run on them;
- the inputs that some examples read but the main job does not write are made by the README
  command that writes them (``PRODUCERS``; the report of this test lists them).

Skipped: the main job, the test commands and the installation steps (CI runs them).  Substitutions that are
not config sizes are in ``REWRITE`` (an address of a cluster that does not exist here, the sizes
of the benchmarks, the GUI).  After each line the files it names with ``-o`` must exist.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAIN_JOB = "ionwire campaign runs/fig1e.toml"

# config overrides (deep-merged into the shipped runs/NAME.toml)
SMALL = {
    "fig1e": {"duration_s": 600.0, "workers": 1, "numerics": {"n_nodes": 120, "n_outputs": 11},
              "calibration": {"enabled": False}, "sweep": {"field_V_per_um": [-4.0, 2.0, 4.0]}},
    "sensitivity": {"duration_s": 600.0, "workers": 1, "numerics": {"n_nodes": 120, "n_outputs": 8},
                    "laws": ["irreversible_at_positive"], "trajectories": 2, "scan_levels": 0},
    "device_small": {"kmc": {"nx": 6, "ny": 6, "duration_s": 1e-7}, "output": {"frame_interval_s": 1e-8}},
    "onsager": {"bulk": {"cells": [4, 4, 4], "events_per_replica": 20000, "warmup_events": 2000, "blocks": 20},
                "sweep": {"composition": [0.0, 0.5, 1.0], "replicas": 2}},
    "validate": {"kmc": {"nx": 4, "ny": 4}, "numerics": {"n_nodes": 100},
                 "compare": {"times_s": [1e-7, 1e-6], "replicas": 4}, "electrode_kinetics": None},
    "validate_host": {"kmc": {"nx": 4, "ny": 4}, "numerics": {"n_nodes": 100},
                      "compare": {"times_s": [1e-7, 1e-6], "replicas": 4}},
    "validate_high_field": {"kmc": {"nx": 4, "ny": 4}, "numerics": {"n_nodes": 100},
                            "compare": {"times_s": [1e-7, 1e-6], "replicas": 4}},
    "fig1d": {"workers": 1, "numerics": {"n_nodes": 120, "n_outputs": 6}, "calibration": {"enabled": False},
              "bias": {"duration_s": 600.0}},
    "reversal": {"numerics": {"n_nodes": 120, "n_outputs": 6}, "calibration": {"enabled": False},
                 "bias": {"steps": [{"field_V_per_um": 4.0, "duration_s": 300.0},
                                    {"field_V_per_um": 0.0, "duration_s": 300.0}]}},
    "ac_diode": {"workers": 1, "numerics": {"n_nodes": 120, "n_outputs": 6}, "calibration": {"enabled": False},
                 "sweep": {"bias": {"square_wave": {"period_s": [60.0, 120.0]}}}},
}
# a small bulk-kMC campaign for the campaign throughput benchmark: the `ionwire init bulk`
# template with these keys replaced wherever its layout puts them
BULK_CAMPAIGN = {"cells": [8, 8, 8], "events_per_replica": 20000, "blocks": 10, "replicas": 2}

# (regular expression, replacement) applied to every command line
REWRITE = [
    (r"tcp://node17:8786", "{scheduler}"),              # a running dask scheduler: one started here
    (r"/scratch/\$USER/", "{workdir}/scratch/"),
    (r"--run-s 10\b", "--run-s 0.2"),                  # scheduling-overhead benchmark
    (r"bench_campaign\.py (throughput|all)", r"bench_campaign.py \1 --config runs/bulk_small.toml --sizes '' --runs 2 --run-s 0.2"),
    (r"bench_device_ratio\.py", "bench_device_ratio.py --rounds 1"),
    (r"ionwire bench (kmc|device)", r"ionwire bench \1 --cells 8 8 64 --events 2e4 --warmup 2e3"),
    (r"--repeat 3", "--repeat 1"),
    (r"--events 1e6", "--events 1e4"),
    (r"--replicas 4", "--replicas 2"),
    (r"--cells 16 16 16", "--cells 8 8 8"),
    (r"--vacancies 120", "--vacancies 15"),
    (r"^ase gui ", "python -m ase gui --terminal "),   # opens the file through ase gui, without a window
    # the README lists it as an alternative to the main job: after the main job the folder holds
    # that campaign already, so it needs -o (or --overwrite)
    (r"^(ionwire campaign runs/fig1e\.toml --workers 2)$", r"\1 -o runs/out/fig1e_workers2"),
]
# inputs some examples read that the main job does not write -> the README line that writes them
PRODUCERS = {
    "runs/out/device_small.h5": "ionwire device runs/device_small.toml -o runs/out/device_small.h5",
    "runs/out/fig1e.h5": "ionwire continuum runs/fig1e.toml --json",
    "runs/out/onsager_table.h5": "ionwire parameterize runs/onsager.toml -o runs/out/onsager_table.h5",
}
# files some examples name that nothing in the README writes -> what the test puts there
PLACEHOLDERS = {"my.toml": "runs/fig1e.toml"}


def _skip(command: str) -> bool:
    """The main job, the test commands and the installation steps (CI runs all of them)."""
    c = command.split(" #")[0].strip()
    return (c == MAIN_JOB or c.startswith("pip install") or c.startswith("python -m pytest")
            or "&& " + MAIN_JOB in c or re.match(r"python[\d.]* -m venv ", c) is not None)


def shell_blocks(text: str) -> list[list[str]]:
    """The command lines of every ```bash block of a markdown text (continuations joined)."""
    blocks = []
    for body in re.findall(r"^```bash[ \t]*\n(.*?)^```", text, flags=re.S | re.M):
        lines, cur = [], ""
        for raw in body.splitlines():
            cur += raw.strip() if cur else raw.rstrip()
            if cur.endswith("\\"):
                cur = cur[:-1].rstrip() + " "
                continue
            if cur.strip() and not cur.lstrip().startswith("#"):
                lines.append(cur.strip())
            cur = ""
        if lines:
            blocks.append(lines)
    return blocks


def _blocks():
    return [b for b in shell_blocks(README.read_text()) if not all(_skip(c) for c in b)]


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _replace_keys(mapping: dict, values: dict) -> dict:
    """``mapping`` with every key of ``values`` replaced at whatever depth it sits; a key of
    ``values`` found nowhere is an error (a renamed config key must not leave a full-size run)."""
    seen: set = set()

    def walk(m: dict) -> dict:
        seen.update(k for k in m if k in values and not isinstance(m[k], dict))
        return {k: (walk(v) if isinstance(v, dict) else values.get(k, v)) for k, v in m.items()}

    out = walk(mapping)
    missing = sorted(set(values) - seen)
    assert not missing, f"keys not in the template: {missing}"
    return out


def _toml(mapping: dict, prefix: str = "") -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):  # an inline table (e.g. a step of [bias] steps)
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in mapping.items() if not isinstance(v, dict)]
    for k, v in mapping.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}"
            lines += ["", f"[{name}]", _toml(v, name + ".")]
    return "\n".join(lines)


def _env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _run(command: str, cwd: Path, subs: dict) -> None:
    command = re.sub(r"\s+#.*$", "", command)  # the trailing comment
    for pattern, repl in REWRITE:
        command = re.sub(pattern, repl.format(**subs) if "{" in repl else repl, command)
    words = shlex.split(command)
    if words[0] == "ionwire" and not re.search(r"[$&|;<>`]", command):
        # in this process (the same entry point; saves the start-up of a new interpreter)
        from ionwire.coupling.cli import main

        old = os.getcwd()
        os.chdir(cwd)
        try:
            rc = main(words[1:])
        except SystemExit as exc:  # --version, --help
            rc = exc.code
        finally:
            os.chdir(old)
        assert rc == 0, f"{command!r} exited with {rc}"
    else:
        res = subprocess.run(command, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True,
                             timeout=600, executable="/bin/bash")
        assert res.returncode == 0, f"{command!r} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    for i, w in enumerate(words[:-1]):
        if w in ("-o", "--output", "--paper-figures"):
            assert (cwd / words[i + 1]).exists(), f"{command!r} did not write {words[i + 1]}"


@pytest.fixture(scope="module")
def scheduler():
    """A dask scheduler with one worker process (what `--scheduler ADDRESS` connects to), when
    the README names one."""
    if "tcp://" not in README.read_text():
        yield None
        return
    import distributed

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope="module")
def after_main_job(tmp_path_factory, scheduler):
    """A working directory after the README's main job, with the inputs of PRODUCERS."""
    work = tmp_path_factory.mktemp("readme")
    (work / "runs").mkdir()
    for path in sorted((ROOT / "runs").glob("*.toml")):
        mapping = _merge(tomllib.loads(path.read_text()), SMALL.get(path.stem, {}))
        (work / "runs" / path.name).write_text(_toml(mapping) + "\n")
    from ionwire.coupling.commands.init import template_text

    bulk = _replace_keys(tomllib.loads(template_text("bulk")), BULK_CAMPAIGN)
    (work / "runs" / "bulk_small.toml").write_text(_toml(bulk) + "\n")
    for entry in ROOT.iterdir():
        if entry.name != "runs" and not entry.name.startswith(".") and entry.name != "site":
            os.symlink(entry, work / entry.name)
    subs = {"scheduler": scheduler, "workdir": str(work)}
    _run(MAIN_JOB, work, subs)
    text = README.read_text()
    for produced, command in PRODUCERS.items():
        if produced in text:
            _run(command, work, subs)
    for name, source in PLACEHOLDERS.items():
        if re.search(rf"(?<![\w/]){re.escape(name)}", text):
            shutil.copy(work / source, work / name)
    return work, subs


# minutes of runs in all (about 4 on two shared cores): with the long validations (-m validate)
@pytest.mark.validate
@pytest.mark.parametrize("block", _blocks(), ids=lambda b: b[0].split(" #")[0][:60])
def test_readme_shell_block_runs(block, after_main_job, tmp_path):
    base, subs = after_main_job
    work = tmp_path / "work"
    shutil.copytree(base, work, symlinks=True)
    subs = dict(subs, workdir=str(work))
    for produced, command in PRODUCERS.items():
        if any(command in line for line in block):  # this block writes it itself, as the README says
            # ... with its companion files (a figure beside the result): outputs are not replaced
            # without --overwrite
            for f in work.glob(produced.rsplit(".", 1)[0] + "*"):
                if f.is_file():
                    f.unlink()
    for command in block:
        if not _skip(command):
            _run(command, work, subs)


def test_the_readme_has_shell_examples_and_the_main_job():
    blocks = shell_blocks(README.read_text())
    assert sum(len(b) for b in blocks) >= 5
    assert any(MAIN_JOB in c for b in blocks for c in b)


def test_shell_block_parsing():
    text = "x\n```bash\nionwire a \\\n  --b   # note\n# only a comment\n\nionwire c\n```\n```python\nprint()\n```\n"
    assert shell_blocks(text) == [["ionwire a --b   # note", "ionwire c"]]
