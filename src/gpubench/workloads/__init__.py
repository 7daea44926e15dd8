"""The workloads gpubench measures: tensor creation and operations, XOR, MNIST, and their data.

``tensor_ops``: what each tensor case moves and computes, and the ceilings; ``xor``: many XOR seeds
trained as one batched computation; ``mnist``: the MLP, its input pipelines, time split and memory;
``data``: MNIST sources (torchvision, IDX files on disk, synthetic); ``cases``: how ``bench/`` runs them.
"""

from __future__ import annotations
