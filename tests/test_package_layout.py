"""The package's import rules, read from the code (an AST walk), and its installed layout.

- ``ionwire.structures`` (what the system is) imports no other ionwire package;
- ``ionwire.kmc`` and ``ionwire.continuum`` import only the foundation, never each other;
- only ``ionwire.coupling`` imports both models, and nothing imports ``ionwire.coupling`` but
  itself, the benchmarks and the tests.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("structures", "kmc", "continuum", "coupling")
ALLOWED = {
    "structures": {"structures"},
    "kmc": {"kmc", "structures"},
    "continuum": {"continuum", "structures"},
    "coupling": {"coupling", "kmc", "continuum", "structures"},
}


def _imports(path: Path, package: str):
    """(line, imported ionwire subpackage) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside its own package (``..`` would leave it)
                depth = len(path.relative_to(ROOT / package).parts) - 1
                if node.level > depth + 1:
                    yield node.lineno, "<above the package>"
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES:
                yield node.lineno, f"bare:{parts[0]}"
            elif parts[0] == "ionwire" and len(parts) > 1:
                yield node.lineno, parts[1]


def _violations():
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in _imports(path, package):
                if target not in ALLOWED[package]:
                    out.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return out


def test_import_rules_hold():
    assert _violations() == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The walk itself: a kMC module importing the continuum model is reported."""
    fake = tmp_path / "kmc"
    fake.mkdir()
    (fake / "bad.py").write_text("from ionwire.continuum.model import Numerics\nimport kmc.bulk\n")
    found = sorted(t for _, t in _imports(fake / "bad.py", "kmc"))
    assert found == ["bare:kmc", "continuum"]


def test_tests_and_benchmarks_use_the_namespace():
    """No test or benchmark imports a folder by its bare name (it would not exist when installed)."""
    bad = []
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, target in _imports(path, folder):
                if target.startswith("bare:"):
                    bad.append(f"{path.relative_to(ROOT)}:{line}")
    assert bad == []


def test_version_and_subpackages_import():
    import ionwire
    import ionwire.continuum
    import ionwire.coupling
    import ionwire.kmc
    import ionwire.structures  # noqa: F401

    assert ionwire.__version__ and ionwire.__version__ != "0+unknown"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_folder_is_a_package(package):
    assert (ROOT / package / "__init__.py").is_file()


def test_every_docs_model_reference_lands_on_a_section():
    """Docstrings cite the physics document as "docs/model.md section N": N must be a section."""
    import re

    model = (ROOT / "docs" / "model.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", model, flags=re.M))
    assert {"1", "7", "10"} <= sections
    internal_spec = "MODEL" + ".md"
    cited = []
    for folder in PACKAGES + ("tests", "runs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".toml") and path.is_file():
                text = " ".join(path.read_text().split())
                cited += [(path.name, n) for n in re.findall(r"docs/model\.md sections? (\d+(?:\.\d+)?)", text)]
                assert internal_spec not in text, path  # the internal specification is not shipped
    assert cited, "no reference found"
    missing = sorted({(name, n) for name, n in cited if n not in sections})
    assert missing == []
