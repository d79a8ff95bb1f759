"""Continuum reaction-drift-diffusion-Poisson model, its parameters and the Onsager theory."""
