"""Subcommands of the ``ionwire`` CLI: each has a docstring, ``add_arguments`` and ``run``."""
