"""DDP scaling: the table's efficiency against one rank, and the world sizes it covers."""

from __future__ import annotations

import pytest

from gpubench.distributed.ddp import DdpStep, default_world_sizes, parse_world_sizes, scaling_table


def test_ddp_scaling_efficiency_is_against_one_rank() -> None:
    steps = [DdpStep(1, 0, 10, 128, 1.0), DdpStep(2, 0, 10, 128, 1.25), DdpStep(2, 1, 10, 128, 1.6)]
    rows = scaling_table(steps)
    assert [r.world_size for r in rows] == [1, 2]
    assert rows[0].efficiency == pytest.approx(1.0)
    total = 1280 / 1.25 + 1280 / 1.6
    assert rows[1].total_images_per_s == pytest.approx(total)
    assert rows[1].images_per_s_per_rank == pytest.approx(total / 2)
    assert rows[1].efficiency == pytest.approx(total / (2 * 1280)) and rows[1].slowest_rank == 1
    assert default_world_sizes(6) == (1, 2, 4, 6) and default_world_sizes(1) == (1,)
    assert parse_world_sizes("4,1,2", 4) == (1, 2, 4)
    with pytest.raises(ValueError, match="between 1 and the world size 2"):
        parse_world_sizes("1,3", 2)

