"""Where a warning should point: the user's line, not the package's own.

`user_stacklevel` gives `warnings.warn` the ``stacklevel`` of the first frame
outside the package, however deep inside it the warning is raised (a job's
comment is found while polling, several calls below ``get_product``).
"""
import os
import sys

__all__ = ["user_stacklevel"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel():
    """The ``stacklevel`` for a `warnings.warn` made by the caller, pointing at the user's code.

    Returns
    -------
    int
        1 when the caller itself is outside the package.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 1
