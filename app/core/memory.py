"""Give memory freed by a one-off burst of allocations back to the operating system.

Loading a model allocates and frees tens of megabytes of short-lived objects
(the vocabulary's JSON, the check rows' scores). glibc keeps freed heap pages
for reuse instead of returning them, so without a trim every worker would carry
about 27 MB it no longer uses (measured with the 133-category model; see
docs/performance.md). `malloc_trim` is glibc's own call for this; other C
libraries (musl, macOS) do not have it, and there this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        # None: the symbols the interpreter is already linked with, i.e. its C library.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the operating system; False where unsupported."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
