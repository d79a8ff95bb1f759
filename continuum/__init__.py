"""Continuum reaction-drift-diffusion-Poisson model of the biased heterojunction wire.

Stages: ionwire.structures.parameters (the shared DeviceParameters; the electrode rate law in
ionwire.structures.electrode_law) -> mesh.py -> transport.py
(l_ab tables) -> _kernels.py (finite-volume fluxes, sources, exact Jacobian) -> model.py (the wire
problem, BDF2 time integration) -> observables.py -> io.py (HDF5, read_result) ->
experiment.py (config, calibration fit, sweeps, summary, Fig. 1e: the stable library API) and
figures.py (the paper's model figures).  README section "Continuum model" has the overview.
"""
