"""Reader and writer for SDN 1.0 (Simple Data Notation), the format of ``dl.config.sdn``.

SDN comes from the Simple language project: YAML-like indentation, inline ``{}``/``[]`` values and
tables. This package holds the format and nothing else: ``errors`` (:class:`SdnError`, :class:`Location`),
``values`` (:class:`Document`, :class:`Locations`, :class:`Table`, bare scalars, typed-table cells),
``lexer`` (bytes to logical lines: decoding, comments, indentation), ``lookalikes`` (TOML, YAML, JSON and
``echo``-written text, each named in its error), ``inline`` (the recursive-descent reader of one line:
inline dicts and arrays, quoted strings, table cells, with the position of each; ``fast`` reads the
well-formed one-line cases, values only, from one ``findall`` of tokens per line and hands anything else
back to it), ``parser`` (the block parser that walks lines by indentation), ``reading`` (:func:`parse`,
:func:`loads`, :func:`load`: the quick reading first, the exact one on any error) and ``writer``
(:func:`dumps`). :func:`parse` reads values first and works locations out
when a caller first asks for them (``Document.locations``, ``Document.key_locations``). It imports the
standard library only, never the rest of gpubench, so that the configuration layer can read a file
before anything heavy (torch, NVML) is imported; within it imports run errors → values → lexer →
fast → inline → parser → reading, and writer uses values and lexer.

Decisions where the SDN summary is silent (also pinned down by ``tests/config/test_sdn.py``; where the
Simple project's spec, its parser and this reader differ is listed in ``docs/sdn.md``):

* ``key:`` with nothing after it and no indented block below reads as ``None`` (as in YAML).
* A dict entry needs blank or end of line after ``:`` (``key: value``); a line ``cuda:1`` in a block is
  therefore an array item, and ``key:value`` at dict level is an error whose hint says to add a space.
* ``#`` starts a comment anywhere outside a quoted string, even without a blank before it.
* Escapes: ``\\"`` ``\\\\`` ``\\n`` ``\\t`` (SDN 1.0) plus ``\\r`` ``\\/`` and ``\\uXXXX``, which the writer
  needs for control characters; any other escape is an error (``"C:\\temp"`` is almost always a
  mistake that would silently become a tab).
* Integers may have leading zeros (``007`` is 7) and a leading ``+``; a float literal that overflows to
  infinity, or an integer of more than 4000 digits, is an error rather than a silent ``inf``.
* Keys are what the Simple parser reads: a word character, ``.`` or ``/``, then also ``-`` (``run-config``,
  ``lib.crypto``, ``.text``, ``0``), or a quoted key (``"my key": 1``). Table field names are identifiers.
* Array blocks accept YAML-style ``- item`` lines; ``- key: value`` starts a dict whose other keys follow
  on lines aligned with its first key.
* Inline ``{...}``/``[...]`` values after ``key:``, ``key =`` or as array items may continue on lines
  indented deeper than the key (or starting with the closing bracket); a line break separates items.
* Named-table cells: an empty cell is ``None``, ``-`` is the string ``"-"``, a bare cell runs to the
  next comma and may hold blanks. Typed-table cells: an empty ``str`` cell is ``""``, an empty cell of
  any other type is an error; ``f32`` cells are range-checked but kept as Python floats (no rounding).
* A top level that starts indented is accepted; its indentation becomes the top block's.
* Tabs in the indentation of a statement are an error; comment lines are never checked.
* Nesting (blocks plus inline values) is limited to :data:`MAX_DEPTH` levels.
* The writer quotes keys that are not bare keys; it raises ``ValueError`` for nan/inf, empty or non-string
  keys and values it cannot express, and
  ``TypeError`` for objects that are not dict/list/tuple/Table/str/int/float/bool/None.
"""

from __future__ import annotations

from gpubench.config.sdn.errors import Location, SdnError
from gpubench.config.sdn.reading import load, loads, parse
from gpubench.config.sdn.values import MAX_DEPTH, Document, Locations, Table
from gpubench.config.sdn.writer import dumps

__all__ = [
    "MAX_DEPTH",
    "Document",
    "Location",
    "Locations",
    "SdnError",
    "Table",
    "dumps",
    "load",
    "loads",
    "parse",
]
