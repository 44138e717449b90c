"""Giving memory back to the system between the heavy stages of a night.

A night's stages run one after another in one process (the CLI) or one per task (Airflow);
either way a stage that worked on millions of rows must not leave its peak behind for the
next. Three allocators keep freed memory for reuse: Arrow's pool, glibc's heap (Python
objects, DuckDB) and DuckDB's own buffer manager (:func:`autosynk.delta.release`).

Arrow's pool is jemalloc on Linux (``autosynk/__init__.py`` sets
``ARROW_DEFAULT_MEMORY_POOL`` before pyarrow is imported; the pool is chosen once, at
import, and Acero's joins and group-bys use it whatever ``pa.set_memory_pool`` says): at
Stockholm scale the wheels' default mimalloc kept each big group-by's hash table (a
distinct of 2 M rows: +540 MB of RSS for a 190 MB result, against +210 MB with jemalloc),
and the transform's peak was 1.69 GB with mimalloc against 1.50 GB with jemalloc for the
same CPU time. An operator's own ``ARROW_DEFAULT_MEMORY_POOL`` is left alone.

glibc's heap follows its own rules until :func:`mapped_heap_blocks` fixes them for the
transform.

Giving back costs a full collection of the interpreter's objects: about 60 ms in a process
that has the CLI loaded and more in one that has Airflow, whatever the register's size.
:func:`giving_back` therefore pays it only after work that grew the process by
:data:`WORTH_GIVING_BACK` or more: a city's stages do, a small municipality's do not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import sys
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: growth of the resident set below which a stage leaves nothing worth a full collection
WORTH_GIVING_BACK = 64 << 20


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def give_back() -> None:
    """Collect cycles, then return the free pages of Arrow's pool and of glibc's heap."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:  # glibc only; other C libraries return memory on their own terms
        trim(0)


def resident_bytes() -> int | None:
    """This process's resident set now (Linux: ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def worth_giving_back(before: int | None, after: int | None) -> bool:
    """Whether work that took the resident set from ``before`` to ``after`` should give
    memory back; where the resident set cannot be read, always."""
    return before is None or after is None or after - before >= WORTH_GIVING_BACK


@contextlib.contextmanager
def giving_back() -> Iterator[None]:
    """Run the enclosed work, then :func:`give_back` if it grew the process enough to be
    worth it (:func:`worth_giving_back`), also when the work fails."""
    before = resident_bytes()
    try:
        yield
    finally:
        if worth_giving_back(before, resident_bytes()):
            give_back()


#: glibc's M_MMAP_THRESHOLD (``mallopt``): blocks of this many bytes or more get a mapping
#: of their own
_M_MMAP_THRESHOLD = -3


def mapped_heap_blocks(threshold: int = 128 * 1024) -> None:
    """From now on in this process, glibc maps every block of ``threshold`` bytes or more
    on its own, so that it is given back the moment it is freed (glibc only; an operator's
    own ``MALLOC_MMAP_THRESHOLD_`` stands).

    glibc's default raises that threshold to the largest mapped block freed so far (up to
    32 MB): the blocks of numpy arrays and Python lists after it then come from the heap,
    which cannot shrink below a block still in use. A city's transform kept 0.1-0.25 GB so,
    freed but not given back, at its peak. The transform calls this when it starts; the
    extract does not, since it streams the register in 8 MB chunks, which glibc's own
    rules serve from the heap without a page fault each (with the threshold fixed, its
    check of a city's files took 1-1.7 s more system time).
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or no mallopt): its own rules
        return
    mallopt(_M_MMAP_THRESHOLD, threshold)  # setting it turns the raising off
