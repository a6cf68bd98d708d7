"""API reference pages for the zij package, and the links between them and the Canon.

The package's registry is read in a separate Python process
(``python -m zij._registry``), started early so it runs while the Canon is
validated; the documentation build never imports torch itself. zij's own
classes are documented by mkdocstrings, one page per family; torch.optim's
classes that zij registers are listed on the API index with links to their
Canon records.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from dataclasses import dataclass

from .canon import Canon
from .render import method_url


@dataclass(frozen=True)
class ApiEntry:
    name: str
    public: str
    path: str
    canon_id: str
    family: str
    builtin: bool

    @property
    def anchor(self) -> str:
        """The heading id of the entry on its API page."""
        return self.public if self.builtin else self.path

    @property
    def page(self) -> str:
        """Site URL of the API page documenting the entry."""
        return "api/" if self.builtin else f"api/{self.family}/"


class Catalog:
    """Reads the registry catalog from a subprocess started at construction."""

    def __init__(self, python: str = sys.executable):
        self._proc = subprocess.Popen(
            [python, "-m", "zij._registry"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def entries(self) -> list[ApiEntry]:
        out, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise RuntimeError(f"could not read the zij registry (python -m zij._registry):\n{err.strip()}")
        return [ApiEntry(**{k: v for k, v in item.items() if k != "aliases"}) for item in json.loads(out)]


def check_links(canon: Canon, entries: list[ApiEntry]) -> list[str]:
    """Problems between the registry and the Canon: missing records, mismatched zij_class."""
    problems = []
    by_public = {e.public: e for e in entries}
    for e in entries:
        entry = canon.entries.get(e.canon_id)
        if entry is None:
            problems.append(f"registry entry {e.name} names Canon id {e.canon_id!r}, which has no record")
        elif entry.record.zij_class != e.public:
            problems.append(f"{entry.display}: zij_class should be {e.public} (registry entry {e.name}), not {entry.record.zij_class}")
    for entry in canon.entries.values():
        cls = entry.record.zij_class
        if cls is not None and cls not in by_public:
            problems.append(f"{entry.display}: zij_class {cls} is not a registered optimizer")
    return problems


def api_urls(entries: list[ApiEntry]) -> dict[str, str]:
    """zij_class -> site URL of its API entry (with the anchor)."""
    return {e.public: f"{e.page}#{e.anchor}" for e in entries}


def family_page(family_title: str, members: list[ApiEntry], canon: Canon) -> str:
    """Markdown of one family's API page: a mkdocstrings block per class and its Canon link."""
    lines = [f"# {family_title}", "", "[All optimizers](index.md)", ""]
    for e in sorted(members, key=lambda m: m.name.lower()):
        record = canon.entries[e.canon_id].record
        lines += [
            f"::: {e.path}",
            "",
            f'<p class="zij-canon-link" data-class="{e.public}">Canon record: '
            f'<a href="../../{method_url(record)}">{html.escape(record.name)}</a> &middot; use as <code>{e.public}</code></p>',
            "",
        ]
    return "\n".join(lines)
