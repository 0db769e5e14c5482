"""libyaml against pure PyYAML: the config loader parses with libyaml and falls back
to the pure parser for any text libyaml objects to (so problems are worded as
before). That is only sound if, for every text libyaml accepts, the pure parser
accepts it too and composes the very same tree: tags, values, styles, lines,
columns, file names and shared (anchored) nodes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pyinit.config import yamltree

ROOT = Path(__file__).resolve().parents[2]
NAME = "/srv/services.yaml"

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")

PIECES = [
    "a", "b", "web", ":", ": ", " ", "  ", "\n", "\n  ", "\n    ", "- ", "-", "[", "]", "{",
    "}", ",", ", ", "'", '"', "&x ", "*x", "<<: ", "# c", "|", "|-", ">", ">+", "? ", "!!str ",
    "!!int ", "!x ", "\t", "\\", "\\n", "\\x41", "\\u00e9", "\\/", "%YAML 1.1\n", "%TAG ! !e\n",
    "---", "--- ", "...", "\r\n", "é", "\x85", "\u2028", "\ufeff", "1e3", "0x1f", "0o7", "~",
    "null", "yes", "On", "2001-12-14", "12:30:00", ".inf", "-.NaN", "=", "$", "${A:-b}", "`",
    "%", "@", "\x00", "\x07", "\ud800", "\U0001f600",
]  # fmt: skip
soup = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.sampled_from(["", " a", "a ", "a\nb", "'", '"', "\\", ": ", "#", "- x", "\t", "\x85"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=15,
)


@st.composite
def dumped(draw: st.DrawFn) -> str:
    """A value written by PyYAML in one of its styles: every quoting and folding."""
    style = draw(st.sampled_from([None, "'", '"', "|", ">"]))
    flow = draw(st.sampled_from([None, True, False]))
    width = draw(st.sampled_from([80, 8]))
    return yaml.safe_dump(
        draw(values), default_style=style, default_flow_style=flow, width=width, allow_unicode=True
    )


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A real config with a piece inserted or cut somewhere."""
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
    return text


SEEDS = [
    (ROOT / "services.example.yaml").read_text(),
    "x-base: &base\n  restart: always\n  environment: {A: '1', B: \"two\\tthree\"}\n"
    "services:\n  a:\n    <<: *base\n    command: [sh, -c, 'echo \"$A\" >&2']\n"
    "  b:\n    <<: [*base, {critical: true}]\n    command: >-\n      folded\n      text\n"
    "    healthcheck:\n      test: |\n        literal\n          block\n"
    "    depends_on: {a: {condition: service_started}}\n",
    "services: {a: {command: true, ready: notify}, 'b c': {command: \"x\\u00e9\\x41\"}}\n",
    "# comment\n---\nservices:\n  'quoted key':\n    command: [x, \"y z\", 'it''s']\n"
    "  a: '10'\n  b: {command: x, environment: [A=1, 'B=two: 2']}\n...\n",
]


# Every YAML example in the documentation, for the mutations too.
DOC_EXAMPLES = [
    block
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for block in re.findall(r"```ya?ml\n(.*?)```", page.read_text(), re.DOTALL)
]
CORPUS = SEEDS + DOC_EXAMPLES


def shape(node: yaml.Node | None, seen: dict[int, int]) -> object:
    """What the config readers see of a node (its kind, tag, value, style, file and
    first line: problems name no column), aliases as back-references."""
    if node is None:
        return None
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    head = (type(node).__name__, node.tag, node.start_mark.name, node.start_mark.line)
    if isinstance(node, yaml.ScalarNode):
        return (*head, node.style, node.value)
    if isinstance(node, yaml.SequenceNode):
        return (*head, [shape(item, seen) for item in node.value])
    return (*head, [(shape(k, seen), shape(v, seen)) for k, v in node.value])


def agree(text: str) -> None:
    """Where the config loader takes libyaml's tree, it is the pure parser's tree."""
    try:
        fast = yamltree.fast_compose(text, NAME)[1]
    except Exception:
        return  # the loader falls back to the pure parser: nothing to compare
    pure = yamltree._DepthLimitedLoader(text)
    pure.name = NAME
    assert shape(fast, {}) == shape(pure.get_single_node(), {})


def test_seeds_agree_and_are_parsed_by_libyaml() -> None:
    for text in SEEDS:
        assert yamltree.fast_compose(text, NAME)[1] is not None
        agree(text)


def test_config_loader_uses_libyaml_and_words_problems_as_pyyaml() -> None:
    problems: list[yamltree.Problem] = []
    tree = yamltree.compose(SEEDS[0], NAME, problems)
    assert tree is not None and isinstance(tree[0], yamltree._FastLoader)
    assert tree[1].start_mark.name == NAME
    yamltree.compose("a: [b\n", NAME, problems)
    assert [(p.line, p.message) for p in problems] == [
        (2, "YAML syntax error: while parsing a flow sequence; expected ',' or ']', "
         "but got '<stream end>' (column 1)")
    ]  # fmt: skip


def test_documentation_examples_agree() -> None:
    assert len(DOC_EXAMPLES) >= 5
    for text in DOC_EXAMPLES:
        agree(text)


@given(st.text())
def test_any_text(text: str) -> None:
    agree(text)


@given(soup)
def test_token_soup(text: str) -> None:
    agree(text)


@given(dumped())
def test_dumped_values(text: str) -> None:
    agree(text)


@given(mutated())
def test_mutated_configs(text: str) -> None:
    agree(text)


def test_a_tag_right_after_a_flow_colon_goes_to_the_pure_parser() -> None:
    """``{"a":!x}``: in a flow collection a tag may follow the colon with no space;
    libyaml read these otherwise (found in review): they must not reach it."""
    for text in (
        'services: {web: {"command": sleep 9, "environment": {"A":! }}}\n',
        'services: {web: {"command":!a,b sleep 9}}\n',
        '{"a":!:!str x}\n',
    ):
        with pytest.raises(ValueError, match="left to the pure parser"):
            yamltree.fast_compose(text, NAME)
