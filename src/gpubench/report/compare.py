"""Noise-aware comparison of one benchmark's rounds in two runs (or on two GPUs): re-exported from
:mod:`gpubench.comparison`, where it lives so that the pytest plugin's ``--gpubench-compare-fail`` gate
(``bench``, which must not import ``report``) and the report use one rule. The rule is described there."""

from __future__ import annotations

from gpubench.comparison import (
    ADVICE,
    DEFAULT_ALPHA,
    DEFAULT_FDR,
    EXACT_LIMIT,
    MAX_SPREAD,
    MIN_ROUNDS,
    RESAMPLES,
    SEED,
    Comparison,
    NoiseRule,
    Rounds,
    bootstrap_ratio_interval,
    compare,
    mann_whitney_p,
    ranks,
    u_distribution,
)

__all__ = [
    "ADVICE",
    "DEFAULT_ALPHA",
    "DEFAULT_FDR",
    "EXACT_LIMIT",
    "MAX_SPREAD",
    "MIN_ROUNDS",
    "RESAMPLES",
    "SEED",
    "Comparison",
    "NoiseRule",
    "Rounds",
    "bootstrap_ratio_interval",
    "compare",
    "mann_whitney_p",
    "ranks",
    "u_distribution",
]
