"""The ``zij-canon`` MkDocs plugin: the Canon becomes pages of the site.

Each hook is short; the work happens in :mod:`zij_canon.canon` (loading and
validation), :mod:`zij_canon.math` (KaTeX) and :mod:`zij_canon.render`
(templates). Generated pages are tiny Markdown stubs created with
``File.generated``; their HTML body is filled in ``on_page_content``, so the
heavy KaTeX markup never goes through Markdown, and their table of contents is
read from that HTML. Their edit links open the Canon file they show. The
Canon's downloads (:mod:`zij_canon.downloads`) are generated files too, and
the nav's categories section is filled from ``categories.yaml``. The
Benchmarks page and the classes' benchmark blocks come from the results of
``make bench-tasks`` (:mod:`zij_canon.benchmarks`, :mod:`zij_canon.leaderboard`). Lineage
graphs and year timelines (:mod:`zij_canon.lineage`, laid out by ELK with a
cache) are drawn into the finished pages in ``on_post_page``, like the math.

Per-page costs are kept down for a large Canon: validated records come from a
cache (:mod:`zij_canon.cache`), pages are indexed for search by
:mod:`zij_canon.search` instead of Material's slower parser (same entries; the
sections of unchanged pages are cached too), generated pages skip the Markdown
converter (their body is HTML), the Jinja templates are compiled once across
builds, and the site nav of method pages is rendered once per folder, with each
page's own table of contents spliced in (``theme/main.html``).
"""

from __future__ import annotations

import functools
import json
import logging
import posixpath
import shutil
from pathlib import Path

import jinja2
from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.toc import get_toc
from mkdocs.utils import CountHandler

from . import a11y
from .api import Catalog, StateTable, _source_key, api_urls, check_links, family_page
from .api_cache import ApiPageCache
from .benchmarks import BenchError
from .canon import load
from .downloads import render_downloads
from . import explorer, leaderboard
from .layout import LayoutError, find_elk
from .lineage import Lineage
from .loader import CanonError
from .math import MathError, find_katex, render_canon_math
from .render import Renderer, category_url, method_url, table_of_contents
from .trajectories import Trajectories

try:  # generated pages are indexed with a faster tokenizer when Material's search plugin is in use
    from material.plugins.search.plugin import SearchPlugin

    from .search import SectionCache, index_page
except ImportError:  # pragma: no cover - Material is a docs dependency
    SearchPlugin = None

log = get_plugin_logger(__name__)
ASSETS = Path(__file__).parent / "assets"
THEME = Path(__file__).parent / "theme"
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
    """Folder for what later builds reuse: validated records, search sections, KaTeX renders, the API catalog and
    the API pages' HTML."""
    atomic = c.Type(bool, default=True)
    """Build into a temporary folder and swap it in only after a clean build."""
    api = c.Type(bool, default=True)
    """Generate the API reference of the zij package and link it with the Canon both ways."""
    state_bytes = c.Optional(c.File(exists=False))
    """``make bench``'s table of state bytes per parameter (``benchmarks/state-bytes.json``), shown on the API pages."""
    bench_results = c.Optional(c.Dir(exists=False))
    """``make bench-tasks``'s results folder (``benchmarks/results``, one JSON file per task), shown on a Benchmarks
    page and on the method and API pages of the classes it ranks; unset, the site has no Benchmarks page (and the
    nav entry for it is dropped). A missing folder or a malformed file fails the build; an empty folder gives a page
    that says there are no results yet."""
    trajectories = c.Type(bool, default=True)
    """Draw every registered class's trajectory plots (with ``api``; settings in ``zij_canon/trajectories.yaml``)."""
    nav_categories = c.Type(str, default="Categories")
    """Title of the ``nav`` section that lists the category pages, in the order of ``categories.yaml``."""
    lean_search = c.Type(bool, default=True)
    """Index pages for Material's search with :mod:`zij_canon.search` (same entries, faster, cached by page); off,
    Material's own parser reads every page."""
    api_page_cache = c.Type(bool, default=True)
    """Keep the API pages' rendered HTML in ``cache_dir`` and reuse it while the page, the package's sources and the
    configuration are unchanged (:mod:`zij_canon.api_cache`); off, mkdocstrings renders every API page each build."""


def _render_nothing(page, config, files) -> None:
    """What ``Page.render`` leaves on a page whose Markdown is empty, without building a Markdown converter
    (about a millisecond per page: its extensions, mkdocstrings included, are set up for each page)."""
    page.content, page.toc, page._title_from_render = "", get_toc([]), None
    page.present_anchor_ids, page.links_to_anchors = set(), {}


def _speed_up_templates(envs, cache_dir: str | None) -> None:
    """Jinja environments of a build: each template compiled once across builds (Jinja's bytecode cache, in the
    build cache), and not checked for edits at every include (``serve`` makes new environments for a rebuild)."""
    for env in envs:
        env.auto_reload = False
        if cache_dir:
            folder = Path(cache_dir) / "jinja"
            folder.mkdir(parents=True, exist_ok=True)
            env.bytecode_cache = jinja2.FileSystemBytecodeCache(str(folder))


def _stub(title: str) -> str:
    """A generated page's Markdown: only its title; the body comes later."""
    return f"---\ntitle: {json.dumps(title)}\n---\n"


def _edit_uri(source: Path, docs_dir: Path) -> str | None:
    """Where ``source`` is relative to the docs folder (for the edit link), when both are in one project."""
    source, docs_dir = source.resolve(), docs_dir.resolve()
    if not source.is_relative_to(docs_dir.parent):
        return None
    return posixpath.relpath(source.as_posix(), docs_dir.as_posix())


def _fill_nav(nav: list | None, title: str, pages: list[str]) -> None:
    """Put ``pages`` into the nav section titled ``title`` (written ``- Title: []`` in mkdocs.yml)."""
    for item in nav or []:
        if isinstance(item, dict) and title in item:
            item[title] = pages


def _drop_nav(nav: list | None, uri: str) -> None:
    """Remove the nav entry of page ``uri`` (written ``- Title: uri`` in mkdocs.yml), where it is."""
    if nav:
        nav[:] = [item for item in nav if not (isinstance(item, dict) and uri in item.values())]


def _recover_swap(final: Path) -> None:
    """Put the previous site back if a build was killed between the two renames of its swap."""
    old = Path(str(final).rstrip("/") + ".zij-old")
    if old.is_dir() and not final.exists():
        old.rename(final)


class SharedSidebars:
    """The sidebars of one folder's generated pages, rendered once, with a gap for each page's table of contents."""

    SECONDARY = '<div class="md-sidebar md-sidebar--secondary"'

    def __init__(self):
        self.shared: dict[str, tuple[str, str]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.shared

    def put(self, key: str, html: str, toc: str) -> str:
        """Keep ``html`` (a page's sidebars, its ``toc`` inside) for the folder ``key``; return it."""
        start = html.find(self.SECONDARY)
        if start >= 0 and toc and html.count(toc, start) == 1:
            at = html.index(toc, start)
            self.shared[key] = (html[:at], html[at + len(toc):])
        return html

    def get(self, key: str, toc: str) -> str:
        """The folder's sidebars with this page's ``toc``."""
        before, after = self.shared[key]
        return before + toc + after


class CanonPlugin(BasePlugin[CanonConfig]):
    """Validates the Canon and generates the home, category, method and family pages."""

    def __init__(self):
        self.command = "build"
        self.pages: dict[str, tuple] = {}
        self.final_site_dir: str | None = None
        self.warnings: CountHandler | None = None
        self.api_entries = []
        self.state = None
        self.trajectories = None
        self.leaderboard = None
        self.search = None
        self.sections = None
        self.nav_uris: set[str] = set()
        self.indexed: set[str] = set()
        self.api_cache: ApiPageCache | None = None

    def on_startup(self, *, command, dirty):
        """Remember the command: ``serve`` builds without the atomic swap."""
        self.command = command

    def on_config(self, config):
        """Load and validate the Canon, render its math, read the registry, and register assets."""
        if self.config.atomic and self.command != "serve":
            _recover_swap(Path(config.site_dir))
        cache = Path(self.config.cache_dir) if self.config.cache_dir else None
        catalog = Catalog(cache_dir=cache) if self.config.api else None  # runs in parallel with the Canon checks
        try:
            self.canon = load(self.config.canon_dir, cache)
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
        if self.config.api and self.config.trajectories:  # the missing plots are drawn by a subprocess until on_files
            try:
                self.trajectories = Trajectories(self.api_entries, cache)
            except ValueError as exc:
                raise PluginError(str(exc)) from None
        try:
            self.state = StateTable.read(Path(self.config.state_bytes)) if self.config.api and self.config.state_bytes else None
        except ValueError as exc:
            raise PluginError(str(exc)) from None
        try:  # lineage graphs: laid out by ELK now (one Node process, only for graphs not in the cache)
            self.lineage = Lineage(self.canon, find_elk(Path(config.config_file_path).parent), cache)
        except LayoutError as exc:
            raise PluginError(str(exc)) from None
        if self.config.bench_results:  # the results of make bench-tasks, read and drawn once for the build
            try:
                self.leaderboard = leaderboard.from_folder(
                    Path(self.config.bench_results), cache, self.canon.records, api_urls(self.api_entries),
                    Path(config.config_file_path).parent)
            except BenchError as exc:
                raise PluginError(f"the benchmark results cannot be shown: {exc}") from None
        else:
            _drop_nav(config.nav, leaderboard.PAGE)
        overrides = Path(self.config.overrides) if self.config.overrides else None
        signatures = {e.public: (e.arguments, e.required) for e in self.api_entries}
        self.renderer = Renderer(self.canon, math_html, overrides, api_urls(self.api_entries), signatures,
                                 trajectories=self.trajectories, lineage=self.lineage, benchmarks=self.leaderboard)
        _speed_up_templates([self.renderer.env], self.config.cache_dir)
        config.extra_css[:0] = ["assets/katex/katex.min.css", "assets/zij/zij.css", "assets/zij/explorer.css",
                                "assets/zij/lineage.css"]
        config.extra_javascript[:0] = ["assets/katex/katex.min.js", "assets/zij/zij.js", "assets/zij/explorer.js"]
        _fill_nav(config.nav, self.config.nav_categories, [f"{cat.id}/index.md" for cat in self.canon.ordered_categories()])
        if self.config.atomic and self.command != "serve":
            self._redirect_site_dir(config)
        self.search = next(
            (p for p in config.plugins.values() if SearchPlugin and isinstance(p, SearchPlugin) and p.config.enabled), None
        ) if self.config.lean_search else None
        self.sections = SectionCache(cache) if self.search is not None and cache is not None else None
        return config

    def on_files(self, files: Files, *, config) -> Files:
        """Add the generated pages, the name index and the bundled assets."""
        if self.trajectories is not None:  # the plots' subprocess, started in on_config, is done before pages use them
            try:
                self.trajectories.wait()
            except RuntimeError as exc:
                raise PluginError(str(exc)) from None
            for failure in self.trajectories.failures():
                log.warning("trajectory plot not drawn: %s", failure)
        r = self.renderer
        root = self.canon.root
        self.pages = {  # generated page -> (title, function rendering its body)
            "index.md": ("Home", r.home_page),
            "families/index.md": ("Families", r.families_page),
            explorer.EXPLORER_PAGE: ("Explorer", lambda: explorer.explorer_page(r)),
            "schema.md": ("Record schema", r.schema_page),
        }
        if self.leaderboard is not None:
            self.pages[leaderboard.PAGE] = ("Benchmarks", self.leaderboard.page)
        sources = {"families/index.md": root / "families.yaml"}  # generated page -> the Canon file it shows
        for cat in self.canon.ordered_categories():
            self.pages[f"{cat.id}/index.md"] = (cat.title, lambda cid=cat.id: r.category_page(cid))
            sources[f"{cat.id}/index.md"] = root / "categories.yaml"
        for fam in self.canon.families.values():
            self.pages[f"families/{fam.id}.md"] = (fam.title, lambda fid=fam.id: r.family_page(fid))
            sources[f"families/{fam.id}.md"] = root / "families.yaml"
        for record in self.canon.records:
            self.pages[f"{record.categories[0]}/{record.id}.md"] = (record.name, lambda rec=record: r.method_page(rec))
            sources[f"{record.categories[0]}/{record.id}.md"] = self.canon.entries[record.id].path
        if self.config.api:
            self.pages["api/index.md"] = ("API reference", lambda: r.api_index_page(self.api_entries, self.state))
        for uri, (title, _) in self.pages.items():
            if files.get_file_from_path(uri) is not None:
                raise PluginError(f"site/{uri} would be replaced by a generated page; remove or rename it")
            file = File.generated(config, uri, content=_stub(title))
            if uri in sources:
                file.edit_uri = _edit_uri(sources[uri], Path(config.docs_dir))
            files.append(file)
        for family in sorted({e.family for e in self.api_entries if not e.builtin}):
            members = [e for e in self.api_entries if e.family == family and not e.builtin]
            content = family_page(self.canon.families[family].title, members, self.canon, self.state, self.trajectories,
                                  self.leaderboard)
            files.append(File.generated(config, f"api/{family}.md", content=content))
        index = json.dumps(self.renderer.names_index(), ensure_ascii=False, separators=(",", ":"))
        files.append(File.generated(config, "assets/zij/names.json", content=index))
        files.append(File.generated(config, explorer.EXPLORER_DATA, content=explorer.explorer_json(self.canon)))
        if self.leaderboard is not None:
            files.append(File.generated(config, leaderboard.DATA, content=self.leaderboard.data_json()))
            for path, content in self.leaderboard.card_files().items():
                files.append(File.generated(config, path, content=content))
        if self.trajectories is not None:
            for path, source in self.trajectories.files():
                files.append(File.generated(config, path, abs_src_path=source))
        for path, content in render_downloads(self.canon, method_url).items():
            files.append(File.generated(config, path, content=content))
        for asset in ASSETS.iterdir():
            files.append(File.generated(config, f"assets/zij/{asset.name}", abs_src_path=str(asset)))
        dist = self.katex_dir / "dist"
        for path in [*(dist / f for f in KATEX_FILES), *sorted((dist / "fonts").glob("*.woff2"))]:
            files.append(File.generated(config, f"assets/katex/{path.relative_to(dist).as_posix()}", abs_src_path=str(path)))
        return files

    def on_nav(self, nav, *, config, files):
        """Remember which pages the nav lists (the others share their folder's nav HTML); open the API page cache."""
        self.nav_uris = {p.file.src_uri for p in nav.pages}
        self.indexed = set()
        use_cache = self.config.api and self.config.api_page_cache and self.config.cache_dir
        self.api_cache = ApiPageCache(Path(self.config.cache_dir), config, files, _source_key()) if use_cache else None
        return nav

    def on_env(self, env, *, config, files):
        """Put the plugin's main.html (per-folder nav cache) between the custom_dir and Material."""
        if config.theme.name == "material" and isinstance(env.loader, jinja2.FileSystemLoader):
            dirs = env.loader.searchpath
            dirs.insert(1 if config.theme.custom_dir in dirs else 0, str(THEME))
            env.globals.update(zij_nav=SharedSidebars(), zij_nav_key=self.nav_key)
        mkdocstrings = config.plugins.get("mkdocstrings")
        handler = [mkdocstrings.handlers.get_handler("python").env] if mkdocstrings is not None else []
        _speed_up_templates([env, *handler], self.config.cache_dir)
        return env

    def nav_key(self, page) -> str | None:
        """The folder of a generated page whose site nav is its siblings' (outside the nav), or None.

        Such a page marks no nav item active, so its primary sidebar differs from
        its siblings' only by relative links: by folder. (Its table of contents,
        in the secondary sidebar, is its own: theme/main.html splices it in.)
        """
        if page is None or page.file.src_uri not in self.pages or page.file.src_uri in self.nav_uris:
            return None
        if page.meta.get("hide"):
            return None
        return posixpath.dirname(page.url.rstrip("/"))

    def on_pre_page(self, page, *, config, files):
        """A generated page skips Markdown: its source is front matter only, and on_page_content gives the body.
        An API page renders through the API page cache."""
        if page.file.src_uri in self.pages:
            page.render = functools.partial(_render_nothing, page)
        elif self.api_cache is not None and page.file.src_uri.startswith("api/"):
            self.api_cache.attach(page)
        return page

    def on_page_content(self, html, *, page, config, files):
        """Replace a generated page's (empty) body with its rendered HTML, and give it a table of contents."""
        generated = self.pages.get(page.file.src_uri)
        if not generated:
            return html
        body = generated[1]()
        page.toc = table_of_contents(body)
        if page.file.src_uri == explorer.EXPLORER_PAGE:
            page.meta.update(explorer.PAGE_META)
        elif page.file.src_uri == leaderboard.PAGE:
            page.meta.update(leaderboard.PAGE_META)
        return body

    @event_priority(50)  # before Material's search plugin, which then skips the page
    def on_page_context(self, context, *, page, config, nav):
        """Index a page for search with the fast tokenizer and the section cache: the entries Material would make.

        Every page but those whose front matter sets ``search`` options (left to Material): the generated
        pages, and the API and other Markdown pages too, whose sections then come from the cache while
        their HTML is unchanged.
        """
        uri = page.file.src_uri
        if self.search is not None and "search" not in page.meta:
            index_page(self.search.search_index, page, self.sections)
            page.meta["search"] = {"exclude": True}  # removed again in on_post_page
            self.indexed.add(uri)
        return context

    def on_post_page(self, output, *, page, config):
        """Name the theme's search dialog (:mod:`zij_canon.a11y`); put the rendered math into a generated page once search has indexed it."""
        output = a11y.repair(output)
        if page.file.src_uri in self.indexed:
            del page.meta["search"]
        if page.file.src_uri not in self.pages:
            return output
        return self.lineage.fill(self.renderer.fill_math(output), page.url)

    def on_serve(self, server, *, config, builder):
        """Rebuild when a record or a benchmark result changes."""
        server.watch(self.config.canon_dir)
        if self.config.bench_results and Path(self.config.bench_results).is_dir():
            server.watch(self.config.bench_results)
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
        """Keep the search sections for the next build; swap the finished build in, unless strict mode will reject it."""
        if self.sections is not None:
            self.sections.save()
        if self.api_cache is not None:
            self.api_cache.prune()
            log.debug("API pages: %d from the cache, %d rendered", self.api_cache.hits, self.api_cache.misses)
        if self.trajectories is not None:
            self.trajectories.prune()
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
