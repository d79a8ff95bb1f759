"""Lattice kinetic Monte Carlo of halide-vacancy hops (bulk and device).

Bulk public API (see each module):

- :mod:`ionwire.kmc.state`: ``BulkState.random(lattice, x_cl, n_vacancies, seed)``,
  ``BulkState.from_occupancy(lattice, occupancy, rng_state)``, ``.checkpoint()`` /
  ``BulkState.from_checkpoint(data)``, ``.reset_observables()``, ``.nbytes``.
- :mod:`ionwire.kmc.bulk`: ``BulkKMC(state, material, field_V_per_um).run(n_events)``,
  ``hop_rate_table(material, field_V_per_um)``, ``field_half_eV(field_V_per_um, a_A)``,
  ``benchmark(cells, ...)``.
- :mod:`ionwire.kmc.observables`: ``measure_bulk(cells, x_cl, n_vacancies, material, field_V_per_um,
  n_events, n_replicas, seed, warmup_events, n_blocks) -> BulkResult``, ``theory_l(result)``,
  ``measure_f0(...) -> (f0, err)``, ``run_replica(...)``, ``result_to_dict(result)``.
- :mod:`ionwire.kmc._kernels`: the shared numba primitives (sum tree, local10 rates, xoshiro256++).
"""
from ionwire.structures._jit_cache import configure as _configure_jit_cache

# the numba cache is keyed by the kernel sources (see structures._jit_cache)
_configure_jit_cache()
