"""autosynk: keeps Unikum in step with a municipality's student register and directory.

A plain package: it never imports Airflow. The DAGs in ``dags/`` and the ``autosynk``
command line call the same functions in :mod:`autosynk.pipeline`.
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys

if _sys.platform.startswith("linux"):
    # Arrow's allocator, chosen once when pyarrow is first imported (so here, before it
    # is): jemalloc hands freed memory back, where the wheels' default mimalloc kept a
    # city's hash tables (see autosynk.memory_return). An operator's own choice stands.
    _os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    # and it unmaps what it frees: retained address space (jemalloc's default) took a
    # national night past a 20 GiB address-space limit at 10 GB of memory in use; one
    # arena for all threads, so that pages one thread freed are reused by the next
    # allocation whatever thread makes it (with an arena per thread a city's transform
    # held ~0.1 GB more at its peak in pages freed but not yet given back)
    _os.environ.setdefault("JE_ARROW_MALLOC_CONF", "retain:false,narenas:1")
