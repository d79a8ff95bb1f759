"""Fig. 1c-style snapshots (structures/snapshot.py): file, size and element colours of the PNG."""
import matplotlib.image
import numpy as np
import pytest
from ase import Atoms

from ionwire.structures.atoms import heterojunction, perovskite_atoms
from ionwire.structures.lattice import AnionLattice
from ionwire.structures.snapshot import ELEMENT_COLOURS, povray_available, render_snapshot


def _has_colour(image, rgb, tol=0.02):
    """True when some opaque pixel is within ``tol`` of ``rgb`` in every channel."""
    px = image[..., :3].reshape(-1, 3)
    opaque = image[..., 3].reshape(-1) > 0.99 if image.shape[-1] == 4 else np.ones(len(px), bool)
    return bool(np.any(np.all(np.abs(px[opaque] - np.asarray(rgb)) < tol, axis=1)))


@pytest.mark.parametrize("size", [(1200, 400), (641, 257), (300, 500)])
def test_png_has_requested_size_and_the_four_element_colours(tmp_path, size):
    atoms = heterojunction(3, 3, 6, 6, x_v_br=0.02, rng=0)
    out = render_snapshot(atoms, tmp_path / "fig.png", size_px=size, renderer="png")
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (size[1], size[0])
    for element in ("Br", "Cl", "Cs", "Pb"):
        assert _has_colour(image, ELEMENT_COLOURS[element]), element
    # the colour check can fail: no blue without chlorine, no yellow without marked vacancies
    assert not _has_colour(image, ELEMENT_COLOURS["X"])


def test_colours_are_absent_when_their_element_is(tmp_path):
    lat = AnionLattice(3, 3, 4)
    occ = np.zeros(lat.n_sites, dtype=np.uint8)
    occ[::7] = 2
    atoms = perovskite_atoms(lat, occ, vacancies="mark")  # CsPbBr3 with marked vacancies
    image = matplotlib.image.imread(render_snapshot(atoms, tmp_path / "br.png", size_px=(400, 300), renderer="png"))
    assert _has_colour(image, ELEMENT_COLOURS["Br"]) and _has_colour(image, ELEMENT_COLOURS["X"])
    assert not _has_colour(image, ELEMENT_COLOURS["Cl"])


def test_junction_is_along_the_horizontal(tmp_path):
    # Br (z < junction) must be drawn on the left half, Cl on the right half
    atoms = heterojunction(3, 3, 8, 8, rng=0)
    image = matplotlib.image.imread(render_snapshot(atoms, tmp_path / "j.png", size_px=(800, 300), renderer="png"))
    cols = {}
    for element in ("Br", "Cl"):
        hit = np.all(np.abs(image[..., :3] - np.asarray(ELEMENT_COLOURS[element])) < 0.02, axis=-1)
        cols[element] = np.nonzero(hit)[1]
    assert np.median(cols["Br"]) < 400 < np.median(cols["Cl"])
    assert np.mean(cols["Br"] < 400) > 0.9 and np.mean(cols["Cl"] > 400) > 0.9


def test_bad_requests_are_errors(tmp_path):
    atoms = heterojunction(2, 2, 2, 2)
    with pytest.raises(ValueError, match="image size"):
        render_snapshot(atoms, tmp_path / "x.png", size_px=(0, 100))
    with pytest.raises(ValueError, match="renderer"):
        render_snapshot(atoms, tmp_path / "x.png", renderer="svg")
    with pytest.raises(ValueError, match="no snapshot colour"):
        render_snapshot(atoms + Atoms("Au", positions=[[0, 0, 0]]), tmp_path / "x.png")


@pytest.mark.skipif(not povray_available(), reason="POV-Ray (povray) is not installed")
def test_povray_snapshot_has_requested_size_and_colours(tmp_path):
    atoms = heterojunction(2, 2, 3, 3, rng=0)
    image = matplotlib.image.imread(render_snapshot(atoms, tmp_path / "pov.png", size_px=(320, 160), renderer="pov"))
    assert image.shape[:2] == (160, 320)
    # ray-traced shading: look for the hue, not the exact value
    for element in ("Br", "Cl", "Cs"):
        assert _has_colour(image, ELEMENT_COLOURS[element], tol=0.25), element
