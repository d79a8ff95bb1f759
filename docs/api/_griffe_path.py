"""mkdocs hook: let mkdocstrings (griffe) find the ``ionwire`` package.

The repository root is the package ``ionwire`` (setuptools package-dir), but griffe finds a
package by a directory of that name.  This hook makes a temporary directory holding a symbolic
link ``ionwire`` -> the repository root and puts it first on ``sys.path`` while mkdocs runs.
"""
import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]
_TMP = Path(tempfile.mkdtemp(prefix="ionwire-docs-"))
(_TMP / "ionwire").symlink_to(ROOT, target_is_directory=True)
sys.path.insert(0, str(_TMP))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


@event_priority(100)  # before the mkdocstrings plugin reads its handler options
def on_config(config):
    """Give the mkdocstrings python handler the directory as its search path."""
    plugin = config.plugins.get("mkdocstrings")
    if plugin is not None:
        python = plugin.config.setdefault("handlers", {}).setdefault("python", {})
        python["paths"] = [str(_TMP)] + [p for p in python.get("paths", []) if p != "."]
    return config
