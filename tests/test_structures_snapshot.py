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


def _strip_and_area(image):
    from ionwire.structures.snapshot import strip_height_px

    s = strip_height_px(image.shape[0])
    return image[image.shape[0] - s:], image[: image.shape[0] - s]


def test_legend_lists_the_elements_drawn_and_the_atoms_carry_the_colours(tmp_path):
    lat = AnionLattice(3, 3, 6)
    occ = np.zeros(lat.n_sites, dtype=np.uint8)  # CsPbBr3, no Cl
    image = matplotlib.image.imread(render_snapshot(perovskite_atoms(lat, occ, time_s=2e-6), tmp_path / "l.png",
                                                    size_px=(800, 300), renderer="png"))
    strip, area = _strip_and_area(image)
    for element in ("Br", "Cs", "Pb"):
        assert _has_colour(strip, ELEMENT_COLOURS[element]) and _has_colour(area, ELEMENT_COLOURS[element]), element
    assert not _has_colour(strip, ELEMENT_COLOURS["Cl"]) and not _has_colour(strip, ELEMENT_COLOURS["X"])
    # without annotation: no strip, the atoms fill the whole height
    bare = matplotlib.image.imread(render_snapshot(perovskite_atoms(lat, occ), tmp_path / "b.png", size_px=(800, 300),
                                                   renderer="png", annotate=False))
    assert bare.shape[:2] == (300, 800)


def test_scale_bar_has_the_length_it_states(tmp_path):
    from ionwire.structures.snapshot import picture_scale_px_per_A, scale_bar_length_A

    atoms = heterojunction(3, 3, 10, 10, rng=0)
    size = (900, 300)
    image = matplotlib.image.imread(render_snapshot(atoms, tmp_path / "s.png", size_px=size, renderer="png"))
    strip, _ = _strip_and_area(image)
    scale = picture_scale_px_per_A(atoms, size)
    expected_px = scale_bar_length_A(scale, size[0]) * scale
    black = np.all(strip[..., :3] < 0.05, axis=-1)
    longest = 0
    for row in black:  # the longest horizontal run of black pixels is the bar
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]]))))[::2]
        longest = max(longest, int(runs.max()) if len(runs) else 0)
    assert abs(longest - expected_px) <= 2, (longest, expected_px)
    assert 0.05 * size[0] < expected_px < 0.35 * size[0]


@pytest.mark.parametrize("scale, width, expected", [(3.0, 1200, 50.0), (2.0, 600, 50.0), (10.0, 300, 5.0)])
def test_scale_bar_lengths_are_round(scale, width, expected):
    from ionwire.structures.snapshot import scale_bar_length_A

    assert scale_bar_length_A(scale, width) == expected


@pytest.mark.parametrize("t, text", [(0.0, "0 s"), (2e-6, "2 \u00b5s"), (2e-8, "20 ns"), (14400.0, "4 h"),
                                     (90.0, "1.5 min"), (0.5, "500 ms")])
def test_time_text(t, text):
    from ionwire.structures.snapshot import format_time

    assert format_time(t) == text


def test_default_size_fills_the_width_and_a_too_long_wire_is_refused(tmp_path):
    from ionwire.structures.snapshot import fit_size

    atoms = heterojunction(2, 2, 20, 20, rng=0)
    w, h = fit_size(atoms, None)
    image = matplotlib.image.imread(render_snapshot(atoms, tmp_path / "f.png", size_px=None, renderer="png"))
    assert image.shape[:2] == (h, w) and w == 1200
    _, area = _strip_and_area(image)
    rows, cols = np.nonzero(np.any(area[..., :3] < 0.9, axis=-1))
    assert np.ptp(cols) + 1 >= 0.95 * area.shape[1] and np.ptp(rows) + 1 >= 0.8 * area.shape[0]
    long_wire = heterojunction(2, 2, 100, 100, rng=0)  # 200 cells: 0.9 px per Angstrom at 1200 px
    with pytest.raises(ValueError, match=r"too long to resolve atoms.*about \d+ unit cells along the wire fit"):
        render_snapshot(long_wire, tmp_path / "x.png", size_px=None, renderer="png")
    assert not (tmp_path / "x.png").exists()
