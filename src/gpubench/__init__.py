"""gpubench: verify and benchmark the GPUs of a PyTorch machine.

Importing the package is cheap: nothing here imports torch, pynvml or pandas, so that commands
which do not need them (``gpubench config show``) start fast and work without them.
"""

from __future__ import annotations

__version__ = "0.1.0"
