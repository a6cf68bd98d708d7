"""Session fixtures: the whole site is built once and shared by the site and browser tests.

Under pytest-xdist (``make test``) each worker gets its share of the cores for torch's
intra-op threads: two workers with two threads each on two cores oversubscribe them, and
torch's spinning OpenMP threads then make the suite slower than one worker.
"""

from __future__ import annotations

import os

import pytest
import torch

from _helpers import CANON, build_site

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(_share)
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))  # the site builds and worker processes the tests start


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """A strict build of the real Canon; fails the tests that use it if the build fails."""
    tmp = tmp_path_factory.mktemp("site")
    proc = build_site(tmp, CANON, tmp / "site")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return tmp / "site"
