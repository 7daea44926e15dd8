"""Pack the proof's work folder into one gzipped tarball under a size limit.

    python scripts/proof/pack.py WORK_DIR OUT.tar.gz [--limit-mib 15.5]

Everything under WORK_DIR goes in, paths relative to it. When the tarball is over the limit (what comes
back from the GPU node is at most 16 MiB a file), the largest files that only illustrate (plots, the HTML
report, then the Parquet table) are left out one by one, each named on stderr and in
``left-out.txt`` inside the tarball, until it fits. Exit 0 when it fits, 1 when it cannot be made to fit.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
from pathlib import Path

#: Left out first, in this order, when the tarball is too large: the figures can be redrawn from the data.
DROPPABLE = ("*.png", "*.html", "*.parquet")


def _files(work: Path) -> list[Path]:
    return sorted(p for p in work.rglob("*") if p.is_file() and not p.is_symlink())


def write_tarball(work: Path, target: Path, files: list[Path], left_out: list[str]) -> int:
    """Write ``files`` (and the list of what was left out) to ``target`` atomically; returns its size."""
    fd, tmp = tempfile.mkstemp(prefix=".packing-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the brought-back file unreadable to others
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=9) as tar:
            for path in files:
                tar.add(path, arcname=path.relative_to(work).as_posix(), recursive=False)
            if left_out:
                data = ("\n".join(left_out) + "\n").encode()
                info = tarfile.TarInfo("left-out.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--limit-mib", type=float, default=15.5)
    args = parser.parse_args(argv)
    limit = int(args.limit_mib * 1024 * 1024)
    files = _files(args.work)
    droppable = [p for pattern in DROPPABLE for p in sorted(args.work.rglob(pattern), key=lambda p: -p.stat().st_size)]
    left_out: list[str] = []
    size = write_tarball(args.work, args.target, files, left_out)
    while size > limit and droppable:
        victim = droppable.pop(0)
        files.remove(victim)
        note = f"{victim.relative_to(args.work).as_posix()} ({victim.stat().st_size} bytes): left out, over the size limit"
        left_out.append(note)
        print(f"pack: {note}", file=sys.stderr)
        size = write_tarball(args.work, args.target, files, left_out)
    print(f"packed {len(files)} files into {args.target} ({size / 1024 / 1024:.2f} MiB)"
          + (f", {len(left_out)} left out" if left_out else ""))
    return 0 if size <= limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
