"""The numba cache of the package's kernels is found by their path inside the package, so a copy
of the same sources elsewhere (a reinstall into site-packages, another clone) reuses it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import caching

from ionwire.structures import _jit_cache

ROOT = Path(_jit_cache.__file__).resolve().parent.parent


def _locator():
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    found = [c for c in impl._locator_classes if getattr(c, "_ionwire", False)]
    assert len(found) == 1 and impl._locator_classes[0] is found[0]
    return found[0]


def test_package_files_are_cached_by_their_place_in_the_package(tmp_path):
    loc = _locator()
    assert loc.get_suitable_cache_subpath(str(ROOT / "kmc" / "_kernels.py")) == "ionwire_kmc"
    assert loc.get_suitable_cache_subpath(str(ROOT / "structures" / "lattice.py")) == "ionwire_structures"
    outside = tmp_path / "user.py"
    outside.write_text("")
    assert loc.from_function(lambda: None, str(outside)) is None  # numba's own locators take over


def test_a_copy_of_the_sources_elsewhere_reuses_the_compiled_kernels(tmp_path):
    """Compile a kernel from the package, then import the same sources from another folder with
    the same cache base: nothing new is written (the kernel is loaded, not compiled)."""
    import shutil

    copy = tmp_path / "copy"
    copy.mkdir()  # a real copy of the same sources at another path, as a reinstall makes
    shutil.copytree(ROOT, copy / "ionwire", ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "__pycache__", "*.egg-info", "runs", "docs", "tests", "benchmarks", "build"))
    code = ("import numpy as np\n"
            "from ionwire.kmc import _kernels as K\n"
            "t = K.tree_new(8); K.tree_build(t); print(K.tree_capacity(8))\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert any(p.suffix == ".nbc" for p in files)
    env["PYTHONPATH"] = str(copy)
    check = ("import sys; from ionwire.kmc import _kernels\n"
             "assert _kernels.__file__.startswith(sys.argv[1]), _kernels.__file__\n")
    subprocess.run([sys.executable, "-c", check + code, str(copy)], check=True, env=env, capture_output=True)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "cache").rglob("*") if p.is_file()) == files


@pytest.mark.validate
def test_cold_first_result_of_the_small_device_run_within_30_cpu_seconds(tmp_path):
    """A small device run with an empty kernel cache (every kernel it uses compiled) reaches its
    result within 30 CPU seconds of the child process (the compile time of the event loop set
    the pace: 76 CPU-s while its helpers were inlined by numba's IR inliner).  CPU seconds, not
    wall: they do not grow with the load of a shared machine."""
    import resource
    import tomllib

    text = (ROOT / "runs" / "device_small.toml").read_text()
    assert tomllib.loads(text)["kmc"]["duration_s"] == 2e-6
    config = tmp_path / "device_first.toml"
    config.write_text(text.replace("duration_s = 2e-6", "duration_s = 2e-7"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("IONWIRE_QUIET_COMPILE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "ionwire.coupling.cli", "device", str(config),
                           "-o", str(tmp_path / "first.h5")], env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    assert "compiling the numerical kernels" in proc.stderr  # the cache was cold
    assert (tmp_path / "first.h5").stat().st_size > 0
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu <= 30.0, f"cold first result took {cpu:.1f} CPU s"
