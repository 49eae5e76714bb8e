"""Error classes that separate user mistakes from internal bugs (DESIGN §10).

A :class:`UserError` is printed by the CLI as one line and exits with code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it."""

    exit_code = 2


class SuiteError(UserError):
    """The suite file is missing, malformed or inconsistent."""


class PluginError(UserError):
    """A plugin name, its params, or its registration is wrong."""


class DataError(UserError):
    """An input file or folder cannot be read as the dataset expects."""


class CheckpointError(UserError):
    """A model checkpoint is missing, corrupt, or for another architecture."""


class StoreError(UserError):
    """The results database cannot be opened or written."""
