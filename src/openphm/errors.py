"""Errors a user can act on.

Each carries a one-line message that is safe to print: it never contains a value from the data, only
file, table and column names. The CLI turns them into exit code 2 and no traceback.
"""


class OpenPHMError(Exception):
    """Base class for errors that end a command with a clear one-line message."""

    exit_code = 2


class InputError(OpenPHMError):
    """The source folder cannot be read: a missing file or column, or a file that is not CSV/Parquet."""


class KeyMissingError(OpenPHMError):
    """No pseudonymisation key was supplied, or the key is too weak to use."""


class StoreError(OpenPHMError):
    """The store is missing, of the wrong kind for the engine, or lacks a table a stage needs."""


class PipelineError(OpenPHMError):
    """Stages are declared inconsistently (a cycle, two stages writing one table) or a stage failed."""


class OutOfMemoryError(OpenPHMError):
    """The engine ran out of the memory it may use; the message names the setting that raises it."""
