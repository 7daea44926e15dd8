"""The configuration: typed, frozen sections read from ``dl.config.sdn`` files, environment and flags.

Holds ``sdn`` (the file format, standard library only), ``schema`` (the section dataclasses, their
defaults and documentation), ``validate`` (one value checked against its setting; :class:`ConfigError`),
``load`` (file discovery, precedence flags > environment > ``./dl.config.sdn`` > user config > defaults,
and where each value came from) and ``options`` (the command-line options every verb shares). Imports run
sdn → schema → validate → load → options; this package imports only the standard library and
:mod:`gpubench.devices` (to parse devices and dtypes) — never torch, NVML or the command line — so that
``gpubench config show`` starts fast on a machine without them. A wrong value is a :class:`ConfigError`
naming file, line and column, the allowed values and a fix; an unknown key is a warning.
"""

from __future__ import annotations

from gpubench.config import sdn
from gpubench.config.load import (
    CONFIG_FILENAME,
    MAX_CONFIG_BYTES,
    SIMPLE_ENV,
    check_file,
    load_config,
    read_file,
    user_config_paths,
)
from gpubench.config.schema import (
    BACKENDS,
    LEVELS,
    REPORT_FORMATS,
    SECTIONS,
    BenchSection,
    Config,
    DataSection,
    DLSection,
    InferenceSection,
    ReportSection,
    ResultsSection,
    TelemetrySection,
    TrainingSection,
    VerifySection,
    device_spec,
    effective_rows,
    field_docs,
)
from gpubench.config.validate import ConfigError

__all__ = [
    "BACKENDS",
    "CONFIG_FILENAME",
    "LEVELS",
    "MAX_CONFIG_BYTES",
    "REPORT_FORMATS",
    "SECTIONS",
    "SIMPLE_ENV",
    "BenchSection",
    "Config",
    "ConfigError",
    "DLSection",
    "DataSection",
    "InferenceSection",
    "ReportSection",
    "ResultsSection",
    "TelemetrySection",
    "TrainingSection",
    "VerifySection",
    "check_file",
    "device_spec",
    "effective_rows",
    "field_docs",
    "load_config",
    "read_file",
    "sdn",
    "user_config_paths",
]
