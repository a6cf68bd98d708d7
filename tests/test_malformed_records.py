"""Malformed records, generated: each fails validation cleanly and never reaches the site.

Every kind of breakage below (wrong types, missing and extra fields, bad ids and
paths, duplicate keys, YAML tags, alias bombs, huge text, control characters,
bad UTF-8, LaTeX that KaTeX rejects, unknown vocabulary, dangling or circular
``related`` links, ...) is drawn by hypothesis in a few variations, written into
a temporary copy of a small Canon, and must

* fail validation with problems of the form ``file:line: field: message (hint: ...)``,
  naming the broken file, with a line inside it (and the expected field and line
  where the kind knows them);
* raise nothing but the Canon's own error: no traceback from the loader, the
  validator, KaTeX rendering or ``zij-canon``;
* stop the MkDocs plugin before any page is written (``on_config`` raises
  ``PluginError``).

A few rules that KaTeX renders but pdflatex rejects are checked with pdflatex
separately (it is slow).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mkdocs.exceptions import PluginError

from _helpers import FIXTURES, ROOT, small_canon
from zij_canon import CanonError, load
from zij_canon.cli import main as cli
from zij_canon.loader import MAX_FILE_BYTES, MAX_SCALAR_CHARS
from zij_canon.math import find_katex, render_canon_math, tex_check
from zij_canon.plugin import CanonPlugin

REL = "first-order/fixture-method.yaml"
BASE_TEXT = (FIXTURES / "valid-base.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)
KATEX = find_katex(ROOT)
HINTED = re.compile(r"\(hint: .+\)")
SETTINGS = dict(
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@dataclass
class Case:
    """What one malformed example writes, and what validation must say about it."""

    files: dict[str, bytes | str | None]  # relative path -> content (None: a folder; "->target": a symlink)
    field: str | None = None  # a problem must name this field (prefix match) ...
    key: str | None = None  # ... on a line holding this text
    stage: str = "load"  # "katex": valid YAML and schema, rejected when its math is rendered
    blamed: list[str] | None = None  # files that must get a problem (default: all written)


def dump(data) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000).encode()


def base():
    return yaml.safe_load(BASE_TEXT)


def one(data, **kw) -> Case:
    return Case({REL: dump(data)}, **kw)


def text_case(text: str, **kw) -> Case:
    return Case({REL: text.encode()}, **kw)


def replace_line(prefix: str, new: str) -> str:
    """The base record's text with the line starting with ``prefix`` replaced."""
    lines = BASE_TEXT.splitlines(keepends=True)
    (i,) = [n for n, line in enumerate(lines) if line.startswith(prefix)]
    lines[i] = new.rstrip("\n") + "\n"
    return "".join(lines)


def set_path(data, path: tuple, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def delete_path(data, path: tuple):
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


# -- strategies ------------------------------------------------------------------
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
ids = st.from_regex(r"[a-z]{3,8}(-[a-z0-9]{1,5}){0,2}", fullmatch=True)
not_text = st.one_of(
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.lists(st.integers(), min_size=1, max_size=3), st.dictionaries(words, st.integers(), min_size=1, max_size=2),
)
not_int = st.one_of(
    words, st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    st.lists(st.integers(), min_size=1, max_size=3), st.dictionaries(words, st.integers(), min_size=1, max_size=2),
)
not_list = st.one_of(st.integers(), words, st.dictionaries(words, st.integers(), min_size=1, max_size=2))
not_mapping = st.one_of(st.integers(), words, st.lists(st.integers(), min_size=1, max_size=3))
bad_ids = st.one_of(
    st.sampled_from(["../x", "../../etc/passwd", "/abs", "a/b", "x.yaml", "Upper", "under_score", "-lead", "trail-",
                     "dou--ble", "sp ace", "", "café", "a\\b", "..", "."]),
    st.text(min_size=1, max_size=12).filter(lambda s: not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", s.strip())),
)
control_chars = st.sampled_from([*range(0, 9), *range(11, 32), 127, 0x85])
invisible = st.sampled_from([0x200B, 0x200E, 0x202A, 0x202E, 0x2066, 0x2069, 0xFEFF, 0x00AD, 0x2028, 0x2029, 0xE000, 0xFFFF])
unknown_macro = st.from_regex(r"zz[a-z]{3,10}", fullmatch=True).map(lambda s: "\\" + s)


# -- the kinds of breakage -------------------------------------------------------
def wrong_type(path: tuple, values) -> callable:
    name = ".".join(map(str, path)).replace(".0", "[0]")

    def make(draw):
        return one(set_path(base(), path, draw(values)), field=name, key=str([k for k in path if isinstance(k, str)][-1]))

    return make


def missing(path: tuple) -> callable:
    name = ".".join(map(str, path)).replace(".0", "[0]")
    return lambda draw: one(delete_path(base(), path), field=name)


def extra(path: tuple) -> callable:
    def make(draw):
        key = draw(words.filter(lambda w: w not in BASE and w not in ("id", "url", "kind", "title", "relation")))
        return one(set_path(base(), (*path, key), draw(st.one_of(words, st.integers()))), key=key)

    return make


def value(path: tuple, values, field: str | None = None) -> callable:
    name = field or ".".join(map(str, path)).replace(".0", "[0]")
    return lambda draw: one(set_path(base(), path, draw(values)), field=name)


def katex(path: tuple, values, field: str | None = None) -> callable:
    return lambda draw: one(set_path(base(), path, draw(values)), field=field or path[0], stage="katex")


def second_record(rid: str, related: list[dict]) -> bytes:
    data = base()
    data.update(id=rid, name=rid.title(), related=related)
    return dump(data)


def duplicate_top_key(draw):
    key = draw(st.sampled_from(["name", "year", "venue", "summary", "id"]))
    line = next(line for line in BASE_TEXT.splitlines() if line.startswith(f"{key}:"))
    return text_case(BASE_TEXT + line + "\n", field=key, key=f"{key}:")


def billion_laughs(draw):
    width, depth = draw(st.integers(5, 10)), draw(st.integers(3, 9))
    lines = [f"lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]" for i in range(1, depth + 1)]
    return text_case("\n".join(lines) + "\n" + replace_line("aliases:", f"aliases: *lol{depth}"), key="aliases:")


def deep_nesting(draw):
    depth = draw(st.integers(14, 3000))
    return text_case(BASE_TEXT + "notes: " + "[" * depth + "x" + "]" * depth + "\n")


def escaped_char(key: str, codes) -> callable:
    def make(draw):
        code = draw(codes)
        escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        return text_case(replace_line(f"{key}:", f'{key}: "Fix{escape}ture method, a record that is long enough"'),
                         field=key, key=f"{key}:")

    return make


def bad_utf8(draw):
    junk = draw(st.sampled_from([b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe9t\xe9", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]))
    line = draw(st.integers(2, 20))
    lines = BASE_TEXT.encode().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].rstrip(b"\n") + b" " + junk + b"\n"
    return Case({REL: b"".join(lines)}, field="<file>", key=None)


def cycle(relation: str, size: int) -> callable:
    def make(draw):
        names = ["fixture-method", *[f"fixture-{c}" for c in "bcd"[: size - 1]]]
        files = {}
        for i, rid in enumerate(names):
            target = names[(i + 1) % size]
            files[f"first-order/{rid}.yaml"] = second_record(rid, [{"id": target, "relation": relation}])
        return Case(files, field="related[0].id", key="id:")

    return make


def contradictory_hierarchy(draw):
    files = {
        REL: second_record("fixture-method", [{"id": "fixture-b", "relation": "special-case-of"}]),
        "first-order/fixture-b.yaml": second_record("fixture-b", [{"id": "fixture-method", "relation": "special-case-of"}]),
    }
    if draw(st.booleans()):  # the same contradiction written the other way round
        files["first-order/fixture-b.yaml"] = second_record("fixture-b", [{"id": "adam", "relation": "builds-on"}])
        files[REL] = second_record("fixture-method", [
            {"id": "fixture-b", "relation": "special-case-of"}, {"id": "fixture-b", "relation": "generalizes"}])
        return Case(files, field="related", key="id:", blamed=[REL])
    return Case(files, field="related[0].id", key="id:")


KINDS: dict[str, callable] = {
    # wrong types
    "type-id": wrong_type(("id",), not_text),
    "type-name": wrong_type(("name",), not_text),
    "type-summary": wrong_type(("summary",), not_text),
    "type-year": wrong_type(("year",), not_int),
    "type-venue": wrong_type(("venue",), not_text),
    "type-categories": wrong_type(("categories",), not_list),
    "type-families": wrong_type(("families",), not_list),
    "type-aliases": wrong_type(("aliases",), st.one_of(not_list, st.lists(st.integers(), min_size=1, max_size=2))),
    "type-paper": wrong_type(("paper",), not_mapping),
    "type-paper-title": wrong_type(("paper", "title"), not_text),
    "type-update-rule": wrong_type(("update_rule",), not_mapping),
    "type-symbols": wrong_type(("update_rule", "symbols"), not_list),
    "type-symbol": wrong_type(("update_rule", "symbols", 0, "symbol"), not_text),
    "type-code": wrong_type(("code",), not_list),
    "type-code-kind": wrong_type(("code", 0, "kind"), not_text),
    "type-related": wrong_type(("related",), not_list),
    "type-notes": wrong_type(("notes",), st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2))),
    "type-hyperparameter-default": lambda draw: one(
        set_path(base(), ("hyperparameters",), [{"name": "lr", "default": draw(st.dictionaries(words, st.integers(), min_size=1, max_size=2))}]),
        field="hyperparameters[0].default"),
    # missing fields
    **{f"missing-{'.'.join(map(str, p))}": missing(p) for p in [
        ("id",), ("name",), ("categories",), ("summary",), ("year",), ("venue",), ("paper",), ("update_rule",),
        ("paper", "title"), ("paper", "url"), ("update_rule", "latex"), ("update_rule", "rule_source"),
        ("update_rule", "symbols", 0, "meaning"), ("code", 0, "license"), ("related", 0, "relation"),
    ]},
    # extra fields
    "extra-top": extra(()),
    "extra-paper": extra(("paper",)),
    "extra-related": extra(("related", 0)),
    "extra-code": extra(("code", 0)),
    # ids and paths
    "bad-id": value(("id",), bad_ids),
    "bad-related-id": value(("related", 0, "id"), bad_ids, field="related[0].id"),
    "bad-zij-class": value(("zij_class",), st.sampled_from(["zij/../os", "os.system", "zij.", "zij..x", "../zij.Adam", "zij.Adam;rm"])),
    "bad-paper-url": value(("paper", "url"), st.sampled_from(
        ["javascript:alert(1)", "http://example.org/x", "file:///etc/passwd", "//evil.example", "../x", "https://", "https://a b.org"])),
    "bad-code-url": value(("code", 0, "url"), st.sampled_from(["../x", "ftp://x.org/a", "http://github.com/x", "data:text/html,x"]),
                          field="code[0].url"),
    "bad-doi": value(("paper", "doi"), st.sampled_from(["doi:10.1/x", "https://doi.org/10.1000/x", "10.1/x", "11.1000/x"])),
    "bad-arxiv": value(("paper", "arxiv"), st.sampled_from(["arXiv:1711.05101", "1711.05101v2", "1713.05101", "abc", "1711"])),
    "file-name-not-id": lambda draw: Case({f"first-order/{draw(st.sampled_from(['Fixture Method', 'UPPER', 'x..y']))}.yaml": BASE_TEXT.encode()},
                                          field="id"),
    "file-not-yaml": lambda draw: Case({f"first-order/fixture-method.{draw(st.sampled_from(['yml', 'YAML', 'json', 'txt']))}": BASE_TEXT.encode()},
                                       field="<file>"),
    "file-outside-category": lambda draw: Case({f"{draw(st.sampled_from(['nowhere', 'First-Order', 'tmp']))}/fixture-method.yaml": BASE_TEXT.encode()},
                                               field="<file>"),
    "folder-named-yaml": lambda draw: Case({REL: None}, field="<file>"),
    "dangling-symlink": lambda draw: Case({REL: "->" + draw(st.sampled_from(["../nowhere.yaml", "/nonexistent/x.yaml"]))}, field="<file>"),
    "symlink-outside-canon": lambda draw: Case({REL: "->../../outside.yaml", "../outside.yaml": BASE_TEXT.encode()}, field="<file>",
                                               blamed=[REL]),
    # YAML structure
    "duplicate-top-key": duplicate_top_key,
    "duplicate-nested-key": lambda draw: text_case(replace_line("  title:", "  title: A Paper About Fixtures\n  title: Another Title"),
                                                   field="paper.title", key="title:"),
    "duplicate-flow-key": lambda draw: text_case(replace_line("    - {symbol: 'g_t'", "    - {symbol: 'g_t', meaning: gradient, meaning: again}"),
                                                 field="update_rule.symbols[1].meaning", key="meaning"),
    "tag-python-object": lambda draw: text_case(replace_line("name:", "name: " + draw(st.sampled_from([
        '!!python/object/apply:os.system ["true"]', "!!python/name:os.system", "!!python/object:collections.OrderedDict {}",
        "!!python/tuple [a, b]", "!!python/module:os"]))), field="<yaml>", key="name:"),
    "tag-binary": lambda draw: text_case(replace_line("name:", "name: !!binary Rml4dHVyZQ=="), field="<yaml>", key="name:"),
    "tag-set-omap": lambda draw: text_case(replace_line("aliases:", "aliases: " + draw(st.sampled_from(
        ["!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]"]))), field="<yaml>", key="aliases:"),
    "tag-float-year": lambda draw: text_case(replace_line("year:", "year: !!float 2019"), field="<yaml>", key="year:"),
    "tag-custom": lambda draw: text_case(replace_line("venue:", f"venue: !{draw(words)} iclr"), field="<yaml>", key="venue:"),
    "tag-directive": lambda draw: text_case("%TAG !e! tag:example.org,2024:\n---\n" + replace_line("venue:", "venue: !e!v iclr"),
                                            field="<yaml>", key="venue:"),
    "alias-plain": lambda draw: text_case(replace_line("name:", "name: &n Fixture Method").replace("aliases: [Fixture]", "aliases: [*n]"),
                                          field="aliases[0]", key="aliases:"),
    "alias-recursive": lambda draw: text_case(replace_line("aliases:", "aliases: &r [a, *r]"), field="aliases[1]", key="aliases:"),
    "alias-bomb": billion_laughs,
    "merge-key": lambda draw: text_case(replace_line("  - {url:", "  - &c {url: 'https://github.com/example/fixture', kind: official, license: MIT}\n"
                                                                   "  - <<: *c\n    kind: community"), key="<<"),
    "implicit-date": lambda draw: text_case(replace_line("name:", f"name: {draw(st.dates()).isoformat()}"), field="name", key="name:"),
    "deep-nesting": deep_nesting,
    "not-a-mapping": lambda draw: text_case(draw(st.sampled_from(["", "~\n", "- a\n- b\n", "just text\n", "42\n", "[]\n"])),
                                            field=None),
    "two-documents": lambda draw: text_case(BASE_TEXT + "---\n" + BASE_TEXT),
    "non-string-key": lambda draw: text_case(BASE_TEXT + draw(st.sampled_from(["1: x\n", "null: x\n", "true: x\n", "1.5: x\n"]))),
    "complex-key": lambda draw: text_case(BASE_TEXT + "? [a, b]\n: c\n"),
    "malformed-yaml": lambda draw: text_case(replace_line("venue:", draw(st.sampled_from(
        ["venue: 'unclosed", "venue: [iclr", "\tvenue: iclr", "venue: iclr: x", "venue: {a", 'venue: "\\ud800"']))), field="<yaml>"),
    # huge and unprintable text
    "huge-notes": lambda draw: one(set_path(base(), ("notes",), "x" * draw(st.integers(MAX_SCALAR_CHARS + 1, MAX_FILE_BYTES - 2000))),
                                   field="notes", key="notes:"),
    "huge-summary": lambda draw: one(set_path(base(), ("summary",), "word " * draw(st.integers(200, 5000))), field="summary",
                                     key="summary:"),
    "huge-latex": lambda draw: one(set_path(base(), ("update_rule", "latex"), "x+" * draw(st.integers(MAX_SCALAR_CHARS, 20000))),
                                   field="update_rule.latex", key="latex:"),
    "huge-file": lambda draw: Case({REL: BASE_TEXT.encode() + b"# padding\n" * draw(st.integers(MAX_FILE_BYTES // 10, 20000))},
                                   field="<file>"),
    "huge-key": lambda draw: one(set_path(base(), ("k" * draw(st.integers(100, MAX_SCALAR_CHARS + 10)),), 1)),
    "many-keys": lambda draw: one({**base(), **{f"k{i}": i for i in range(draw(st.integers(50, 1000)))}}),
    "control-char-escaped": escaped_char("name", control_chars),
    "invisible-char-escaped": escaped_char("summary", invisible),
    "control-char-raw": lambda draw: Case({REL: replace_line("name:", "name: Fix" + chr(draw(st.sampled_from([1, 7, 8, 27, 127]))) + "ture").encode()},
                                          field="<yaml>", key="name:"),
    "nul-byte": lambda draw: Case({REL: BASE_TEXT.encode().replace(b"Fixture Method", b"Fix\x00ture Method")}, field="<yaml>"),
    "bad-utf8": bad_utf8,
    "utf16": lambda draw: Case({REL: BASE_TEXT.encode(draw(st.sampled_from(["utf-16", "utf-32", "utf-16-be"])))}),
    "html-in-name": value(("name",), st.sampled_from(["<script>x</script>", "a & b", "{{ x }}", "`x`", 'say "x"'])),
    # LaTeX
    "latex-static": value(("update_rule", "latex"), st.sampled_from(
        ["\\frac{a}{b", "a}", "$x$", "\\[x\\]", "\\begin{aligned} x", "\\left( x", "\\argmin_x f", "\\R^n", "θ + 1",
         "\\Z", "\\set{x}", "\\bold{x}", "\\newcommand{\\x}{y} \\x"]), field="update_rule.latex"),
    "latex-inline-static": value(("summary",), st.sampled_from(
        ["An odd $ sign in a summary that is long enough.", "Math with $\\frac{a}{b$ in a long enough summary.",
         "Math with $\\norm{x}$ in a summary that is long enough."])),
    "katex-rule": katex(("update_rule", "latex"), st.one_of(unknown_macro, st.sampled_from(
        ["x^a^b", "x_a_b", "\\frac{a}", "\\begin{foo} x \\end{foo}", "\\sqrt[", "a \\over b \\over c", "\\hat", "x &= y"])),
        field="update_rule.latex"),
    "katex-inline": katex(("summary",), unknown_macro.map(lambda m: f"A summary long enough, with math ${m} x$ inside.")),
    "katex-symbol": katex(("update_rule", "symbols", 0, "symbol"), st.one_of(unknown_macro, st.just("x^")),
                          field="update_rule.symbols[0].symbol"),
    "katex-meaning": katex(("update_rule", "symbols", 1, "meaning"), unknown_macro.map(lambda m: f"the gradient ${m}$"),
                           field="update_rule.symbols[1].meaning"),
    # vocabularies
    "unknown-category": value(("categories",), words.map(lambda w: ["first-order", f"no-{w}"]), field="categories[1]"),
    "unknown-family": value(("families",), words.map(lambda w: [f"no-{w}"]), field="families[0]"),
    "unknown-venue": value(("venue",), words.map(lambda w: f"no-{w}")),
    "unknown-rule-source": value(("update_rule", "rule_source"), words.filter(lambda w: w not in ("paper", "code", "sketch"))),
    "unknown-relation": value(("related", 0, "relation"), words.filter(lambda w: w not in ("combines",)), field="related[0].relation"),
    "unknown-code-kind": value(("code", 0, "kind"), words.filter(lambda w: w not in ("official", "community")), field="code[0].kind"),
    "unknown-license": value(("code", 0, "license"), st.sampled_from(["MIT-ish", "GPL", "Apache 2", "mit", "BSD", "GPL-3.0"]),
                             field="code[0].license"),
    "implausible-year": value(("year",), st.one_of(st.integers(-10**6, 1939), st.integers(2100, 10**12))),
    "year-before-venue": value(("year",), st.integers(1940, 2012)),
    # related links
    "dangling-related": value(("related", 0, "id"), ids.map(lambda s: f"no-{s}"), field="related[0].id"),
    "self-related": value(("related", 0, "id"), st.just("fixture-method"), field="related[0].id"),
    "duplicate-id": lambda draw: Case({REL: BASE_TEXT.encode(), "second-order/fixture-method.yaml": dump({**base(), "categories": ["second-order"]})},
                                      field="id"),
    "cycle-builds-on": cycle("builds-on", 2),
    "cycle-builds-on-3": cycle("builds-on", 3),
    "cycle-combines": cycle("combines", 3),
    "cycle-special-case": cycle("special-case-of", 2),
    "contradictory-hierarchy": contradictory_hierarchy,
}


def test_at_least_fifty_kinds():
    assert len(KINDS) >= 50


# -- running one case --------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return small_canon(tmp_path_factory.mktemp("malformed") / "canon", ("first-order/adam.yaml", "first-order/sgd.yaml"))


def write(canon: Path, case: Case) -> list[Path]:
    paths = []
    for rel, content in case.files.items():
        path = canon / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, str) and content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_bytes(content)
        if path.resolve().is_relative_to(canon.resolve()) or path.is_symlink():
            paths.append(path)
    return paths


def on_key(problem, key: str) -> bool:
    """Whether the problem's line is the line holding ``key`` or inside the block that line opens."""
    lines = Path(problem.path).read_bytes().decode("utf-8", "replace").splitlines()
    line = lines[problem.line - 1] if problem.line <= len(lines) else ""
    if key in line:
        return True
    above = [i for i in range(problem.line - 1) if key in lines[i]]
    if not above:
        return False
    indent = len(lines[above[-1]]) - len(lines[above[-1]].lstrip())
    between = lines[above[-1] + 1 : problem.line]
    return all(len(text) - len(text.lstrip()) > indent or text.lstrip().startswith("- ") for text in between)


def validate(canon: Path, stage: str) -> list:
    """Problems of the whole check the build makes: schema and Canon, then KaTeX."""
    try:
        loaded = load(canon)
    except CanonError as exc:
        return exc.problems
    assert stage == "katex", "the record loaded without a problem"
    _, problems = render_canon_math(loaded, KATEX)
    return problems


def plugin_refuses(canon: Path) -> str:
    plugin = CanonPlugin()
    errors, warnings = plugin.load_config({"canon_dir": str(canon), "api": False, "katex_dir": str(KATEX)})
    assert not errors, errors
    config = SimpleNamespace(config_file_path=str(ROOT / "mkdocs.yml"), extra_css=[], extra_javascript=[],
                             site_dir=str(canon.parent / "site"), plugins={})
    with pytest.raises(PluginError) as info:
        plugin.on_config(config)
    assert not (canon.parent / "site").exists()
    return str(info.value)


def check(template: Path, case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        canon = Path(tmp) / "canon"
        shutil.copytree(template, canon)
        written = write(canon, case)
        blamed = [canon / rel for rel in case.blamed] if case.blamed else written
        started = time.perf_counter()
        problems = validate(canon, case.stage)
        assert time.perf_counter() - started < 30, "validation took too long (an alias bomb expanded?)"
        assert problems, "no problem reported"
        for p in problems:
            rendered = str(p)
            assert rendered == f"{p.path}:{p.line}: {p.field}: {p.message}"
            assert p.line >= 1 and p.field and "\n" not in rendered, rendered
            assert HINTED.search(p.message), f"no hint: {rendered}"
            assert "Traceback" not in rendered
            path = Path(p.path)
            if path.is_file() and not path.is_symlink():
                assert p.line <= path.read_bytes().count(b"\n") + 1, rendered
        for path in blamed:
            assert [p for p in problems if p.path == str(path)], f"{path.name} not blamed in:\n" + "\n".join(map(str, problems))
        if case.field is not None:
            mine = [p for p in problems if p.path in {str(b) for b in blamed} and p.field.startswith(case.field)]
            assert mine, f"no problem for field {case.field!r} in:\n" + "\n".join(map(str, problems))
            if case.key is not None:
                assert any(on_key(p, case.key) for p in mine), f"not at {case.key!r}:\n" + "\n".join(map(str, mine))
        elif case.key is not None:
            assert any(on_key(p, case.key) for p in problems if p.path == str(blamed[0])), "\n".join(map(str, problems))
        # the command line says the same, without a traceback
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli(["--canon", str(canon), *(["validate"] if case.stage == "load" else ["check-math", "--katex-only"])])
        assert code == 1 and "Traceback" not in out.getvalue() + err.getvalue()
        # and the build stops before writing a page
        message = plugin_refuses(canon)
        assert str(problems[0]) in message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_malformed_record_is_refused(template, kind):
    examples = 2 if kind.startswith("katex") else 4

    @settings(max_examples=examples, **SETTINGS)
    @given(st.data())
    def run(data):
        check(template, KINDS[kind](data.draw))

    run()


# -- pdflatex: what KaTeX renders but LaTeX does not compile -----------------------
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX installed (CI installs texlive-latex-base)")
def test_rules_katex_accepts_but_pdflatex_rejects_are_reported(tmp_path):
    canon = small_canon(tmp_path / "canon")
    rules = {"fixture-alpha": "\\Alpha + x", "fixture-chi": "\\Chi_t = 1", "fixture-darr": "a \\darr b"}
    for rid, rule in rules.items():
        data = base()
        data.update(id=rid, related=[])
        data["update_rule"]["latex"] = rule
        (canon / "first-order" / f"{rid}.yaml").write_bytes(dump(data))
    loaded = load(canon)
    assert render_canon_math(loaded, KATEX)[1] == [], "KaTeX renders these"
    problems = tex_check(loaded)
    assert sorted(Path(p.path).stem for p in problems) == sorted(rules)
    for p in problems:
        assert p.field == "update_rule.latex" and "pdflatex" in p.message and HINTED.search(p.message)
        assert "latex:" in Path(p.path).read_text().splitlines()[p.line - 1]
