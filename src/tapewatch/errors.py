"""User-facing errors: one line that names the input and what was expected.

The CLI turns these into a message on stderr and exit code 2, never a traceback.
"""


class TapewatchError(Exception):
    """Base of every error that is the user's input's fault, not a bug."""


class InputError(TapewatchError):
    """A file, directory or option that cannot be used as given."""


class NotFoundError(TapewatchError):
    """A record asked for by id does not exist (an alert, a case, a user, a key, a rule)."""


class ConflictError(TapewatchError):
    """The change is not allowed in the record's current state (closing a closed case, a taken name)."""


class PermissionDeniedError(TapewatchError):
    """The actor's role does not allow this (a viewer changing anything, an analyst managing users)."""
