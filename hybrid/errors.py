"""The error of input the user can fix."""

from __future__ import annotations


class InputError(ValueError):
    """Input the user can fix: a flag, a name, a file. Its message is one line that names the
    input, says what is wrong with it and, where a list is short, what is valid; ``wanmeter``
    prints it and exits 2. Any other exception is a bug and ends in a traceback.

    A ``ValueError`` still, so that callers that catch one keep working."""
