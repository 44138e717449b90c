"""Arrow's allocator: jemalloc in autosynk's processes, unless the operator chose one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

POOL_OF_A_PROCESS = (
    "import autosynk.cli, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="set on Linux only")
@pytest.mark.parametrize(
    ("chosen", "pool"),
    [(None, "jemalloc"), ("system", "system"), ("mimalloc", "mimalloc")],
)
def test_a_process_that_imports_autosynk_first_uses_jemalloc_unless_told(chosen, pool):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    done = subprocess.run(
        [sys.executable, "-c", POOL_OF_A_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == pool
