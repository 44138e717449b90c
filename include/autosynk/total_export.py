"""A total of the current state, to the configured target or to a second, named one.

Two uses, one rule (the DAG ``unikum_total_export``; ``autosynk run --total`` with
``--no-commit`` and ``--target NAME``):

- **a re-baseline** after a lost night: every current row to the configured target, and
  the staging state advances to what was sent, as after any night;
- **a total for another server** (Unikum's test server, a second environment): every current
  row to a target named under ``extra_targets``, and the staging state stays as it was, so
  the next night's delta is the one it would have been.

The staging state describes what the configured target holds, so only a delivery there may
advance it: a re-baseline to any other target is refused before anything is read.
"""

from __future__ import annotations

from typing import Any

from autosynk import pipeline
from autosynk.config import CONFIGURED_TARGET, RunConfig
from autosynk.errors import ConfigError

#: the run ledger's ``kind`` of each use
REBASELINE_KIND = "total"
EXPORT_KIND = "export"


def export_config(cfg: RunConfig, target: str | None, *, rebaseline: bool) -> RunConfig:
    """``cfg`` with ``target`` (a name under ``extra_targets``) as its target.

    ``None``, ``""`` or ``"configured"`` name the configured target itself.
    """
    name = (target or "").strip() or CONFIGURED_TARGET
    if name == CONFIGURED_TARGET:
        return cfg
    if name not in cfg.extra_targets:
        known = ", ".join(sorted([CONFIGURED_TARGET, *cfg.extra_targets]))
        raise ConfigError(f"no target named {name!r} in extra_targets (known: {known})")
    if rebaseline:
        raise ConfigError(
            f"a re-baseline advances the staging state, so it goes to the configured target, "
            f"not to {name!r}: send a total there without advancing the state instead"
        )
    return cfg.model_copy(update={"target": cfg.extra_targets[name]})


def prepare(
    cfg: RunConfig, run_id: str, *, rebaseline: bool, dag_run_id: str | None = None
) -> dict[str, Any]:
    """Open a total's run: as :func:`autosynk.pipeline.prepare`, kind ``total`` or ``export``."""
    kind = REBASELINE_KIND if rebaseline else EXPORT_KIND
    return {**pipeline.prepare(cfg, run_id, kind=kind, dag_run_id=dag_run_id), "kind": kind}
