"""What a document holds: :class:`Document`, :class:`Table`, bare scalars and typed-table cells.

Pure functions over text that has already been cut out of a line: :func:`classify` reads a bare word
(``true``, ``42``, ``1.5e-3``, ``cuda:1``), :func:`typed_cell` converts a cell of a typed table to its
column type. Both the reader and the writer use them, so what is written reads back the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpubench.config.sdn.errors import Location, SdnError

MAX_DEPTH = 100
"""Deepest nesting of blocks and inline values the reader accepts (and the writer produces)."""

Path = tuple[str | int, ...]
"""Where a value sits in a document: its keys and indexes from the top, ``()`` for the document."""


class Table(list[Any]):
    """A table read from SDN: a list of rows plus the header.

    A named table (``key |a, b|``) has ``fields`` set and rows that are dicts keyed by field; a typed
    table (``key: table{i32, f64}``) has ``types`` set (as written, e.g. ``"i32"``) and rows that are
    tuples. Compared with another Table, the header counts too; compared with a plain list, only the rows.
    """

    fields: tuple[str, ...] | None
    types: tuple[str, ...] | None

    def __init__(
        self,
        rows: Iterable[Any] = (),
        *,
        fields: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
    ) -> None:
        super().__init__(rows)
        self.fields = tuple(fields) if fields is not None else None
        self.types = tuple(types) if types is not None else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table):
            return list.__eq__(self, other) and self.fields == other.fields and self.types == other.types
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # mutable, like list

    def __repr__(self) -> str:
        return f"Table({list.__repr__(self)}, fields={self.fields!r}, types={self.types!r})"


class Locations(Mapping[Path, Location]):
    """A read-only mapping from paths to locations, worked out when it is first used.

    :func:`~.parser.parse` reads values without recording where each one starts (recording took about
    a third of the time on a large file, and most callers never look); ``read`` gives the table on
    demand. Compares equal to a dict with the same items, and pickles and copies as that dict.
    """

    __slots__ = ("_read", "_table")

    def __init__(self, read: Callable[[], dict[Path, Location]]) -> None:
        self._read = read
        self._table: dict[Path, Location] | None = None

    def _items(self) -> dict[Path, Location]:
        if self._table is None:
            self._table = self._read()
        return self._table

    def __getitem__(self, path: Path) -> Location:
        return self._items()[path]

    def __contains__(self, path: object) -> bool:
        return path in self._items()

    def __iter__(self) -> Iterator[Path]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items() == (other if isinstance(other, dict) else dict(other.items()))

    __hash__ = None  # type: ignore[assignment]  # a mapping, like dict

    def __repr__(self) -> str:
        return repr(self._items())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._items(),))


@dataclass(frozen=True)
class Document:
    """A parsed SDN document.

    ``value`` holds plain Python values. ``locations`` maps a key path (``("dl", "device")``,
    ``("features", 0)``, ``("rate_limits", 1, "endpoint")``) to where its value starts (for a value
    that is an indented block: where its key starts); ``()`` is the document itself.
    ``key_locations`` maps the path of every dict key to where the key itself starts. From
    :func:`~.parser.parse` both are :class:`Locations`, worked out on first use.
    """

    value: dict[str, Any]
    locations: Mapping[Path, Location] = field(default_factory=dict)
    key_locations: Mapping[Path, Location] = field(default_factory=dict)
    source: str = "<string>"


# --- bare scalars ------------------------------------------------------------------------------------------

_DIGITS = r"[0-9]+(?:_[0-9]+)*"
INT_RE = re.compile(r"[+-]?" + _DIGITS + r"\Z")
FLOAT_RE = re.compile(
    r"[+-]?(?:" + _DIGITS + r"(?:\.(?:" + _DIGITS + r")?)?|\." + _DIGITS + r")(?:[eE][+-]?[0-9]+)?\Z"
)
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "nil": None}
_MISSING = object()
MAX_INT_DIGITS = 4000  # below CPython's int/str conversion limit (4300), which raises ValueError


# One pass tells an integer from a float: the groups of a fraction (1), a leading-dot fraction (2) and an
# exponent (3) are all unset for an integer. The same language as INT_RE | FLOAT_RE.
_NUMBER_RE = re.compile(
    r"[+-]?(?:" + _DIGITS + r"(\.(?:" + _DIGITS + r")?)?|(\.)" + _DIGITS + r")([eE][+-]?[0-9]+)?\Z"
)


def classify(text: str) -> Any:
    """Read a bare word: bool, null, int or float when it is exactly one, otherwise the string itself.

    Raises ValueError (message only) for numbers Python cannot hold faithfully.
    """
    keyword = _KEYWORDS.get(text, _MISSING)
    if keyword is not _MISSING:
        return keyword
    if text[0] in "0123456789+-.":
        match = _NUMBER_RE.match(text)
        if match is None:
            return text
        if match.lastindex is None:  # an integer
            digits = text.replace("_", "") if "_" in text else text
            if len(digits) > MAX_INT_DIGITS:
                msg = f"integer has {len(digits)} digits, more than the {MAX_INT_DIGITS} this reader accepts"
                raise ValueError(msg)
            return int(digits)
        number = float(text.replace("_", "") if "_" in text else text)
        if math.isinf(number):
            msg = f"number {text} is too large for a 64-bit float"
            raise ValueError(msg)
        return number
    return text


# --- typed-table cells -------------------------------------------------------------------------------------

INT_RANGES = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
FLOAT_TYPES = {"f32": 3.4028234663852886e38, "f64": math.inf}
STR_TYPES = frozenset({"str", "string", "text"})
TYPE_NAMES = (*INT_RANGES, *FLOAT_TYPES, "bool", *sorted(STR_TYPES))


def is_column_type(name: str) -> bool:
    """Whether ``name`` is a column type of a typed table (``i32``, ``f64``, ``bool``, ``str``, ...)."""
    return name in INT_RANGES or name in FLOAT_TYPES or name == "bool" or name in STR_TYPES


def typed_cell(kind: str, cell: str, quoted: bool, where: Location) -> Any:
    """Convert one typed-table cell (its text, or a quoted string's content) to its column type."""

    def error(message: str, hint: str) -> SdnError:
        return SdnError(message, where.source, where.line, where.column, hint)

    if kind in STR_TYPES:
        return cell
    shown = f'"{cell}"' if quoted else repr(cell)
    if not cell and not quoted:
        raise error(f"empty cell in a {kind} column", f"write a {kind} value")
    if kind == "bool":
        if not quoted and cell in ("true", "false"):
            return cell == "true"
        raise error(f"cell {shown} is not a bool", "write true or false")
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        if quoted or not INT_RE.match(cell) or len(cell) > MAX_INT_DIGITS:
            raise error(f"cell {shown} is not an integer ({kind} column)", f"write a whole number in {low}..{high}")
        value = int(cell.replace("_", ""))
        if not low <= value <= high:
            raise error(
                f"cell {cell} is out of range for {kind} ({low}..{high})",
                "use a wider column type or a smaller value",
            )
        return value
    limit = FLOAT_TYPES[kind]
    if quoted or not (INT_RE.match(cell) or FLOAT_RE.match(cell)):
        raise error(f"cell {shown} is not a number ({kind} column)", "write a number such as 1.5 or 2e-3")
    number_value = float(cell.replace("_", ""))
    if math.isinf(number_value) or abs(number_value) > limit:
        raise error(f"cell {cell} is out of range for {kind}", "use f64 or a smaller value")
    return number_value
