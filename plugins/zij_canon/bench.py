"""``python -m zij_canon.bench``: median time of a strict build of the whole site."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", default="mkdocs.yml")
    args = parser.parse_args(argv)
    mkdocs = Path(sys.executable).with_name("mkdocs")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [str(mkdocs), "build", "--strict", "-q", "-f", args.config, "-d", str(Path(tmp) / "site")],
                check=True,
                env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            )
            times.append(time.perf_counter() - start)
            print(f"run {i + 1}: {times[-1]:.2f} s")
    print(f"median strict build: {statistics.median(times):.2f} s over {args.runs} runs (target <= 6 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
