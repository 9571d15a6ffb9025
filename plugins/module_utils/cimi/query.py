# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CIMI collection query parameters (DSP0263 2.0.0, clause 4.1.6) over plain JSON dicts.

Standard library only: the daemon uses it for every collection GET and the modules use it
to filter client-side. Clause numbers below are DSP0263's.

Decisions where the spec leaves room:

* ``$filter`` (4.1.6.1): the EBNF is followed (``and`` binds tighter than ``or``, no ``not``;
  keywords are lower case). Extensions: numbers may be negative or decimal, attribute names may
  be dotted paths into nested objects (``machineTemplate.href``). Strings take ``'...'`` or
  ``"..."``; a quote is written by doubling it or with a backslash (``\\'``, ``\\"``, ``\\\\``);
  a backslash before anything else is kept as is. dateTime literals are unquoted xs:dateTime
  (or xs:date) values; a missing zone means UTC. A comparison is true only when the attribute
  is present, not null, and of the literal's type (a string attribute is read as a dateTime
  for a dateTime literal), so a missing attribute matches neither ``=`` nor ``!=``.
  Strings and booleans accept only ``=`` and ``!=`` (4.1.6.1, "allowable operators").
  Several ``$filter`` parameters are and-ed (4.1.6.1, last paragraph).
* ``$first``/``$last`` (4.1.6.2): positions are 1-based, so values must be integers >= 1; a
  range beyond the collection, or with first > last, simply yields fewer or no entries.
  Of repeated ``$first``/``$last`` parameters the first one counts (as for ``$format``, 4.1.6.5).
* ``$select`` (4.1.6.3): ``resourceURI`` is always kept (4.1.4); ``id`` is not (the spec's
  collection example drops it). Unknown names are ignored, repeats too; ``*`` selects all.
  ``collection/attr`` path notation is accepted. On a Collection resource (``apply_collection_query``) it
  subsets the Collection's own attributes; a name that is not one of them subsets each entry.
* ``$expand`` (4.1.6.4): an empty value means ``*``; ``operations`` and ``properties`` are never
  expanded; a reference the resolver cannot resolve is left as it is. One level only.
* ``$orderby`` (4.1.6.6): missing (or null) values sort last in both directions; a column whose
  values are all dateTime (or all duration) strings sorts by time, strings compare after NFKD
  normalisation, and a column of mixed types sorts bool < number < string < anything else.

Every malformed input raises :class:`QueryError` (HTTP 400); positions are 0-based offsets.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

MAX_LENGTH = 4096  # characters per parameter value
MAX_DEPTH = 64  # nested parentheses in a $filter

FILTER, SELECT, EXPAND, ORDERBY, FIRST, LAST = "$filter", "$select", "$expand", "$orderby", "$first", "$last"
ALWAYS_SELECTED = ("resourceURI",)
# Top-level attributes of every Collection resource (5.5.12).
COLLECTION_ATTRIBUTES = frozenset({"resourceURI", "id", "updated", "parent", "count", "operations"})


class QueryError(InvalidInput, ValueError):
    """A malformed query parameter; ``str()`` reads like "$filter: unexpected token 'x' at position 4"."""

    def __init__(self, message, parameter, position=None):
        text = f"{parameter}: {message}" + ("" if position is None else f" at position {position}")
        super().__init__(text, attribute=parameter, parameter=parameter, position=position)
        self.reason = message
        self.parameter = parameter
        self.position = position


def _show(text, limit=40):
    """repr() of user text, shortened so error messages stay readable."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_length(text, parameter):
    if not isinstance(text, str):
        raise QueryError(f"expected a string, got {type(text).__name__}", parameter)
    if len(text) > MAX_LENGTH:
        raise QueryError(f"value longer than {MAX_LENGTH} characters", parameter)


# ---------------------------------------------------------------------------
# dateTime and duration values (5.5.2, 5.5.3)
# ---------------------------------------------------------------------------
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
_DURATION = re.compile(
    r"(-)?P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?",
    re.ASCII,
)
# Seconds per duration field; years and months use their Gregorian averages.
_DURATION_SECONDS = (31556952, 2629746, 86400, 3600, 60, 1)


def parse_datetime(text):
    """An xs:dateTime (or xs:date) string as an aware datetime (UTC when no zone); None if invalid."""
    m = _DATETIME.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    tz = UTC
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if minutes > 59 or hours * 60 + minutes > 14 * 60:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    hour, minute, second = int(hour or 0), int(minute or 0), int(second or 0)
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    extra = timedelta(0)
    if hour == 24 and minute == second == 0 and not (fraction or ".0").strip(".0"):
        hour, extra = 0, timedelta(days=1)  # xs:dateTime allows 24:00:00 for the end of a day
    try:
        return datetime(int(year), int(month), int(day), hour, minute, second, micro, tz) + extra
    except (ValueError, OverflowError):
        return None


def _doc_datetime(value):
    """A document value read as a dateTime, a little more leniently than filter literals."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_duration(text):
    """An xs:duration string as a number of seconds; None if invalid."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not m or text.endswith(("P", "T")):
        return None
    sign, *fields = m.groups()
    seconds = sum(float(f) * w for f, w in zip(fields, _DURATION_SECONDS, strict=True) if f)
    return -seconds if sign else seconds


# ---------------------------------------------------------------------------
# $filter: compiled form
# ---------------------------------------------------------------------------
_MISSING = object()
_OPS = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge, ">": operator.gt, "!=": operator.ne}
_FLIPPED = {"<": ">", "<=": ">=", "=": "=", ">=": "<=", ">": "<", "!=": "!="}


def _lookup(doc, name):
    """Value of a (possibly dotted) attribute, or _MISSING when absent or null."""
    if not isinstance(doc, Mapping):
        return _MISSING
    if name in doc:
        value = doc[name]
    else:
        value = doc
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
    return _MISSING if value is None else value


def _compare(actual, op, expected):
    """True when ``actual`` has the type of the literal ``expected`` and ``actual op expected`` holds."""
    if isinstance(expected, bool):
        ok = isinstance(actual, bool)
    elif isinstance(expected, int | float):
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
    elif isinstance(expected, datetime):
        actual = _doc_datetime(actual)
        ok = actual is not None
    else:
        ok = isinstance(actual, str)
    return ok and _OPS[op](actual, expected)


class Filter(ABC):
    """A compiled $filter expression: ``matches(doc)`` says whether a document passes."""

    @abstractmethod
    def matches(self, doc: Mapping) -> bool:
        """Whether ``doc`` passes this filter."""

    def __call__(self, doc: Mapping) -> bool:
        return self.matches(doc)


@dataclass(frozen=True)
class Comparison(Filter):
    """``attribute op value``; the value is an int, float, bool, str or aware datetime."""

    attribute: str
    op: str
    value: object

    def matches(self, doc):
        return _compare(_lookup(doc, self.attribute), self.op, self.value)


@dataclass(frozen=True)
class PropertyComparison(Filter):
    """``property['key'] op 'value'`` against the ``properties`` map."""

    key: str
    op: str
    value: str

    def matches(self, doc):
        props = doc.get("properties") if isinstance(doc, Mapping) else None
        return isinstance(props, Mapping) and _compare(props.get(self.key, _MISSING), self.op, self.value)


@dataclass(frozen=True)
class And(Filter):
    terms: tuple

    def matches(self, doc):
        return all(term.matches(doc) for term in self.terms)


@dataclass(frozen=True)
class Or(Filter):
    terms: tuple

    def matches(self, doc):
        return any(term.matches(doc) for term in self.terms)


MATCH_ALL = And(())


# ---------------------------------------------------------------------------
# $filter: tokenizer and recursive-descent parser
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # name, str, num, date, bool, op, one of "()[]", or end
    text: str
    pos: int
    value: object = None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_DATE_START = re.compile(r"[0-9]{4}-", re.ASCII)
_DATE_TEXT = re.compile(r"[0-9A-Za-z:.+-]+", re.ASCII)
_OP_TEXT = re.compile(r"[<>=!~]+")
_KEYWORDS = frozenset({"and", "or", "true", "false"})


def _scan_string(text, start):
    """The string literal opening at ``start``: (value, end offset)."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1 : i + 2] in ("\\", "'", '"'):
            out.append(text[i + 1])
            i += 2
        elif ch == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise QueryError("unterminated string", FILTER, start)


def _tokenize(text):
    tokens, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            tokens.append(_Token("end", "", pos))
            return tokens
        ch = text[pos]
        if ch in "()[]":
            tokens.append(_Token(ch, ch, pos))
            pos += 1
        elif ch in "'\"":
            value, end = _scan_string(text, pos)
            tokens.append(_Token("str", text[pos:end], pos, value))
            pos = end
        elif _DATE_START.match(text, pos):
            word = _DATE_TEXT.match(text, pos).group()
            value = parse_datetime(word)
            if value is None:
                raise QueryError(f"invalid dateTime {_show(word)}", FILTER, pos)
            tokens.append(_Token("date", word, pos, value))
            pos += len(word)
        elif m := _NUMBER.match(text, pos):
            word = m.group()
            tokens.append(_Token("num", word, pos, float(word) if "." in word else int(word)))
            pos += len(word)
        elif m := _NAME.match(text, pos):
            word = m.group()
            if word in ("true", "false"):
                tokens.append(_Token("bool", word, pos, word == "true"))
            else:
                tokens.append(_Token("name", word, pos))
            pos += len(word)
        elif m := _OP_TEXT.match(text, pos):
            if m.group() not in _OPS:
                raise QueryError(f"unknown operator {_show(m.group())}", FILTER, pos)
            tokens.append(_Token("op", m.group(), pos))
            pos += len(m.group())
        else:
            raise QueryError(f"unexpected character {ch!r}", FILTER, pos)


def _is_attribute(tok):
    return tok.kind == "name" and tok.text not in _KEYWORDS


def _is_value(tok):
    return tok.kind in ("str", "num", "date", "bool")


class _Parser:
    """Filter ::= AndExpr ('or' AndExpr)*; AndExpr ::= Comp ('and' Comp)*  (loops, not recursion)."""

    def __init__(self, text):
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self):
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    @staticmethod
    def fail(tok, expected, found=None):
        found = found or ("the expression ended" if tok.kind == "end" else f"found {_show(tok.text)}")
        raise QueryError(f"expected {expected} but {found}", FILTER, tok.pos)

    def disjunction(self, depth):
        terms = [self.conjunction(depth)]
        while self.peek().text == "or" and self.peek().kind == "name":
            self.take()
            terms.append(self.conjunction(depth))
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def conjunction(self, depth):
        terms = [self.comparison(depth)]
        while self.peek().text == "and" and self.peek().kind == "name":
            self.take()
            terms.append(self.comparison(depth))
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def comparison(self, depth):
        tok = self.take()
        if tok.kind == "(":
            if depth >= MAX_DEPTH:
                raise QueryError(f"parentheses nested deeper than {MAX_DEPTH} levels", FILTER, tok.pos)
            inner = self.disjunction(depth + 1)
            close = self.take()
            if close.kind == "end":
                raise QueryError("unclosed '('", FILTER, tok.pos)
            if close.kind != ")":
                self.fail(close, "')', 'and' or 'or'")
            return inner
        if tok.kind == "name" and tok.text == "property" and self.peek().kind == "[":
            return self.property()
        if _is_attribute(tok):
            op = self.operator(tok)
            value = self.take()
            if _is_attribute(value):
                self.fail(value, f"a value after {op.text!r}", f"found unquoted {_show(value.text)}")
            if not _is_value(value):
                self.fail(value, f"a value after {op.text!r}")
            return self.make(tok.text, op, value, flipped=False)
        if _is_value(tok):
            op = self.operator(tok)
            attr = self.take()
            if not _is_attribute(attr):
                self.fail(attr, f"an attribute name after {op.text!r}")
            return self.make(attr.text, op, tok, flipped=True)
        self.fail(tok, "a comparison")

    def operator(self, after):
        op = self.take()
        if op.kind != "op":
            self.fail(op, f"a comparison operator after {_show(after.text)}")
        return op

    @staticmethod
    def make(attribute, op, value, flipped):
        if value.kind in ("str", "bool") and op.text not in ("=", "!="):
            kind = "strings" if value.kind == "str" else "booleans"
            raise QueryError(f"{kind} can only be compared with '=' or '!=', not {op.text!r}", FILTER, op.pos)
        return Comparison(attribute, _FLIPPED[op.text] if flipped else op.text, value.value)

    def property(self):
        self.take()  # '['
        key = self.take()
        if key.kind != "str":
            self.fail(key, "a quoted property key after 'property['")
        close = self.take()
        if close.kind != "]":
            self.fail(close, "']'")
        op = self.operator(close)
        value = self.take()
        if value.kind != "str":
            self.fail(value, f"a quoted string after {op.text!r}")
        self.make("property", op, value, flipped=False)  # operator check only
        return PropertyComparison(key.value, op.text, value.value)


def parse_filter(text: str) -> Filter:
    """Compile one $filter expression."""
    _check_length(text, FILTER)
    if not text.strip():
        raise QueryError("empty expression", FILTER)
    parser = _Parser(text)
    tree = parser.disjunction(0)
    tok = parser.peek()
    if tok.kind == ")":
        raise QueryError("unbalanced ')'", FILTER, tok.pos)
    if tok.kind != "end":
        parser.fail(tok, "'and', 'or' or the end")
    return tree


def combine_filters(texts: Iterable[str] | str) -> Filter:
    """Several $filter parameters: a document must satisfy all of them (4.1.6.1)."""
    filters = [parse_filter(t) for t in ([texts] if isinstance(texts, str) else texts)]
    return filters[0] if len(filters) == 1 else And(tuple(filters))


# ---------------------------------------------------------------------------
# $select and $expand
# ---------------------------------------------------------------------------
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)?", re.ASCII)


def _split_names(text, parameter, pattern):
    """Comma-separated names -> list without repeats; (item text, offset) checked by ``pattern``."""
    _check_length(text, parameter)
    names, pos = [], 0
    for item in text.split(","):
        name = item.strip()
        at = pos + len(item) - len(item.lstrip())
        pos += len(item) + 1
        if not name:
            raise QueryError("empty attribute name", parameter, at)
        if pattern is not None and name != "*" and not pattern.fullmatch(name):
            raise QueryError(f"invalid attribute name {_show(name)}", parameter, at)
        if name not in names:
            names.append(name)
    return names


def _item_name(name):
    """``machines/cpu`` (path notation, 4.1.6.3) names the item attribute ``cpu``."""
    return name.rpartition("/")[2]


def parse_select(text: str) -> list[str]:
    """``name,state`` -> ["name", "state"]; ["*"] when ``*`` is listed."""
    _check_length(text, SELECT)
    if not text.strip():
        raise QueryError("empty attribute list", SELECT)
    names = _split_names(text, SELECT, _ATTRIBUTE)
    return ["*"] if "*" in names else names


def select(doc: Mapping, attrs: Iterable[str]) -> dict:
    """The named top-level attributes of ``doc`` plus ``resourceURI``, in the document's order."""
    names = {_item_name(a) for a in (parse_select(attrs) if isinstance(attrs, str) else attrs)}
    if "*" in names:
        return dict(doc)
    return {k: v for k, v in doc.items() if k in names or k in ALWAYS_SELECTED}


def select_collection(collection: Mapping, items_key: str, attrs: Iterable[str]) -> dict:
    """$select on a Collection resource (4.1.6.3): names of the collection's own attributes subset
    the collection; any other name (or ``<items_key>/name``) subsets each item, keeping the items."""
    attrs = list(attrs)
    if "*" in attrs:
        return dict(collection)
    outer, inner = _split_collection_select(attrs, set(collection) | COLLECTION_ATTRIBUTES | {items_key}, items_key)
    out = {}
    for key, value in collection.items():
        if key == items_key and inner and isinstance(value, list):
            out[key] = [select(item, inner) if isinstance(item, Mapping) else item for item in value]
        elif key in outer or key in ALWAYS_SELECTED:
            out[key] = value
    return out


def _split_collection_select(attrs, own, items_key):
    """(names of the Collection's ``own`` attributes, names of its items' attributes) in a $select (4.1.6.3)."""
    outer, inner = set(), set()
    for name in attrs:
        head, slash, tail = name.partition("/")
        if slash:
            if head == items_key:
                inner.add(tail)
        elif name in own:
            outer.add(name)
        else:
            inner.add(name)
    return outer, inner


def parse_expand(text: str) -> list[str] | str:
    """``volumes,disks`` -> ["volumes", "disks"]; ``*`` or an empty value -> "*" (4.1.6.4)."""
    _check_length(text, EXPAND)
    if not text.strip():
        return "*"
    names = _split_names(text, EXPAND, _ATTRIBUTE)
    return "*" if "*" in names else names


_NEVER_EXPANDED = frozenset({"operations", "properties"})  # {"rel", "href"} links; a user-set "href" key


def _is_ref(value):
    return isinstance(value, Mapping) and isinstance(value.get("href"), str)


def _expand_ref(ref, resolve):
    target = resolve(ref["href"])
    if not isinstance(target, Mapping):
        return ref
    return {**ref, **target, **ref}  # href (and any accessory attribute) first and winning


def expand(doc: Mapping, attrs: list[str] | str, resolve: Callable[[str], dict | None]) -> dict:
    """Replace ``{"href": ...}`` values (or lists of them) of the named attributes by the resolved
    documents merged with the reference. ``resolve(href)`` returns a dict, or None to leave it be."""
    if isinstance(attrs, str):
        attrs = parse_expand(attrs)
    names = None if "*" in attrs else {_item_name(a) for a in attrs}
    out = dict(doc)
    # only the named attributes looked at (a listing's $expand runs once per entry)
    for key in doc if names is None else [n for n in names if n in doc]:
        value = doc[key]
        if key in _NEVER_EXPANDED:
            continue
        if _is_ref(value):
            out[key] = _expand_ref(value, resolve)
        elif isinstance(value, list) and any(_is_ref(v) for v in value):
            out[key] = [_expand_ref(v, resolve) if _is_ref(v) else v for v in value]
    return out


# ---------------------------------------------------------------------------
# $orderby
# ---------------------------------------------------------------------------
def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """``cpu:desc,memory`` -> [("cpu", True), ("memory", False)]  (True means descending)."""
    _check_length(text, ORDERBY)
    if not text.strip():
        raise QueryError("empty attribute list", ORDERBY)
    keys, pos = [], 0
    for item in text.split(","):
        at = pos + len(item) - len(item.lstrip())
        pos += len(item) + 1
        name, colon, direction = item.strip().partition(":")
        name, direction = name.strip(), direction.strip()
        if not name:
            raise QueryError("empty attribute name", ORDERBY, at)
        if not _NAME.fullmatch(name):
            raise QueryError(f"invalid attribute name {_show(name)}", ORDERBY, at)
        if colon and direction.lower() not in ("asc", "desc"):
            raise QueryError(f"unknown direction {_show(direction)}", ORDERBY, at + item.strip().index(":") + 1)
        keys.append((name, direction.lower() == "desc"))
    return keys


def _mixed_key(value):
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, int | float):
        return (1, value, "")
    if isinstance(value, str):
        return (2, 0, unicodedata.normalize("NFKD", value))
    return (3, 0, "")


def _sort_key(values):
    """How to compare one column: by time when every value is a dateTime (or duration) string."""
    if values and all(isinstance(v, str) for v in values):
        if all(parse_datetime(v) is not None for v in values):
            return parse_datetime
        if all(parse_duration(v) is not None for v in values):
            return parse_duration
    return _mixed_key


def order(docs: Iterable[Mapping], keys: Iterable[tuple[str, bool] | str]) -> list:
    """Stable multi-key sort (4.1.6.6); documents lacking a key come last in either direction."""
    result = list(docs)
    for key in reversed(parse_orderby(keys) if isinstance(keys, str) else list(keys)):
        name, descending = (key, False) if isinstance(key, str) else key
        present, missing = [], []
        for doc in result:
            value = _lookup(doc, name)
            (missing if value is _MISSING else present).append((value, doc))
        keyer = _sort_key([value for value, _doc in present])
        present.sort(key=lambda pair, keyer=keyer: keyer(pair[0]), reverse=descending)
        result = [doc for _value, doc in present + missing]
    return result


# ---------------------------------------------------------------------------
# $first / $last
# ---------------------------------------------------------------------------
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def parse_position(text: str, parameter: str = FIRST) -> int:
    """A $first/$last value: a decimal integer >= 1."""
    _check_length(text, parameter)
    digits = text.strip()
    if not _DIGITS.fullmatch(digits) or not digits.strip("0"):
        raise QueryError(f"expected a positive integer, got {_show(text)}", parameter)
    return int(digits) if len(digits) <= 18 else 10**18  # past any real collection


def page(docs, first: int | None = None, last: int | None = None) -> list:
    """Entries ``first`` to ``last`` (1-based, inclusive; 4.1.6.2); out-of-range parts are just empty."""
    for value, parameter in ((first, FIRST), (last, LAST)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise QueryError(f"expected a positive integer, got {value!r}", parameter)
    docs = list(docs)
    return docs[(first or 1) - 1 : len(docs) if last is None else last]


# ---------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------
def _values(params, name):
    """All values of one query parameter, from a dict of str/list or a MultiDict-like object."""
    if hasattr(params, "getlist"):
        raw = params.getlist(name)
    else:
        raw = params.get(name)
        raw = [] if raw is None else list(raw) if isinstance(raw, list | tuple) else [raw]
    values = []
    for value in raw:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise QueryError(f"expected a string, got {type(value).__name__}", name)
        values.append(value)
    return values


def apply_query(docs: Iterable[Mapping], params: Mapping, resolve: Callable[[str], dict | None] | None = None):
    """Apply $filter, $orderby, $first/$last, $select and $expand to a collection's entries.

    Returns (entries, count) where count is the number of entries after filtering (4.1.6.1,
    4.1.6.2). Every parameter is validated before any work; unknown parameters are ignored
    (4.1.6), ``$format`` included (the caller's business). $expand needs ``resolve`` and is
    skipped (after validation) without it; each href is resolved once per call. Order:
    filter, count, sort, page, select, expand (only what survived). Entries are returned as
    is unless $select or $expand changed them. ``params`` maps a name to a string or a list of
    strings, or is MultiDict-like (``getlist``).
    """
    filters = _values(params, FILTER)
    match = combine_filters(filters) if filters else None
    keys = [key for text in _values(params, ORDERBY) for key in parse_orderby(text)]
    firsts, lasts = _values(params, FIRST), _values(params, LAST)
    first = parse_position(firsts[0], FIRST) if firsts else None
    last = parse_position(lasts[0], LAST) if lasts else None
    selected = []
    for text in _values(params, SELECT):
        selected += [name for name in parse_select(text) if name not in selected]
    expanded = []
    for text in _values(params, EXPAND):
        names = parse_expand(text)
        if names == "*" or expanded == "*":
            expanded = "*"
        else:
            expanded += [name for name in names if name not in expanded]

    result = [doc for doc in docs if match is None or match.matches(doc)]
    count = len(result)
    if keys:
        result = order(result, keys)
    result = page(result, first, last)
    if selected and "*" not in selected:
        result = [select(doc, selected) for doc in result]
    if expanded and resolve is not None:
        cache = {}

        def cached(href):
            if href not in cache:
                cache[href] = resolve(href)
            return cache[href]

        result = [expand(doc, expanded, cached) for doc in result]
    return result, count


def apply_collection_query(docs: Iterable[Mapping], params: Mapping, items_key: str,
                           build: Callable[[list, int], dict],
                           resolve: Callable[[str], dict | None] | None = None) -> dict:
    """A Collection resource's document under the query parameters (4.1.6): $filter, $orderby, $first/$last
    and $expand act on its entries (``apply_query``), $select on the Collection itself (4.1.6.3, as
    ``select_collection``): a name of one of its own attributes (count, operations, id, ``items_key`` for
    whole entries) keeps that attribute, any other name (or ``<items_key>/name``) subsets each entry and
    keeps the entries. So ``count,operations`` leaves neither entries nor id; ``name`` leaves the entries with
    their name (and resourceURI) only; ``*`` everything. ``build(entries, count)`` makes the document."""
    selected = []
    for text in _values(params, SELECT):
        selected += [name for name in parse_select(text) if name not in selected]
    if not selected or "*" in selected:
        items, count = apply_query(docs, params, resolve)
        return build(items, count)
    outer, inner = _split_collection_select(selected, COLLECTION_ATTRIBUTES | {items_key}, items_key)
    entries = bool(inner) or items_key in outer
    rest = {name: _values(params, name) for name in (FILTER, ORDERBY, FIRST, LAST, EXPAND)}
    rest[SELECT] = sorted(inner)  # the entries' own subsetting, done before $expand as in apply_query
    # entries left out need no expanding (the parameter is still validated)
    items, count = apply_query(docs, rest, resolve if entries else None)
    doc = build(items, count)
    return {k: v for k, v in doc.items() if k in outer or k in ALWAYS_SELECTED or (k == items_key and entries)}
