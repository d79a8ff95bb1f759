"""kMC -> continuum coupling: parameters, comparisons, campaigns and the ``ionwire`` CLI."""
