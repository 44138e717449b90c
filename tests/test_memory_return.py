"""Arrow's allocator: jemalloc in autosynk's processes, unless the operator chose one;
glibc's heap maps large blocks on their own once the transform asks (given back when
freed); and work gives memory back when it grew the process enough to be worth it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import autosynk
from autosynk import memory_return

POOL_OF_A_PROCESS = (
    "import autosynk.cli, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
)
#: a process's address space (kB) after it allocated and freed 1 GB in 64 MB buffers
ADDRESS_SPACE_AFTER_CHURN = """
import autosynk, pyarrow as pa
for _ in range(16):
    held = [pa.allocate_buffer(64 << 20) for _ in range(16)]
    del held
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize")))
"""


def python_prints(program: str, env: dict[str, str]) -> str:
    """What a fresh interpreter running ``program`` in ``env`` prints (importing the
    autosynk under test, wherever the interpreter's own install points)."""
    tree = str(Path(autosynk.__file__).resolve().parents[1])
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, (tree, env.get("PYTHONPATH"))))}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="set on Linux only")
@pytest.mark.parametrize(
    ("chosen", "pool"),
    [(None, "jemalloc"), ("system", "system"), ("mimalloc", "mimalloc")],
)
def test_a_process_that_imports_autosynk_first_uses_jemalloc_unless_told(chosen, pool):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    assert python_prints(POOL_OF_A_PROCESS, env) == pool


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="set on Linux only")
def test_freed_arrow_memory_does_not_keep_its_address_space():
    env = {k: v for k, v in os.environ.items() if not k.endswith("MALLOC_CONF")}
    # kB: jemalloc's default (retain) keeps the whole 1 GB mapped
    assert int(python_prints(ADDRESS_SPACE_AFTER_CHURN, env)) < 1_000_000


#: a process's resident memory (kB) before and after it freed 63 of 64 heap blocks of 4 MB
#: (the last one still held), after a block of 8 MB was freed first
RESIDENT_AFTER_HEAP_CHURN = """
import autosynk.memory_return, ctypes
autosynk.memory_return.mapped_heap_blocks()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def resident():
    status = open("/proc/self/status").read().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmRSS")))

def touched(size):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    return block

before = resident()
libc.free(touched(8 << 20))  # glibc's default: its threshold rises to 8 MB here
blocks = [touched(4 << 20) for _ in range(64)]
for block in blocks[:-1]:
    libc.free(block)
print(before, resident())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="set on Linux only")
@pytest.mark.parametrize(
    ("threshold", "kept_at_least_kb", "kept_at_most_kb"),
    [
        (None, 0, 32_768),  # every block mapped on its own: 63 given back
        ("999999999", 200_000, 1_000_000),  # an operator's own threshold stands: all kept
    ],
)
def test_freed_heap_blocks_are_given_back_while_a_later_one_is_held(
    threshold, kept_at_least_kb, kept_at_most_kb
):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    if threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = threshold
    before, after = map(int, python_prints(RESIDENT_AFTER_HEAP_CHURN, env).split())
    assert kept_at_least_kb <= after - before <= kept_at_most_kb


MIB = 1 << 20


@pytest.mark.parametrize(
    ("before", "after", "worth"),
    [
        (300 * MIB, 300 * MIB, False),  # a small municipality's stage
        (300 * MIB, 363 * MIB, False),
        (300 * MIB, 364 * MIB, True),  # exactly WORTH_GIVING_BACK (64 MiB) more
        (300 * MIB, 1_400 * MIB, True),  # a city's transform
        (900 * MIB, 400 * MIB, False),  # the work itself gave memory back
        (None, 300 * MIB, True),  # the resident set cannot be read: always
        (300 * MIB, None, True),
    ],
)
def test_worth_giving_back(before, after, worth):
    assert memory_return.worth_giving_back(before, after) is worth


class _Cycle:
    """An Arrow array of ``size`` bytes, written (so resident), held only by a cycle."""

    def __init__(self, size: int) -> None:
        self.array = pc.add(pa.repeat(0, size // 8), 1)
        self.me = self


@pytest.fixture
def collections_of_everything():
    """The full collections the interpreter makes while a test runs (automatic ones off)."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(1)

    gc.collect()
    gc.disable()
    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)
        gc.enable()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_heavy_work_gives_back_what_its_cycles_held(collections_of_everything):
    before = pa.total_allocated_bytes()
    with memory_return.giving_back():
        _Cycle(256 * MIB)
    assert collections_of_everything == [1]
    assert pa.total_allocated_bytes() - before < MIB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_small_work_skips_the_full_collection(collections_of_everything):
    with memory_return.giving_back():
        _Cycle(64 * 1024)
    assert collections_of_everything == []
