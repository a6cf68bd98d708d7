"""Static checks on a rule's LaTeX, before KaTeX and pdflatex see it.

A rule must compile inside ``\\[ ... \\]`` in a plain article with only amsmath
and amssymb. These checks catch the common ways it would not, with a message
that says what to write instead; the KaTeX render at build time and the
pdflatex test are the final word.
"""

from __future__ import annotations

import re

# Macros users often reach for that amsmath/amssymb do not define, with the
# portable spelling to use instead.
NOT_IN_AMS = {
    "argmin": r"\operatorname*{arg\,min}",
    "argmax": r"\operatorname*{arg\,max}",
    "norm": r"\lVert x \rVert",
    "abs": r"\lvert x \rvert",
    "R": r"\mathbb{R}",
    "N": r"\mathbb{N}",
    "E": r"\mathbb{E}",
    "Var": r"\operatorname{Var}",
    "bm": r"\boldsymbol",
    "mathbbm": r"\mathbb",
    "mathscr": r"\mathcal",
    "coloneqq": r":=",
    "eqqcolon": r"=:",
    "sign": r"\operatorname{sign}",
    "sgn": r"\operatorname{sgn}",
    "diag": r"\operatorname{diag}",
    "tr": r"\operatorname{tr}",
    "Tr": r"\operatorname{Tr}",
    "clip": r"\operatorname{clip}",
    "proj": r"\operatorname{proj}",
    "softmax": r"\operatorname{softmax}",
    "dd": r"\mathrm{d}",
    "qty": r"\left( ... \right)",
    "bra": r"\langle x \rvert",
    "ket": r"\lvert x \rangle",
    "braket": r"\langle x \mid y \rangle",
    "textsc": r"\text{...}",
    "lbrack": r"[",
    "rbrack": r"]",
    "vcentcolon": r":",
    "htmlClass": r"(nothing: HTML macros are not allowed)",
    "href": r"(nothing: links do not belong in a rule)",
    "url": r"(nothing: links do not belong in a rule)",
    "includegraphics": r"(nothing)",
    "def": r"(nothing: define no macros)",
    "newcommand": r"(nothing: define no macros)",
    "renewcommand": r"(nothing: define no macros)",
    # KaTeX-only shorthands (KaTeX renders them, pdflatex with amsmath/amssymb does not)
    "Z": r"\mathbb{Z}",
    "reals": r"\mathbb{R}",
    "Reals": r"\mathbb{R}",
    "natnums": r"\mathbb{N}",
    "cnums": r"\mathbb{C}",
    "Complex": r"\mathbb{C}",
    "bold": r"\mathbf",
    "Bbb": r"\mathbb",
    "set": r"\{ x \mid ... \}",
    "Set": r"\{ x \mid ... \}",
    "plim": r"\operatorname*{plim}",
    "isin": r"\in",
    "infin": r"\infty",
    "empty": r"\emptyset",
    "exist": r"\exists",
    "sub": r"\subset",
    "sube": r"\subseteq",
    "supe": r"\supseteq",
    "sdot": r"\cdot",
    "plusmn": r"\pm",
    "lang": r"\langle",
    "rang": r"\rangle",
    "larr": r"\leftarrow",
    "rarr": r"\rightarrow",
    "lArr": r"\Leftarrow",
    "rArr": r"\Rightarrow",
    "harr": r"\leftrightarrow",
    "hArr": r"\Leftrightarrow",
    "alef": r"\aleph",
    "alefsym": r"\aleph",
    "thetasym": r"\vartheta",
    "weierp": r"\wp",
    "bull": r"\bullet",
    "llbracket": r"[\![ (or \left[ ... \right])",
    "rrbracket": r"]\!]",
    "coloneq": r":=",
    "Coloneqq": r"::=",
    "dblcolon": r"::",
    "textcolor": r"(nothing: no colors)",
    "color": r"(nothing: no colors)",
}
BRACE_HINT = "every '{' needs a matching '}'; write \\{ and \\} for literal braces"
MACRO = re.compile(r"\\([A-Za-z]+)")
ENV = re.compile(r"\\(begin|end)\s*\{([^}]*)\}")
LEFT_RIGHT = re.compile(r"\\(left|right)(?![A-Za-z])")


def _brace_problems(text: str) -> list[str]:
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2  # skip the escaped character (\{, \}, \\ ...)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return [f"unbalanced braces: a '}}' at character {i + 1} closes nothing (hint: {BRACE_HINT})"]
        i += 1
    return [f"unbalanced braces: {depth} '{{' never closed (hint: {BRACE_HINT})"] if depth else []


def _environment_problems(text: str) -> list[str]:
    stack: list[str] = []
    for kind, name in ENV.findall(text):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            return [f"\\end{{{name}}} does not match an open \\begin{{{name}}} (hint: close environments in the order they were opened)"]
    return [f"\\begin{{{stack[-1]}}} is never ended (hint: add \\end{{{stack[-1]}}})"] if stack else []


def check(text: str) -> list[str]:
    """Return the problems found in ``text`` (empty when it looks compilable)."""
    problems: list[str] = []
    bad = sorted(c for c in set(text) if ord(c) > 126 or (ord(c) < 32 and c not in "\n\t"))
    if bad:
        problems.append(
            f"non-ASCII characters {''.join(bad)!r} do not compile in a plain article (hint: use macros such as \\theta)"
        )
    if "$" in text:
        problems.append("no '$' inside the rule (hint: it is already display math; remove the '$')")
    if re.search(r"\\\[|\\\]|\\\(|\\\)", text):
        problems.append("no \\[ \\] or \\( \\) delimiters inside the rule (hint: it is already display math; remove them)")
    problems += _brace_problems(text)
    problems += _environment_problems(text)
    kinds = LEFT_RIGHT.findall(text)
    if kinds.count("left") != kinds.count("right"):
        problems.append(f"{kinds.count('left')} \\left but {kinds.count('right')} \\right (hint: pair each \\left with a \\right; \\right. closes invisibly)")
    for macro in sorted(set(MACRO.findall(text))):
        if macro in NOT_IN_AMS:
            problems.append(f"\\{macro} is not defined by amsmath/amssymb (hint: write {NOT_IN_AMS[macro]} instead)")
    return problems


INLINE = re.compile(r"\$([^$]+)\$")


def split_inline(text: str) -> list[tuple[bool, str]]:
    """Split prose into (is_math, piece) parts; math is written between single ``$``."""
    parts, last = [], 0
    for m in INLINE.finditer(text):
        if m.start() > last:
            parts.append((False, text[last : m.start()]))
        parts.append((True, m.group(1)))
        last = m.end()
    if last < len(text):
        parts.append((False, text[last:]))
    return parts


def check_inline(text: str) -> list[str]:
    """Problems in prose that may hold inline math between ``$`` signs."""
    if text.count("$") % 2:
        return ["an odd number of '$' (hint: inline math is written between two single '$' signs)"]
    problems = []
    for is_math, piece in split_inline(text):
        if is_math:
            problems += [f"in ${piece}$: {p}" for p in check(piece) if "'$'" not in p]
    return problems
