"""The ``zij-canon`` MkDocs plugin: the Canon becomes pages of the site.

Each hook is short; the work happens in :mod:`zij_canon.canon` (loading and
validation), :mod:`zij_canon.math` (KaTeX) and :mod:`zij_canon.render`
(templates). Generated pages are tiny Markdown stubs created with
``File.generated``; their HTML body is filled in ``on_page_content``, so the
heavy KaTeX markup never goes through Markdown.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.utils import CountHandler

from .api import Catalog, api_urls, check_links, family_page
from .canon import load
from .loader import CanonError
from .math import MathError, find_katex, render_canon_math
from .models import Record
from .render import Renderer, category_url, method_url

log = get_plugin_logger(__name__)
ASSETS = Path(__file__).parent / "assets"
KATEX_FILES = ("katex.min.css", "katex.min.js")


class CanonConfig(base.Config):
    """Options of the ``zij-canon`` plugin in ``mkdocs.yml``."""

    canon_dir = c.Dir(exists=True, default="canon")
    """Folder holding the Canon (vocabularies and ``<category>/<id>.yaml`` records)."""
    overrides = c.Optional(c.Dir(exists=True))
    """Folder whose templates replace the built-in ones of the same name."""
    katex_dir = c.Optional(c.Dir(exists=True))
    """The npm ``katex`` package; found under ``node_modules`` when not set."""
    cache_dir = c.Optional(c.Type(str))
    """Folder for KaTeX renders reused across builds (off when not set)."""
    atomic = c.Type(bool, default=True)
    """Build into a temporary folder and swap it in only after a clean build."""
    api = c.Type(bool, default=True)
    """Generate the API reference of the zij package and link it with the Canon both ways."""


def _stub(title: str) -> str:
    """A generated page's Markdown: only its title; the body comes later."""
    return f"---\ntitle: {json.dumps(title)}\n---\n"


class CanonPlugin(BasePlugin[CanonConfig]):
    """Validates the Canon and generates the home, category, method and family pages."""

    def __init__(self):
        self.command = "build"
        self.pages: dict[str, tuple] = {}
        self.final_site_dir: str | None = None
        self.warnings: CountHandler | None = None
        self.api_entries = []

    def on_startup(self, *, command, dirty):
        """Remember the command: ``serve`` builds without the atomic swap."""
        self.command = command

    def on_config(self, config):
        """Load and validate the Canon, render its math, read the registry, and register assets."""
        cache = Path(self.config.cache_dir) if self.config.cache_dir else None
        catalog = Catalog(cache_dir=cache) if self.config.api else None  # runs in parallel with the Canon checks
        try:
            self.canon = load(self.config.canon_dir)
            katex = Path(self.config.katex_dir) if self.config.katex_dir else find_katex(Path(config.config_file_path).parent)
            math_html, problems = render_canon_math(self.canon, katex, cache)
        except CanonError as exc:
            raise PluginError(f"the Canon does not validate:\n{exc}") from None
        except MathError as exc:
            raise PluginError(str(exc)) from None
        if problems:
            raise PluginError("KaTeX cannot render:\n" + "\n".join(map(str, problems)))
        if catalog is not None:
            self.api_entries = catalog.entries()
            link_problems = check_links(self.canon, self.api_entries)
            if link_problems:
                raise PluginError("the registry and the Canon disagree:\n" + "\n".join(link_problems))
        self.katex_dir = katex
        overrides = Path(self.config.overrides) if self.config.overrides else None
        self.renderer = Renderer(self.canon, math_html, overrides, api_urls(self.api_entries))
        config.extra_css[:0] = ["assets/katex/katex.min.css", "assets/zij/zij.css"]
        config.extra_javascript[:0] = ["assets/katex/katex.min.js", "assets/zij/zij.js"]
        if self.config.atomic and self.command != "serve":
            self._redirect_site_dir(config)
        return config

    def on_files(self, files: Files, *, config) -> Files:
        """Add the generated pages, the name index and the bundled assets."""
        r = self.renderer
        self.pages = {  # generated page -> (title, function rendering its body)
            "index.md": ("Home", r.home_page),
            "families.md": ("Families", r.families_page),
            "schema.md": ("Record schema", r.schema_page),
        }
        for cat in self.canon.ordered_categories():
            self.pages[f"{cat.id}/index.md"] = (cat.title, lambda cid=cat.id: r.category_page(cid))
        for record in self.canon.records:
            self.pages[f"{record.categories[0]}/{record.id}.md"] = (record.name, lambda rec=record: r.method_page(rec))
        if self.config.api:
            self.pages["api/index.md"] = ("API reference", lambda: r.api_index_page(self.api_entries))
        for uri, (title, _) in self.pages.items():
            if files.get_file_from_path(uri) is not None:
                raise PluginError(f"site/{uri} would be replaced by a generated page; remove or rename it")
            files.append(File.generated(config, uri, content=_stub(title)))
        for family in sorted({e.family for e in self.api_entries if not e.builtin}):
            members = [e for e in self.api_entries if e.family == family and not e.builtin]
            content = family_page(self.canon.families[family].title, members, self.canon)
            files.append(File.generated(config, f"api/{family}.md", content=content))
        index = json.dumps(self.renderer.names_index(), ensure_ascii=False, separators=(",", ":"))
        files.append(File.generated(config, "assets/zij/names.json", content=index))
        files.append(File.generated(config, "schema/record.schema.json", content=json.dumps(Record.model_json_schema(), indent=1)))
        for asset in ASSETS.iterdir():
            files.append(File.generated(config, f"assets/zij/{asset.name}", abs_src_path=str(asset)))
        dist = self.katex_dir / "dist"
        for path in [*(dist / f for f in KATEX_FILES), *sorted((dist / "fonts").glob("*.woff2"))]:
            files.append(File.generated(config, f"assets/katex/{path.relative_to(dist).as_posix()}", abs_src_path=str(path)))
        return files

    def on_page_content(self, html, *, page, config, files):
        """Replace a generated page's (empty) body with its rendered HTML."""
        generated = self.pages.get(page.file.src_uri)
        return generated[1]() if generated else html

    def on_post_page(self, output, *, page, config):
        """Put the rendered math into a generated page once search has indexed it."""
        return self.renderer.fill_math(output) if page.file.src_uri in self.pages else output

    def on_serve(self, server, *, config, builder):
        """Rebuild when a record changes."""
        server.watch(self.config.canon_dir)
        return server

    # -- atomic output -------------------------------------------------------
    def _redirect_site_dir(self, config) -> None:
        self.final_site_dir = config.site_dir
        config.site_dir = config.site_dir.rstrip("/") + ".zij-partial"
        shutil.rmtree(config.site_dir, ignore_errors=True)
        self.warnings = CountHandler()
        self.warnings.setLevel(logging.WARNING)
        logging.getLogger("mkdocs").addHandler(self.warnings)

    def on_post_build(self, *, config):
        """Swap the finished build in, unless strict mode will reject it."""
        if self.final_site_dir is None:
            return
        logging.getLogger("mkdocs").removeHandler(self.warnings)
        if config.strict and self.warnings.get_counts():
            log.error("strict build had warnings: the previous site in %s is left as it was", self.final_site_dir)
            shutil.rmtree(config.site_dir, ignore_errors=True)
            return
        final, old = Path(self.final_site_dir), Path(self.final_site_dir + ".zij-old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        Path(config.site_dir).rename(final)
        shutil.rmtree(old, ignore_errors=True)
        config.site_dir = str(final)

    def on_build_error(self, *, error):
        """A failed build leaves the previous site in place and removes the partial one."""
        if self.final_site_dir is not None:
            logging.getLogger("mkdocs").removeHandler(self.warnings)
            shutil.rmtree(self.final_site_dir.rstrip("/") + ".zij-partial", ignore_errors=True)
