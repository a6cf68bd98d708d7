"""``python -m zij_canon.bench``: median time of a strict build of the whole site.

``--synthetic N`` measures a Canon of N records before it exists: the build
runs in a temporary copy of the project whose ``canon/`` is padded with copies
of real records under new ids (``<id>-copy<k>``, without ``zij_class``) until
it holds N records. The copy starts from the project's ``build/.cache``, so
its timings are those of a warm rebuild, like ``make bench-site``.

Besides wall time, the CPU time of each build (user + system, with its child
processes) is shown: on a machine shared with other jobs it varies far less.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pad_canon(canon: Path, target: int) -> int:
    """Add copies of ``canon``'s records under new ids until it holds ``target``; return the count added."""
    records = sorted(canon.glob("*/*.yaml"))
    missing = max(0, target - len(records))
    for k, path in zip(range(missing), itertools.cycle(records)):
        new_id = f"{path.stem}-copy{k // len(records) + 1}"
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^id: .*$", f"id: {new_id}", text, count=1, flags=re.M)
        text = re.sub(r"^zij_class: .*\n", "", text, flags=re.M)  # a class belongs to one record
        path.with_name(f"{new_id}.yaml").write_text(text, encoding="utf-8")
    return missing


def synthetic_project(root: Path, dest: Path, records: int) -> Path:
    """A copy of the project at ``dest`` (sources linked, Canon copied and padded); return its mkdocs.yml."""
    for name in ("src", "site", "node_modules", "plugins", "benchmarks"):
        if (root / name).exists():
            (dest / name).symlink_to(root / name)
    shutil.copy(root / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(root / "canon", dest / "canon")
    if (root / "build" / ".cache").is_dir():
        shutil.copytree(root / "build" / ".cache", dest / "build" / ".cache")
    pad_canon(dest / "canon", records)
    return dest / "mkdocs.yml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", default="mkdocs.yml")
    parser.add_argument("--synthetic", type=int, metavar="N", help="pad a temporary copy of the Canon to N records")
    args = parser.parse_args(argv)
    mkdocs = Path(sys.executable).with_name("mkdocs")
    times, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        config, cwd = Path(args.config).resolve(), None
        if args.synthetic:
            cwd = Path(tmp) / "project"
            cwd.mkdir()
            config = synthetic_project(config.parent, cwd, args.synthetic)
            print(f"synthetic Canon: {len(list((cwd / 'canon').glob('*/*.yaml')))} records in {cwd}")
        for i in range(args.runs):
            start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [str(mkdocs), "build", "--strict", "-q", "-f", str(config), "-d", str(Path(tmp) / "site")],
                check=True,
                cwd=cwd,
                env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            )
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            print(f"run {i + 1}: {times[-1]:.2f} s (CPU {cpu[-1]:.2f} s)")
    print(f"median strict build: {statistics.median(times):.2f} s over {args.runs} runs (target <= 6 s); "
          f"median CPU time {statistics.median(cpu):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
