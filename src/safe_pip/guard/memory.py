"""How the guard's process gives freed memory back, where the C library lets it choose.

The guard reads and renders index pages of up to megabytes each, on several threads at once.
glibc's malloc (mallopt(3)) serves a block above ``M_MMAP_THRESHOLD`` with its own mapping,
given back when freed, but raises the threshold to the size of each such block freed, up to
32 MiB: after the first big page, page-sized buffers come from the heaps instead, one heap
per thread (up to eight per core), and what they leave behind stays in the process. Fixing the
threshold at its default and keeping to two heaps cut the guard's peak RSS by about a sixth
on a real-shaped resolution (102 pages, 32,000 files), at no measurable CPU cost.
"""

from __future__ import annotations

import ctypes
import sys

#: mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: glibc's default threshold, kept fixed (a fixed value turns its dynamic rise off).
MMAP_THRESHOLD = 128 * 1024
ARENAS = 2


def give_memory_back() -> None:
    """Set the C library's malloc as above (for the whole process; setting it again changes
    nothing). Elsewhere than Linux, nothing: other systems' allocators are left as they are,
    and musl's mallopt does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_ARENA_MAX, ARENAS)
