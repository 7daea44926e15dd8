"""The workloads gpubench measures: tensor creation and operations, XOR, MNIST, and their data.

``tensor_ops``: what each tensor case moves and computes, and the ceilings; ``xor``: many XOR seeds
trained as one batched computation; ``mnist``: the MLP, its input pipelines, time split and memory;
``data``: MNIST sources (torchvision, IDX files on disk, synthetic); ``cases``: how ``bench/`` runs them.
May import :mod:`gpubench.devices` and :mod:`gpubench.timing` (``cases`` times the workloads with its
``DeviceTimer``); torch only inside functions, so importing a workload module does not load it; never
telemetry, results, report, bench or the CLI.
"""

from __future__ import annotations
