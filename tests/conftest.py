import os

# numba compiles once per process; keep its cache inside the tree so repeated runs are fast
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".numba_cache"))
