"""Lattice geometry, ASE structures and snapshots."""
from .lattice import AnionLattice

__all__ = ["AnionLattice"]
