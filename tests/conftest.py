"""Session fixtures: the whole site is built once and shared by the site and browser tests."""

from __future__ import annotations

import pytest

from _helpers import CANON, build_site


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """A strict build of the real Canon; fails the tests that use it if the build fails."""
    tmp = tmp_path_factory.mktemp("site")
    proc = build_site(tmp, CANON, tmp / "site")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return tmp / "site"
