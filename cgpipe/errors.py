"""The one exception for a user's mistake, as opposed to a bug in cgpipe.

The command line (:mod:`cgpipe.cli`) reports an :class:`InputError` (and a missing file,
:class:`FileNotFoundError`) in one line and exits with status 2; every other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, file or configuration; the command line reports it in one line.

    Its message names what is at fault (a file, a configuration key, a line of a sheet,
    a residue, a frame...) so that the user can fix it without the traceback. It is a
    :class:`ValueError` so that callers catching ``ValueError`` keep working.
    """
