"""The README stays true: its configuration reference is what the code defines, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from gpubench.cli import config_reference

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_configuration_reference_matches_the_code() -> None:
    block = re.search(r"<!-- config-reference:start -->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert block is not None, "README lost its config-reference markers"
    assert block.group(1) == config_reference(), "regenerate with: gpubench config reference"


def test_quick_start_has_exactly_the_two_commands_ci_relies_on() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick, re.S)
    assert commands == ["python -m pip install nox && python -m nox -s verify", "python -m pip install nox && python -m nox -s tests"]
    assert "python -m pip install nox && python -m nox -s tests" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
