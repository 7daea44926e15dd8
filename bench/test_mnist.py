"""MNIST: one epoch per round through each input pipeline; images/s, time split and memory."""

from __future__ import annotations

from typing import Any

import pytest

from gpubench.workloads import cases, mnist

# Target: the device-resident pipeline at least 3x the textbook DataLoader pipeline, in the same run.
MIN_RESIDENT_SPEEDUP = 3.0


def test_mnist_epoch(benchmark: Any, device: Any, mnist_pipeline: str, bench_settings: Any, ceilings: Any,
                     mnist_data: Any, mnist_record: Any) -> None:
    reason = mnist.pipeline_skip_reason(mnist_pipeline, device.name)
    if reason:
        pytest.skip(reason)
    figures = cases.run_mnist(benchmark, device.name, mnist_pipeline, bench_settings, mnist_data, ceilings,
                              mnist_record)
    if figures and mnist_pipeline == "resident" and "speedup_vs_dataloader" in figures:
        assert figures["speedup_vs_dataloader"] >= MIN_RESIDENT_SPEEDUP, (
            f"resident pipeline {figures['images_per_s']:.0f} images/s is only "
            f"{figures['speedup_vs_dataloader']:.2f}x the DataLoader pipeline"
        )
