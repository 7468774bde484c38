"""User-facing errors: one line that names the input and what was expected.

The CLI turns these into a message on stderr and exit code 2, never a traceback.
"""


class TapewatchError(Exception):
    """Base of every error that is the user's input's fault, not a bug."""


class InputError(TapewatchError):
    """A file, directory or option that cannot be used as given."""
