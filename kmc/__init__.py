"""Lattice kinetic Monte Carlo of halide-vacancy hops (bulk and device)."""
