"""Continuum reaction-drift-diffusion-Poisson model, its parameters and the Onsager theory.

Stages: parameters.py (the shared DeviceParameters and electrode_rates) -> mesh.py -> transport.py
(l_ab tables) -> _kernels.py (finite-volume fluxes, sources, exact Jacobian) -> model.py (the wire
problem, BDF2 time integration) -> observables.py -> io.py (HDF5, read_result) ->
experiment.py (config, calibration fit, sweeps, summary, Fig. 1e: the stable library API) and
figures.py (the paper's model figures).  README section "Continuum model" has the overview.
"""
