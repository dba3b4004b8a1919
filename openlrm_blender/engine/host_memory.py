"""The C allocator's policy for a process that runs models on the CPU (glibc only).

A transformer layer makes and frees activations of 50-100 MB (TripoSR's feed-forward
holds 3072 x 8192 floats). glibc hands blocks over 32 MB out as fresh memory maps and
returns them on free, so every layer pays the kernel's page faults again: about 750,000
per TripoSR encode, 1.1-1.5 s of its 18-19 s on a 2-core EPYC. Keeping freed blocks in
the heap during a run, and trimming the heap once the run is over, pays them in the first
layers only. Elsewhere (macOS, Windows, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

# mallopt's parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BELOW = 1 << 30  # blocks under 1 GiB come from the heap and stay there until trimmed


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return library if hasattr(library, "mallopt") and hasattr(library, "malloc_trim") else None


def keep_freed_blocks() -> bool:
    """Reuse large freed blocks instead of mapping them anew; True where the policy took."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BELOW))


def give_back_freed_blocks() -> None:
    """Return the heap's free memory to the system: between runs only the weights stay."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
