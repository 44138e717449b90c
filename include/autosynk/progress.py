"""One line per finished stage (stage, seconds, rows), logged and kept in the run ledger.

The line goes to the ``autosynk.progress`` logger: the CLI prints it as the night goes
(``-q`` silences it), and in Airflow it is the task log's line for the stage. The same
figures land in the run ledger (``run.stages``), where the report reads time per stage.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from autosynk.config import RunConfig
from autosynk.errors import AutosynkError
from autosynk.identity import mask
from autosynk.staging.store import Staging

log = logging.getLogger("autosynk.progress")

P = ParamSpec("P")
R = TypeVar("R")

#: how a stage's result says how much it handled: (count, unit), or None
Counter = Callable[[dict[str, Any]], tuple[int, str] | None]


def line(stage: str, seconds: float, amount: tuple[int, str] | None) -> str:
    """The progress line of a stage, e.g. ``extract        1.2 s  4,321 rows``."""
    text = "" if amount is None else f"  {amount[0]:,} {amount[1]}"
    return f"{stage:<10} {seconds:7.1f} s{text}"


def stage(name: str, count: Counter) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a pipeline stage ``f(cfg, run_id, ...)``: time it, log and record its line."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            cfg, run_id = args[0], args[1]
            assert isinstance(cfg, RunConfig) and isinstance(run_id, str)
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except AutosynkError as exc:
                seconds = time.perf_counter() - started
                log.info("%-10s failed after %.1f s", name, seconds)
                _record_failure(cfg, run_id, f"{name}: {mask(str(exc))}")
                raise
            seconds = time.perf_counter() - started
            amount = count(result) if isinstance(result, dict) else None
            log.info("%s", line(name, seconds, amount))
            Staging(cfg.staging.url).record_stage(run_id, name, seconds, amount)
            return result

        return timed

    return decorate


def _record_failure(cfg: RunConfig, run_id: str, message: str) -> None:
    """Keep why a stage failed in the run ledger, for the report; never fail doing so (the
    staging database may be what failed)."""
    try:
        Staging(cfg.staging.url).update_run(run_id, message=message[:2000])
    except Exception:
        log.debug("could not record the failure of run %s", run_id)
