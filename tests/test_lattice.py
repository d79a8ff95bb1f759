"""Geometry of the anion sublattice (docs/model.md section 2) checked against its definition."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ionwire.structures.lattice import (AnionLattice, ENVIRONMENT_OFFSETS, NEIGHBOUR_OFFSETS, REVERSE_DIRECTION,
                                environment_site, neighbour_site)


def _min_image(d, box):
    return d - box * np.round(d / box)


def test_neighbours_are_the_eight_at_a_over_sqrt2():
    lat = AnionLattice(4, 3, 5)
    pos = lat.positions_A()
    box = lat.cell_A
    nb = lat.neighbour_table()
    s = lat.hop_length_A
    for site in range(lat.n_sites):
        d = _min_image(pos - pos[site], box)
        r = np.linalg.norm(d, axis=1)
        expected = np.flatnonzero(np.isclose(r, s))
        assert sorted(expected) == sorted(nb[site])
        # hop vectors agree with the positions
        hv = lat.hop_vectors_A()[site % 3]
        assert np.allclose(_min_image(pos[nb[site]] - pos[site], box), hv)


def test_environment_is_the_rest_of_the_shared_octahedron():
    lat = AnionLattice(3, 3, 3)
    pos = lat.positions_A()
    box = lat.cell_A
    a = lat.lattice_constant_A
    nb = lat.neighbour_table()
    env = lat.environment_table()
    for site in range(lat.n_sites):
        for d in range(8):
            b = nb[site, d]
            mid = pos[site] + 0.5 * _min_image(pos[b] - pos[site], box)
            # the Pb shared by both: the corner at distance a/2 from both sites
            pb_cands = [pos[site] + v for v in 0.5 * a * np.vstack([np.eye(3), -np.eye(3)])]
            pb = [p for p in pb_cands if np.allclose(np.round(p / a) * a, p)
                  and np.isclose(np.linalg.norm(_min_image(pos[b] - p, box)), a / 2)]
            assert len(pb) == 1
            dists = np.linalg.norm(_min_image(pos - pb[0], box), axis=1)
            octa = set(np.flatnonzero(np.isclose(dists, a / 2)))
            assert len(octa) == 6
            assert set(env[site, d]) == octa - {site, b}
            # reverse hop has the same environment
            rd = REVERSE_DIRECTION[site % 3, d]
            assert nb[b, rd] == site
            assert set(env[b, rd]) == set(env[site, d])
            assert np.linalg.norm(mid - pb[0]) < a


def test_planes_and_bounded_z():
    lat = AnionLattice(2, 2, 3, periodic_z=False)
    assert lat.n_planes == 6
    assert lat.sites_per_plane().sum() == lat.n_sites
    counts = np.bincount(lat.plane_index(), minlength=lat.n_planes)
    assert np.array_equal(counts, lat.sites_per_plane())
    assert np.allclose(lat.positions_A()[:, 2], lat.plane_z_A()[lat.plane_index()])
    nb = lat.neighbour_table()
    z = lat.positions_A()[:, 2]
    # a hop changes z by 0 or +-a/2; missing neighbours only at the ends
    for site in range(lat.n_sites):
        for d in range(8):
            if nb[site, d] < 0:
                assert z[site] < lat.plane_spacing_A or z[site] > z.max() - lat.plane_spacing_A
            else:
                assert np.isclose(abs(z[nb[site, d]] - z[site]), 0) or np.isclose(abs(z[nb[site, d]] - z[site]), lat.plane_spacing_A)


@settings(max_examples=30, deadline=None)
@given(nx=st.integers(2, 5), ny=st.integers(2, 5), nz=st.integers(1, 5), periodic=st.booleans(), data=st.data())
def test_numba_arithmetic_matches_tables(nx, ny, nz, periodic, data):
    if periodic and nz < 2:
        nz = 2
    lat = AnionLattice(nx, ny, nz, periodic_z=periodic)
    site = data.draw(st.integers(0, lat.n_sites - 1))
    nb = lat.neighbour_table()
    env = lat.environment_table()
    for d in range(8):
        assert neighbour_site(site, d, nx, ny, nz, periodic, NEIGHBOUR_OFFSETS) == nb[site, d]
        for m in range(4):
            assert environment_site(site, d, m, nx, ny, nz, periodic, ENVIRONMENT_OFFSETS) == env[site, d, m]


@pytest.mark.parametrize("bad", [dict(nx=1, ny=4, nz=4), dict(nx=4, ny=4, nz=-3), dict(nx=4.5, ny=4, nz=4)])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="n[xyz]"):
        AnionLattice(**bad)
