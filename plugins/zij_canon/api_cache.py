"""API pages kept between builds: what Markdown and mkdocstrings made of a page, reused while its inputs hold.

An API page is Markdown with a mkdocstrings block per class. Converting it (Griffe loading the package, the
handler's templates, the docstrings' own Markdown) is the largest part of a build that no other cache covers.
A page's entry holds what ``Page.render`` leaves on the page (its HTML, table of contents, title, anchors and
links to anchors of other pages) and what rendering registered elsewhere: the anchors autorefs resolves
cross-references with, and the objects of mkdocstrings' inventory. Rendering from an entry sets the first and
replays the second, so the site (``objects.inv`` included) is the same byte for byte.

The key covers the page's path and Markdown, the site's file list (links resolve against it), the zij
package's sources, the theme overrides, the Markdown and plugin configuration, this package's sources and the
versions of the libraries in the chain. An entry under another key is rendered again and replaced; one that
cannot be read counts as missing. Entries are JSON files in ``<cache_dir>/api-pages``, one per page, replaced
atomically, so parallel builds sharing the folder never read half a file; a build removes the entries of pages
it did not have.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from mkdocs.structure.toc import AnchorLink, TableOfContents

from .cache import code_key, library_versions

FORMAT = "api-page 1"  # change to drop entries written by older code
LIBRARIES = ("mkdocs", "markdown", "pymdown-extensions", "pygments", "jinja2", "markupsafe", "mkdocstrings",
             "mkdocstrings-python", "griffe", "griffelib", "mkdocs-autorefs")


def _kind(value) -> str:
    """An object in the configuration (a Markdown extension instance) by its type: its address changes each build."""
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _tree_digest(folder: Path | None) -> str:
    digest = hashlib.sha256()
    if folder is not None and folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _toc_data(items) -> list[dict]:
    return [{"title": i.title, "id": i.id, "level": i.level, "children": _toc_data(i.children)} for i in items]


def _toc_links(data: list[dict]) -> list[AnchorLink]:
    links = []
    for d in data:
        link = AnchorLink(d["title"], d["id"], d["level"])
        link.children = _toc_links(d["children"])
        links.append(link)
    return links


@contextlib.contextmanager
def _recording(obj, name: str, calls: list, page):
    """Record the calls of ``obj.name`` (arguments after the page, for ``register_anchor``) while the block runs."""
    original = getattr(obj, name)
    shadowed = name in vars(obj)  # an instance attribute of that name is put back; otherwise the class's shows again

    def record(*args, **kwargs):
        if page is None:
            calls.append([True, list(args), kwargs])
        else:  # autorefs: the first argument is the page being rendered (anything else makes the page uncacheable)
            own = bool(args) and args[0] is page
            calls.append([own, list(args[1:]), kwargs])
        return original(*args, **kwargs)

    setattr(obj, name, record)
    try:
        yield
    finally:
        if shadowed:
            setattr(obj, name, original)
        else:
            delattr(obj, name)


class ApiPageCache:
    """Attach to an API page before it renders (:meth:`attach`); its ``render`` then reads or fills the cache."""

    def __init__(self, cache_dir: Path, config, files, source_key: str):
        self.folder = Path(cache_dir) / "api-pages"
        plugins = config.plugins
        self.autorefs = plugins.get("autorefs")
        mkdocstrings = plugins.get("mkdocstrings")
        self.inventory = mkdocstrings.handlers.inventory if mkdocstrings is not None else None
        settings = {
            "markdown_extensions": config.markdown_extensions, "mdx_configs": config.mdx_configs,
            "plugins": {name: dict(plugin.config) for name, plugin in plugins.items()
                        if name in ("mkdocstrings", "autorefs")},
            "site_url": config.site_url, "use_directory_urls": config.use_directory_urls,
        }
        custom = config.theme.custom_dir
        base = hashlib.sha256()
        for part in (FORMAT, code_key(), library_versions(LIBRARIES), source_key,
                     json.dumps(settings, sort_keys=True, default=_kind),
                     _tree_digest(Path(custom) if custom else None),
                     "\n".join(sorted(f.src_uri for f in files))):
            base.update(part.encode() + b"\0")
        self.base = base.hexdigest()
        self.hits = self.misses = 0
        self.seen: set[Path] = set()

    def key(self, page) -> str:
        return hashlib.sha256(f"{self.base}\0{page.file.src_uri}\0{page.markdown}".encode()).hexdigest()

    def _path(self, page) -> Path:
        return self.folder / (page.file.src_uri.replace("/", "__") + ".json")

    def attach(self, page) -> None:
        render = page.render
        page.render = lambda config, files: self._render(page, render, config, files)

    def prune(self) -> None:
        """Remove the entries of pages this build did not have (a family that no longer has classes)."""
        if self.seen:
            for path in self.folder.glob("*.json"):
                if path not in self.seen:
                    path.unlink(missing_ok=True)

    def _render(self, page, render, config, files) -> None:
        self.seen.add(self._path(page))
        key = self.key(page)
        entry = self._read(page, key)
        if entry is not None and self._replay(page, entry, files):
            self.hits += 1
            return
        self.misses += 1
        anchors, objects = [], []
        with contextlib.ExitStack() as stack:
            if self.autorefs is not None:
                stack.enter_context(_recording(self.autorefs, "register_anchor", anchors, page))
            if self.inventory is not None:
                stack.enter_context(_recording(self.inventory, "register", objects, None))
            render(config, files)
        if all(own for own, _, _ in anchors):
            self._write(page, key, anchors, objects)

    def _read(self, page, key: str) -> dict | None:
        try:
            entry = json.loads(self._path(page).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def _replay(self, page, entry: dict, files) -> bool:
        """Set what rendering would set on ``page`` and register what it would register; False if the entry is
        unusable (then nothing is changed or registered)."""
        try:
            links = None
            if entry["links"] is not None:
                links = {files.get_file_from_path(uri): dict(found) for uri, found in entry["links"].items()}
                if None in links:
                    return False
            toc = TableOfContents(_toc_links(entry["toc"]))
            content, title, present = str(entry["content"]), entry["title"], set(entry["anchors"])
            anchors = [(list(args), dict(kwargs)) for _, args, kwargs in entry["autorefs"]]
            objects = [(list(args), dict(kwargs)) for _, args, kwargs in entry["inventory"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        if (anchors and self.autorefs is None) or (objects and self.inventory is None):
            return False
        page.content, page.toc, page._title_from_render = content, toc, title
        page.present_anchor_ids, page.links_to_anchors = present, links
        for args, kwargs in anchors:
            self.autorefs.register_anchor(page, *args, **kwargs)
        for args, kwargs in objects:
            self.inventory.register(*args, **kwargs)
        return True

    def _write(self, page, key: str, anchors: list, objects: list) -> None:
        links = page.links_to_anchors
        entry = {
            "key": key, "content": page.content, "toc": _toc_data(page.toc.items), "title": page._title_from_render,
            "anchors": sorted(page.present_anchor_ids or ()),
            "links": None if links is None else {f.src_uri: found for f, found in links.items()},
            "autorefs": anchors, "inventory": objects,
        }
        try:
            text = json.dumps(entry, ensure_ascii=False)
        except (TypeError, ValueError):  # something rendering registered that JSON cannot hold: not cached
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self._path(page))
