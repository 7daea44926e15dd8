"""The reader against an independent model of the Simple project's parser, on generated documents.

The model below re-states, in a few lines, how ormastes/simple's src/lib/common/sdn/parser.spl reads a block:
a key is the text before a line's first top-level ':' or '=', an empty value opens a block (a sequence when its first
line starts with '- '), a '- ' item holding a top-level ':' is a dict made of its line and the lines indented
deeper, and an inline value that opens '[' or '{' takes the following lines until its brackets balance, its
items split on top-level commas or line breaks. It is written for the constructs generated here only (no
tables, no comments); gpubench unquotes quoted keys, where the Simple parser keeps the quotes (docs/sdn.md).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpubench.config.sdn import loads

# --- the model ---------------------------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _top_level(text: str, stops: str) -> list[int]:
    """Positions of ``stops`` characters outside brackets and quoted strings."""
    found, depth, quoted, escaped = [], 0, False, False
    for i, char in enumerate(text):
        if quoted:
            escaped, quoted = (False, quoted) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif depth == 0 and char in stops:
            found.append(i)
    return found


def _depth(text: str) -> int:
    """Brackets still open at the end of ``text`` (quoted strings hold none)."""
    return sum((c in "[{") - (c in "]}") for c in re.sub(r'"(?:[^"\\]|\\.)*"', "", text))


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "nil", ""):
        return None
    if text.startswith('"'):
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text.startswith("["):
        inner = text[1:-1]
        cuts = [-1, *_top_level(inner, ",\n"), len(inner)]
        parts = [inner[a + 1 : b].strip() for a, b in itertools.pairwise(cuts)]
        return [_scalar(p) for p in parts if p]
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def _key(text: str) -> str:
    text = text.strip()
    return _scalar(text) if text.startswith('"') else text


def _block(lines: list[str], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if _indent(lines[i]) < indent:
            break
        text, ind = lines[i].strip(), _indent(lines[i])
        cut = _top_level(text, ":=")[0]
        key, value = _key(text[:cut]), text[cut + 1 :].strip()
        if not value:
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), len(lines))
            if nxt < len(lines) and lines[nxt].strip().startswith("- "):
                out[key], i = _sequence(lines, i + 1, ind + 1)
            else:
                out[key], i = _block(lines, i + 1, ind + 1)
            continue
        while value[0] in "[{" and _depth(value) > 0:
            i += 1
            value += "\n" + lines[i].strip()
        out[key] = _scalar(value)
        i += 1
    return out, i


def _sequence(lines: list[str], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        ind, text = _indent(lines[i]), lines[i].strip()
        if ind < indent or not text.startswith("- "):
            break
        rest = text[2:].strip()
        body = [" " * (ind + 2) + rest]
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > ind):
            body.append(lines[i])
            i += 1
        items.append(_block(body, 0, ind + 2)[0] if _top_level(rest, ":=") else _scalar(rest))
    return items, i


def model(text: str) -> dict[str, Any]:
    return _block(text.split("\n"), 0, 0)[0]


# --- generated documents ---------------------------------------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
_TAIL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-/", max_size=6)
keys = st.one_of(
    _WORD,  # device
    st.builds(lambda a, b: f"{a}-{b}", _WORD, _WORD),  # run-config
    st.builds(lambda a, b: f"{a}.{b}", _WORD, _WORD),  # lib.crypto, results.sdn
    st.builds(lambda a: f".{a}", _WORD),  # .text
    st.integers(0, 999).map(str),  # 0
    st.builds(str.__add__, st.sampled_from("abc_./0"), _TAIL),  # anything the bare-key alphabet allows
    st.builds(lambda a, b: f"{a} {b}", _WORD, _WORD),  # written quoted
)
scalars = st.one_of(
    _WORD.filter(lambda w: w not in ("true", "false", "null", "nil")),
    st.integers(-10_000, 10_000),
    st.booleans(),
    st.text(alphabet="abc ,:#[]{}-", min_size=1, max_size=8),  # written quoted
)
flat_lists = st.lists(scalars, max_size=4)


def _dicts(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(keys, children, min_size=1, max_size=4)


values = st.recursive(
    scalars | flat_lists,
    lambda children: _dicts(children) | st.lists(_dicts(children), min_size=1, max_size=3),
    max_leaves=10,
)


def _key_text(key: str) -> str:
    return key if re.fullmatch(r"[\w./][\w./-]*", key) else f'"{key}"'


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value if re.fullmatch(r"[a-z]+", value) else '"' + value.replace('"', '\\"') + '"'


def render(value: dict[str, Any], pad: str, style: st.DataObject, out: list[str]) -> None:
    step = " " * style.draw(st.sampled_from([2, 4]))
    for key, item in value.items():
        head = f"{pad}{_key_text(key)}"
        if isinstance(item, dict):
            out.append(f"{head}:")
            render(item, pad + step, style, out)
        elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            out.append(f"{head}:")
            for element in item:
                lines: list[str] = []
                render(element, pad + step + "  ", style, lines)
                out.append(pad + step + "- " + lines[0].lstrip(" "))
                out.extend(lines[1:])
        elif isinstance(item, list):
            cells = [_scalar_text(x) if not isinstance(x, dict) else "" for x in item]
            if style.draw(st.booleans()):
                out.append(f"{head}: [{', '.join(cells)}]")
            else:  # one item per line, commas or not
                out.append(f"{head} = [")
                comma = "," if style.draw(st.booleans()) else ""
                out.extend(f"{pad}{step}{cell}{comma}" for cell in cells)
                out.append(f"{pad}]")
        else:
            out.append(f"{head}: {_scalar_text(item)}")


def _only_flat_lists_of_scalars(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_only_flat_lists_of_scalars(v) for v in value.values())
    if isinstance(value, list):
        dicts = [x for x in value if isinstance(x, dict)]
        return (len(dicts) in (0, len(value))) and all(_only_flat_lists_of_scalars(x) for x in dicts)
    return True


@settings(deadline=None, max_examples=150)
@given(_dicts(values).filter(_only_flat_lists_of_scalars), st.data())
def test_reader_agrees_with_the_model_of_the_simple_parser(value: dict[str, Any], style: st.DataObject) -> None:
    lines: list[str] = []
    render(value, "", style, lines)
    text = "\n".join(lines) + "\n"
    expected = model(text)
    assert expected == value  # the model reads the rendering back: the rendering is what we meant
    assert loads(text) == expected, text
