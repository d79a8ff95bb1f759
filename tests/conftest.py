# The tests use the kernel cache of the command line (structures/_jit_cache.py: $NUMBA_CACHE_DIR,
# else ~/.cache/ionwire/numba/<digest of the kernel sources>), so running the tests compiles the
# kernels once for `ionwire device`, `ionwire bulk`, ... as well, and the other way round.
