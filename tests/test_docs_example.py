"""The notebook-style quick start (docs/examples/quickstart.py) runs as a script and writes what
it says: a device trajectory, a plot and a snapshot."""
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "examples" / "quickstart.py"


def test_quickstart_script_runs_and_writes_its_outputs(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, IONWIRE_EXAMPLE_OUT=str(out), MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith("continuum: after 3600 s at +4 V/um the front moved")
    moved_um = float(lines[0].split("moved ")[1].split(" um")[0])
    assert 0.0 < moved_um < 1.0  # forward bias moves the front into the Br segment, by less than 4 h would
    assert "device kMC:" in lines[1] and "11 frames" in lines[1]
    from ionwire.kmc.h5md import open_trajectory

    with open_trajectory(out / "device.h5") as traj:
        assert traj.n_frames == 11 and traj.times_s[-1] == 2e-7
    assert matplotlib.image.imread(out / "profiles.png").shape[:2] == (350, 1000)
    snapshot = matplotlib.image.imread(out / "junction.png")
    assert snapshot.shape[1] == 1200 and 100 < snapshot.shape[0] < 1200


def test_quickstart_is_a_script_with_cells():
    text = SCRIPT.read_text()
    assert text.count("# %%") >= 8
    for needed in ("run_field", "run_device", "savefig", "render_snapshot"):
        assert needed in text
