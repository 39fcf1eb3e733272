"""CPU memory a training process frees stays in the process for its next step (glibc).

glibc's malloc serves a block of 128 KiB or more (a threshold that rises to 32 MiB as such
blocks are freed) with a fresh mapping from the kernel and unmaps it on free. A training
step allocates and frees the same large tensors every iteration (StarGAN's 64 px
discriminator has a 32 MiB weight and as large a gradient, cast and accumulated in
every step), so the kernel faults in and zeroes each of their 4 KiB pages again every
time: on 2 CPU cores about 10 ms per 32 MiB. Serving every block from malloc's heap and
keeping what is freed there lets the next step reuse those pages: 5-7% of a 64 px
StarGAN iteration (docs/performance.md). The arithmetic does not change; the process's resident
memory stays near its peak instead of shrinking between steps.

Nothing changes where the user already chose: ``MDT_KEEP_FREED_MEMORY=0``, a
``MALLOC_*_`` variable or glibc malloc tunables in the environment, or another allocator
preloaded (jemalloc, tcmalloc, mimalloc).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEEP_AT_TOP = 2**31 - 1  # bytes of free heap top kept rather than returned (mallopt takes an int)
USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def user_chose(environ=os.environ) -> bool:
    """Whether the environment already says how memory is allocated."""
    return (
        environ.get("MDT_KEEP_FREED_MEMORY") == "0"
        or any(name in environ for name in USER_SETTINGS)
        or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")
        or any(name in environ.get("LD_PRELOAD", "") for name in OTHER_ALLOCATORS)
    )


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse; True where it now does. Process-wide
    and for the rest of the process: call it where a process is about to train."""
    if not sys.platform.startswith("linux") or user_chose():
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (musl and others have no mallopt of this meaning)
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_AT_TOP))
