"""``python -m gpubench.distributed bench|verify``: the distributed runner without the ``gpubench`` front end."""

from __future__ import annotations

import sys

from gpubench.distributed.command import main

if __name__ == "__main__":
    sys.exit(main())
