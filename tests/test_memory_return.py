"""Arrow's allocator: jemalloc in autosynk's processes, unless the operator chose one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
    """What a fresh interpreter running ``program`` in ``env`` prints."""
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
