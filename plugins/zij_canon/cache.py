"""Results kept between builds, keyed by the content they were computed from.

Parsing and validating a record costs about a millisecond, and so does
splitting a generated page into search sections; a build does both for every
record, and most have not changed since the last build. A :class:`DigestCache`
keeps such results under the SHA-256 of their input, in one pickle per kind in
the build cache folder (``records-<key>.pickle``, ``search-<key>.pickle``):

* changed input has a new digest, so an old result is never used for it, and
  results that no input matched in this build are dropped when the cache is saved;
* the file name carries a key of the code that computed the results (this
  package's sources and the versions of the libraries it relies on), so a change
  to the models, validators or parsers starts an empty cache; files of the same
  kind with other keys are removed;
* a cache file that cannot be read, or holds values of the wrong type, is
  ignored (those values) and rewritten.

The cache lives in the project's own build folder and is read with pickle, so
it is trusted like the code beside it; never point ``cache_dir`` at a shared place.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from .models import Record

PACKAGE = Path(__file__).parent
LIBRARIES = ("pydantic", "pydantic-core", "pyyaml", "license-expression", "mkdocs-material")


def library_versions(names) -> str:
    """``name=version`` of each installed distribution (``name=-`` if it is not installed), one a line."""
    out = []
    for name in names:
        try:
            out.append(f"{name}={metadata.version(name)}\n")
        except metadata.PackageNotFoundError:
            out.append(f"{name}=-\n")
    return "".join(out)


@functools.cache
def code_key() -> str:
    """Digest of everything a cached result depends on besides its input."""
    digest = hashlib.sha256(sys.version.encode())
    digest.update(library_versions(LIBRARIES).encode())
    for path in sorted(PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class DigestCache:
    """Values of one ``kind`` by input digest: :meth:`get` and :meth:`put`, then :meth:`save`.

    ``valid`` says whether a value read back has the expected type; others are dropped.
    """

    def __init__(self, cache_dir: Path | None, kind: str, valid: Callable[[object], bool]):
        self.kind = kind
        self.path = Path(cache_dir) / f"{kind}-{code_key()}.pickle" if cache_dir else None
        self.valid = valid
        self.old = self._read()
        self.new: dict[str, object] = {}

    def _read(self) -> dict[str, object]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            with self.path.open("rb") as f:
                data = pickle.load(f)
        except Exception:  # corrupt or written by other code: rebuilt on save
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and self.valid(v)}

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def get(self, digest: str):
        """The value computed from input with this digest, or None."""
        value = self.old.get(digest)
        if value is not None:
            self.new[digest] = value
        return value

    def put(self, digest: str, value) -> None:
        self.new[digest] = value

    def save(self) -> None:
        """Write the values used since loading (only when they changed), and remove this kind's other files."""
        if self.path is None:
            return
        if self.new.keys() != self.old.keys() or not self.path.is_file():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps(dict(sorted(self.new.items())), protocol=pickle.HIGHEST_PROTOCOL))
            tmp.replace(self.path)
        for other in self.path.parent.glob(f"{self.kind}-*.pickle"):
            if other != self.path:
                other.unlink(missing_ok=True)


class RecordCache(DigestCache):
    """Validated records by the digest of their file's bytes."""

    def __init__(self, cache_dir: Path | None):
        super().__init__(cache_dir, "records", lambda value: type(value) is Record)
