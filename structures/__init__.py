"""Lattice geometry, ASE structures and snapshots."""
from .atoms import (heterojunction, occupancy_from_atoms, occupancy_from_profile, perovskite_atoms,
                    sample_continuum_window)
from .lattice import AnionLattice
from .snapshot import render_snapshot

__all__ = ["AnionLattice", "heterojunction", "occupancy_from_atoms", "occupancy_from_profile",
           "perovskite_atoms", "render_snapshot", "sample_continuum_window"]
