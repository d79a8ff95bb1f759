"""The library's error types, below every model and the command line.

Every error a user can fix (a bad config value, a bad option, an unreadable or foreign file) is
an :class:`UserError`; the command line prints it as one line and exits with status 2.
"""
from __future__ import annotations


class IonwireError(Exception):
    """Base class of every error ionwire raises on purpose."""


class UserError(IonwireError):
    """An error the user can fix (bad option, config or file): printed as one line."""


class ParameterError(UserError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class FileFormatError(UserError, ValueError):
    """An ionwire HDF5 file is missing, unreadable, truncated or of another schema."""
