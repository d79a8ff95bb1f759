"""ionwire: halide-ion migration in lead-halide perovskite heterostructures.

Two models of one system, on one parameter set:

- :mod:`ionwire.structures`: what the system is (lattice, parameters, units, electrode rate law,
  Onsager tables, file conventions); the foundation both models import;
- :mod:`ionwire.kmc`: lattice kinetic Monte Carlo of vacancy hops (bulk and device);
- :mod:`ionwire.continuum`: the reaction-drift-diffusion-Poisson model of the wire;
- :mod:`ionwire.coupling`: kMC -> continuum parameterisation, comparisons, campaigns and the
  ``ionwire`` command line.

The physics, units and every modelling choice are stated in ``docs/model.md``.
"""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ionwire")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
