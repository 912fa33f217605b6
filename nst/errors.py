"""The one exception type for mistakes a user can fix (bad paths, bad files, bad settings).

Entry points print it as a single ``error: ...`` line instead of a traceback (see :mod:`nst.cli`).
"""


class NSTError(Exception):
    """A user-facing error: the message says what went wrong, with which file or key, and what to do."""
