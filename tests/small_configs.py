"""Small, fast configs shared by the tests: a continuum sweep of a few fields and a few-cell device."""
import copy


def continuum_toml(fields=(-4.0, 0.0, 4.0), extra: str = "") -> str:
    """A continuum sweep (600 s, 120 nodes, no calibration) over ``fields``; ``extra`` is TOML
    inserted before ``[numerics]`` (top-level keys must come first, so use tables there)."""
    return f"""
run = "continuum"
duration_s = 600.0
workers = 1
{extra}
[numerics]
n_nodes = 120
n_outputs = 8
[calibration]
enabled = false
[sweep]
field_V_per_um = [{", ".join(repr(float(f)) for f in fields)}]
"""


_DEVICE = {
    "vacancies": {"equilibrium_fraction": {"Br": 1e-2}},
    "geometry": {"wire_length_um": 0.0464, "contact_width_um": 0.0116, "gap_um": 0.0232},
    "electrodes": {"alpha_um_per_V_s": {"Br": 1e5, "Cl": 3e3}},
    "kmc": {"nx": 6, "ny": 4, "field_V_per_um": 3.0, "duration_s": 2e-9, "seed": 3},
    "output": {"frame_interval_s": 1e-9},
}


def tiny_device(duration_s: float = 2e-9, seed: int = 3) -> dict:
    """A 6 x 4 cross-section device wire (0.046 um, 1 % vacancies) at +3 V/um, one frame per ns."""
    cfg = copy.deepcopy(_DEVICE)
    cfg["kmc"].update(duration_s=duration_s, seed=seed)
    return cfg
