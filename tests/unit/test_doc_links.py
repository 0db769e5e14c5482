"""Every relative link in the documentation resolves.

README.md, ARCHITECTURE.md (when present), docs/*.md and bench/*.md link to each
other with relative paths and #anchors. A link resolves when its file exists and,
with an anchor, the target markdown file has a heading whose GitHub slug is that
anchor (lowercase, punctuation other than '-' and '_' dropped, spaces to '-',
'-1', '-2'... for repeated headings). Links inside code are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) or [text](<target> "title"); images too (the leading '!' is ignored)
INLINE_LINK = re.compile(
    r"\[(?:[^\[\]]|\[[^\]]*\])*\]"  # the text, which may hold one level of [brackets]
    r"\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)"  # (target "optional title")
)
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def doc_files(root: Path = ROOT) -> list[Path]:
    files = [root / "README.md"]
    if (root / "ARCHITECTURE.md").exists():
        files.append(root / "ARCHITECTURE.md")
    files += sorted((root / "docs").glob("*.md"))
    files += sorted((root / "bench").glob("*.md"))
    return files


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
        else:
            out.append((number, line))
    return out


def find_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link in the prose of a markdown text."""
    links: list[tuple[int, str]] = []
    for number, line in prose_lines(text):
        definition = REFERENCE_DEF.match(line)
        if definition:
            links.append((number, definition.group(1).strip("<>")))
            continue
        # code spans hide what looks like a link; their text stays as a placeholder
        line = CODE_SPAN.sub("code", line)
        links += [(number, m.group(1).strip("<>")) for m in INLINE_LINK.finditer(line)]
    return links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts as its text
    text = CODE_SPAN.sub(r"\2", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every #anchor a markdown text defines: heading slugs and <a name/id>."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def check_file(path: Path, root: Path = ROOT) -> list[str]:
    """One 'file:line: target: why' for each relative link of path that does not resolve."""
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    for number, target in find_links(text):
        if SCHEME.match(target):
            continue  # http:, https:, mailto:... are not checked here
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{where}:{number}: {target}: no such file")
            continue
        if not anchor:
            continue
        if dest.suffix != ".md" or dest.is_dir():
            problems.append(f"{where}:{number}: {target}: an anchor into a non-markdown file")
        elif anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{where}:{number}: {target}: no heading with anchor #{anchor}")
    return problems


# --- the checker itself --------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Quick start", "quick-start"),
        ("Why does `pyinit check` complain about `$`?", "why-does-pyinit-check-complain-about-"),
        ('Can\'t write, or "Illegal seek"', "cant-write-or-illegal-seek"),
        ("`bench_wrapper.py`: pyinit vs tini", "bench_wrapperpy-pyinit-vs-tini"),
        ("HTTP endpoints: /healthz, /readyz", "http-endpoints-healthz-readyz"),
        ("services.yaml: general rules", "servicesyaml-general-rules"),
        ("See [Semantics](semantics.md) now", "see-semantics-now"),
    ],
)
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_repeated_headings_get_numbered_anchors() -> None:
    text = "# Kubernetes\n## Kubernetes\n### Kubernetes\n<a id=\"custom\"></a>\n"
    assert anchors(text) == {"kubernetes", "kubernetes-1", "kubernetes-2", "custom"}


def test_links_in_code_are_not_links() -> None:
    text = (
        "See [a](a.md) and ![img](pic.png \"title\") and [ref][r].\n"
        "`[not](a-link.md)` inline code\n"
        "```md\n[not](in-a-fence.md)\n```\n"
        "[r]: <ref.md#part>\n"
        "  # [not a heading link](x.md) is still a link\n"
    )
    assert find_links(text) == [(1, "a.md"), (1, "pic.png"), (6, "ref.md#part"), (7, "x.md")]


FIXTURE = """\
# Fixture

## Good part

[same file](#good-part) [other](other.md#its-heading) [file](other.md)
[site](https://example.com/#nowhere) [dir](sub/)

## Bad part

[missing file](missing.md)
[missing anchor](other.md#no-such-heading)
[missing local anchor](#bad-parts)
[anchor into code](code.py#L3)

```
[in a fence](also-missing.md)
```
"""


def test_checker_reports_every_broken_link(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "other.md").write_text("# Other\n\n## Its heading\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    page = tmp_path / "page.md"
    page.write_text(FIXTURE)
    assert check_file(page, tmp_path) == [
        "page.md:10: missing.md: no such file",
        "page.md:11: other.md#no-such-heading: no heading with anchor #no-such-heading",
        "page.md:12: #bad-parts: no heading with anchor #bad-parts",
        "page.md:13: code.py#L3: an anchor into a non-markdown file",
    ]


# --- the project's documentation ---------------------------------------------


def test_every_relative_link_in_the_docs_resolves() -> None:
    files = doc_files()
    names = {str(f.relative_to(ROOT)) for f in files}
    # the pages the README's map promises; a missing one would make this test vacuous
    assert {"README.md", "docs/configuration.md", "docs/semantics.md", "bench/README.md"} <= names
    relative = [t for f in files for _, t in find_links(f.read_text()) if not SCHEME.match(t)]
    assert len(relative) > 50
    problems = [p for f in files for p in check_file(f)]
    assert problems == []


def test_readme_keeps_the_ci_test_command() -> None:
    """.ci/run ends with the README's test command, verbatim; tooling reads it there."""
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip()]
    command = ci[-1]
    assert command == "pip install -e '.[test]' && python3 -m pytest"
    assert f"\n{command}\n" in (ROOT / "README.md").read_text()
