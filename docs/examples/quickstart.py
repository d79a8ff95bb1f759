# %% [markdown]
# # ionwire quick start
#
# A notebook-style script (cells separated by `# %%`; open it in Jupyter with jupytext, in VS Code
# or Spyder, or run it with `python docs/examples/quickstart.py`).  It takes well under a minute:
#
# 1. a small continuum run: the biased CsPbBr3 | CsPbCl3 wire at +4 V/um for one hour;
# 2. a small device-kMC run: a 100 nm wire, atom by atom, for 0.2 microseconds;
# 3. a plot of both composition profiles;
# 4. a Fig. 1c-style snapshot of the kMC wire at its junction.
#
# Outputs go to the folder in `$IONWIRE_EXAMPLE_OUT` (default `quickstart_out/`).

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(os.environ.get("IONWIRE_EXAMPLE_OUT", "quickstart_out"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Continuum model
# A config is a mapping with the tables of a TOML file (`ionwire init continuum` writes one with
# every key, its unit and its default).  Here: the default 10 um wire on a coarse mesh, the
# paper's electrode rates as given (no calibration), one field.

# %%
from ionwire.continuum.experiment import load_config, run_field  # noqa: E402

continuum_cfg = load_config({
    "duration_s": 3600.0,
    "numerics": {"n_nodes": 300},
    "calibration": {"enabled": False},
    "sweep": {"field_V_per_um": [4.0]},
})
wire, summary = run_field(continuum_cfg, 4.0)
print(f"continuum: after {summary['times_s'][-1]:.0f} s at +4 V/um the front moved "
      f"{summary['migration_length_um']:.3f} um into the Br segment")

# %% [markdown]
# ## 2. Device kMC
# The ~100 nm wire of `runs/device_small.toml` on a thinner cross-section (8 x 8 cells) and a
# shorter run; the trajectory is an H5MD file.

# %%
from ionwire.kmc.device import load_config as load_device_config  # noqa: E402
from ionwire.kmc.device import run_device  # noqa: E402
from ionwire.kmc.h5md import open_trajectory  # noqa: E402

device_cfg = load_device_config({
    "vacancies": {"equilibrium_fraction": {"Br": 1e-3}},
    "geometry": {"wire_length_um": 0.1, "contact_width_um": 0.02, "gap_um": 0.06},
    "electrodes": {"alpha_um_per_V_s": {"Br": 2e3, "Cl": 60.0}},
    "kmc": {"nx": 8, "ny": 8, "field_V_per_um": 2.0, "duration_s": 2e-7, "seed": 1},
    "output": {"frame_interval_s": 2e-8},
})
trajectory_path = OUT / "device.h5"
run = run_device(device_cfg, trajectory_path, overwrite=True)
print(f"device kMC: {run['events']} events, {run['frames']} frames in {run['wall_s']:.1f} s")

with open_trajectory(trajectory_path) as traj:
    plane_z_nm = traj.static("plane_z_A") / 10.0
    x_br_kmc = traj.observable("x_Br")[-1]
    t_kmc = float(traj.times_s[-1])
    lattice = traj.lattice
    occupancy = traj.species(traj.n_frames - 1)

# %% [markdown]
# ## 3. A plot of both profiles

# %%
fig, (ax_c, ax_k) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
for k in (0, len(wire.times_s) // 2, len(wire.times_s) - 1):
    ax_c.plot(wire.z_um, wire.x_br[k], label=f"t = {wire.times_s[k]:.3g} s")
ax_c.set(xlabel="z (um)", ylabel="x_Br (site fraction)", title="continuum, +4 V/um")
ax_c.legend()
ax_k.step(plane_z_nm, x_br_kmc, where="mid")
ax_k.set(xlabel="z (nm)", ylabel="x_Br per anion plane", title=f"device kMC, t = {t_kmc:.2g} s")
fig.savefig(OUT / "profiles.png", dpi=100)
print(f"plot: {OUT / 'profiles.png'}")

# %% [markdown]
# ## 4. A snapshot of the kMC wire at the junction
# `crop_atoms` cuts 40 unit cells around the middle of the wire out of the last frame;
# `render_snapshot` draws them with a legend, a scale bar and the time.

# %%
from ionwire.structures.atoms import crop_atoms  # noqa: E402
from ionwire.structures.snapshot import render_snapshot  # noqa: E402

mid = lattice.nz // 2
atoms = crop_atoms(lattice, occupancy, z=(mid - 20, mid + 20), time_s=t_kmc)
snapshot = render_snapshot(atoms, OUT / "junction.png", size_px=None, renderer="png",
                           label=f"cells {mid - 20}:{mid + 20} of {lattice.nz}")
print(f"snapshot: {snapshot} ({len(atoms)} atoms; Br {np.sum(atoms.numbers == 35)}, "
      f"Cl {np.sum(atoms.numbers == 17)})")
