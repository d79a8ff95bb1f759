"""Conventions every `ionwire` command shares (coupling/cli.py) and `ionwire init`
(coupling/commands/init.py): -q/-v through logging, --json, templates that validate, the example
configs shipped inside the package."""
import ast
import json
import logging
import tomllib
from pathlib import Path

import pytest

from ionwire.coupling.cli import build_parser, log_level, main
from ionwire.coupling.commands import init

ROOT = Path(__file__).resolve().parents[1]
RUN_TYPES = list(init.RUN_TYPES)


def _subparsers():
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return action.choices


def test_every_command_has_quiet_verbose_traceback_and_json():
    commands = _subparsers()
    assert {"init", "export", "snapshot", "device", "continuum"} <= set(commands)
    for name, sub in commands.items():
        options = {o for a in sub._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose", "--traceback", "--json"} <= options, name


def test_log_levels():
    assert log_level(0, 0) == logging.WARNING
    assert log_level(1, 0) == logging.INFO
    assert log_level(2, 0) == logging.DEBUG
    assert log_level(0, 1) == logging.ERROR


def test_quiet_silences_the_summary_and_verbose_adds_log_records(tmp_path, capsys):
    handlers = list(logging.getLogger("ionwire").handlers)
    out = tmp_path / "d.toml"
    assert main(["init", "device", "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"wrote {out}") and cap.err == ""
    assert main(["init", "device", "-o", str(out), "--force", "-q"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    assert main(["init", "device", "-o", str(out), "--force", "-vv"]) == 0
    err = capsys.readouterr().err
    assert "ionwire: DEBUG: ionwire " in err and f"ionwire: INFO: wrote {out}" in err
    # -v given before the command name counts too
    assert main(["-v", "init", "device", "-o", str(out), "--force"]) == 0
    assert "INFO: wrote" in capsys.readouterr().err
    # -q keeps a requested JSON document
    assert main(["init", "device", "-o", str(out), "--force", "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(out)
    # the CLI leaves no handler behind (library users configure logging themselves)
    assert logging.getLogger("ionwire").handlers == handlers


def test_errors_stay_one_line_under_verbose(tmp_path, capsys):
    assert main(["init", "--example", "nope", "-o", str(tmp_path / "x.toml"), "-v"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ionwire init: error: no example config 'nope'") and err.count("\n") == 1


@pytest.mark.parametrize("run_type", RUN_TYPES)
def test_every_template_loads_through_the_real_loader_and_equals_its_starting_values(run_type, tmp_path, capsys):
    out = tmp_path / f"{run_type}.toml"
    assert main(["init", run_type, "-o", str(out)]) == 0
    text = out.read_text()
    config = init.load_template(run_type, text)
    # the template encodes exactly the config of its starting values (the shipped example or
    # the documented defaults): commented lines change nothing, every written value round-trips
    assert config == init.load_template_mapping(run_type, init._starting_values(run_type))
    mapping = tomllib.loads(text)
    if run_type in ("bulk", "campaign"):
        from ionwire.coupling.campaign import load_spec

        spec = load_spec(out)
        assert spec.run_name == ("device" if run_type == "campaign" else "bulk") and len(spec.points) >= 2
    else:
        assert mapping.get("run", run_type) in (run_type, "device")


@pytest.mark.parametrize("run_type", RUN_TYPES)
def test_every_key_with_a_unit_says_it_and_every_key_is_commented(run_type):
    text = init.template_text(run_type)
    n_keys = 0
    for line in text.splitlines():
        code = line.lstrip("# ").split("#")[0]
        if "=" not in code or line.startswith("#   ") or line.startswith("# ionwire"):
            continue
        key = code.split("=")[0].strip()
        if not key.isidentifier():
            continue
        n_keys += 1
        assert "    # " in line, line
        unit = init.unit_of(key)
        if unit:
            assert f"[{unit}]" in line, line
    assert n_keys >= 8


def test_a_template_with_a_bad_value_is_refused_naming_the_key(tmp_path, capsys):
    text = init.template_text("device").replace("wire_length_um = 0.1", "wire_length_um = -1.0")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["device", str(bad), "-o", str(tmp_path / "o.h5")]) == 2
    assert "wire_length_um" in capsys.readouterr().err


def test_examples_ship_in_the_package_and_init_copies_them(tmp_path, capsys):
    shipped = sorted(p.name for p in (ROOT / "runs").glob("*.toml"))
    assert shipped and sorted(p.name for p in init.examples_dir().iterdir() if p.name.endswith(".toml")) == shipped
    out = tmp_path / "copy.toml"
    assert main(["init", "--example", "device_small", "-o", str(out)]) == 0
    assert out.read_bytes() == (ROOT / "runs" / "device_small.toml").read_bytes()
    assert main(["init", "--example", "device_small", "-o", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert main(["init", "--list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing["run_types"]) == set(RUN_TYPES) and listing["examples"] == [n[:-5] for n in shipped]
    assert main(["init"]) == 2
    assert "give a RUNTYPE or --example NAME" in capsys.readouterr().err


def test_pyproject_ships_the_example_configs():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "runs/*.toml" in data["tool"]["setuptools"]["package-data"]["ionwire"]


def test_library_code_does_not_print():
    """Only the command line writes to the terminal: no print() in the library (a script's own
    ``main()`` or ``__main__`` block excepted)."""
    offenders = []
    for package in ("kmc", "continuum", "coupling", "structures"):
        for path in (ROOT / package).rglob("*.py"):
            if "commands" in path.parts or path.name == "cli.py":
                continue
            tree = ast.parse(path.read_text())
            allowed = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name == "main":
                    allowed |= {id(n) for n in ast.walk(node)}
                if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                    allowed |= {id(n) for n in ast.walk(node)}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                        and id(node) not in allowed):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
