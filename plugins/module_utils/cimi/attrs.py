# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute descriptors: a CIMI attribute is declared once, with its wire name,
type and flags, and parsing, validation and serialisation follow from that."""

from __future__ import annotations

from datetime import datetime

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

CIMI_NS = "http://schemas.dmtf.org/cimi/2/"

# Scalar kinds and what Python type each takes on the wire.
STRING, INTEGER, BOOLEAN, DATETIME, MAP, REF, ANY = "string", "integer", "boolean", "dateTime", "map", "ref", "any"
_SCALAR_KINDS = (STRING, INTEGER, BOOLEAN, DATETIME, MAP, REF, ANY)

# Bounds of what a client may send, unless an attribute declares its own: every integer fits a JSON
# number exactly and every text a database column; a map (properties) holds so many entries.
MAX_INTEGER = 2 ** 53 - 1
MAX_TEXT = 4096
MAX_KEY = 255
MAX_ENTRIES = 128


def type_uri(type_name):
    return CIMI_NS + type_name


def action_uri(verb):
    return CIMI_NS + "action/" + verb


def parse_datetime(text, path="dateTime"):
    """ISO 8601 text to an aware datetime; a clear error otherwise."""
    if not isinstance(text, str):
        raise InvalidInput("%s: expected a dateTime string" % path, attribute=path)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput("%s: '%s' is not an ISO 8601 dateTime" % (path, text), attribute=path) from None
    return value


def check_text(value, path, max_length=MAX_TEXT):
    """A client's text: storable everywhere (no NUL, no lone surrogate: valid UTF-8) and at most
    ``max_length`` characters; else InvalidInput naming ``path``."""
    if "\x00" in value:
        raise InvalidInput("%s: NUL characters are not allowed" % path, attribute=path)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("%s: not valid Unicode text (a lone surrogate)" % path, attribute=path) from None
    if max_length is not None and len(value) > max_length:
        raise InvalidInput("%s: at most %d characters, got %d" % (path, max_length, len(value)), attribute=path)
    return value


def _type_name(value):
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__)


class Attr:
    """One attribute of a CIMI resource or structure.

    ``kind`` is a scalar kind above or a Structure subclass (embedded by value).
    ``of`` names the structure a ``ref`` may also carry by value (e.g. a
    machineConfig given by href or by its attributes). ``many`` makes a list.
    ``minimum``/``maximum`` bound an integer (``maximum`` defaults to MAX_INTEGER),
    ``max_length`` a string (default MAX_TEXT); a client's values are checked
    against them, a provider's (``trusted``) are taken as they are.
    ``extension`` marks an attribute DSP0263 does not define (Sirocco's own): ResourceMetadata then
    names its namespace and type (Table 6). ``collection`` = (item type, entry key) makes the attribute a
    CIMI collection (5.5.12): on the wire a reference ``{"href"}`` to a collection document whose entries
    sit under the entry key; in this model (a connector's result, a module's return) its items inline.
    """

    def __init__(self, wire, kind, *, read_only=False, required=False, write_only=False,
                 many=False, of=None, choices=None, minimum=None, maximum=None, max_length=None, doc="",
                 extension=False, collection=None):
        if isinstance(kind, str) and kind not in _SCALAR_KINDS:
            raise ValueError("unknown attribute kind %r" % kind)
        self.wire = wire
        self.kind = kind
        self.read_only = read_only
        self.required = required
        self.write_only = write_only
        self.many = many
        self.of = of
        self.choices = tuple(choices) if choices else None
        self.minimum = minimum
        self.maximum = maximum if maximum is not None or kind != INTEGER else MAX_INTEGER
        self.max_length = max_length if max_length is not None or kind != STRING else MAX_TEXT
        self.doc = doc
        self.extension = extension
        self.collection = collection
        self.name = wire

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj._values.get(self.wire)

    def __set__(self, obj, value):
        obj._values[self.wire] = value

    @property
    def type_label(self):
        """Human and ResourceMetadata name of the type, e.g. 'integer' or 'Disk[]'."""
        label = self.kind if isinstance(self.kind, str) else self.kind.type_name
        return label + "[]" if self.many else label

    # -- input -----------------------------------------------------------
    def parse(self, value, path, trusted=False):
        if self.collection and trusted and isinstance(value, dict):
            # a provider's collection reference: its items when expanded ($expand), else nothing known here
            # (the cimi connector follows the href before it parses)
            value = value.get(self.collection[1])
            if not isinstance(value, list):
                return None
            if self.kind == REF:
                value = [{"href": item.get("href") or item.get("id")} for item in value if isinstance(item, dict)]
        if self.many:
            if not isinstance(value, list):
                raise InvalidInput("%s: expected a list, got %s" % (path, _type_name(value)), attribute=path)
            return [self._parse_one(item, "%s[%d]" % (path, i), trusted) for i, item in enumerate(value)]
        return self._parse_one(value, path, trusted)

    def _parse_one(self, value, path, trusted=False):
        kind = self.kind
        if not isinstance(kind, str):
            return kind.from_json(value, path=path, trusted=trusted)
        if kind == ANY:
            return value
        if kind == STRING:
            if not isinstance(value, str):
                raise InvalidInput("%s: expected a string, got %s" % (path, _type_name(value)), attribute=path)
            if not trusted:
                check_text(value, path, self.max_length)
            if self.choices and value not in self.choices:
                raise InvalidInput("%s: '%s' is not one of %s" % (path, value, ", ".join(self.choices)),
                                   attribute=path)
            return value
        if kind == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("%s: expected an integer, got %s" % (path, _type_name(value)), attribute=path)
            if self.minimum is not None and value < self.minimum:
                raise InvalidInput("%s: must be at least %d, got %d" % (path, self.minimum, value), attribute=path)
            if self.maximum is not None and value > self.maximum and not trusted:
                raise InvalidInput("%s: must be at most %d, got %d" % (path, self.maximum, value), attribute=path)
            return value
        if kind == BOOLEAN:
            if not isinstance(value, bool):
                raise InvalidInput("%s: expected true or false, got %s" % (path, _type_name(value)), attribute=path)
            return value
        if kind == DATETIME:
            parse_datetime(value, path)
            return value
        if kind == MAP:
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise InvalidInput("%s: expected an object of string values" % path, attribute=path)
            if not trusted:
                if len(value) > MAX_ENTRIES:
                    raise InvalidInput("%s: at most %d entries, got %d" % (path, MAX_ENTRIES, len(value)),
                                       attribute=path)
                for key, item in value.items():
                    check_text(key, "%s key" % path, MAX_KEY)
                    check_text(item, "%s.%s" % (path, key), self.max_length or MAX_TEXT)
            return dict(value)
        # REF: {"href": ...}, or the referenced structure by value when ``of`` allows it.
        if not isinstance(value, dict):
            raise InvalidInput("%s: expected an object with an 'href', got %s" % (path, _type_name(value)),
                               attribute=path)
        href = value.get("href")
        if href is not None and (not isinstance(href, str) or not href):
            raise InvalidInput("%s.href: expected a non-empty string" % path, attribute=path + ".href")
        if href is not None and not trusted:
            check_text(href, path + ".href")
        if self.of is None:
            if href is None:
                raise InvalidInput("%s: expected an object with an 'href'" % path, attribute=path)
            return {"href": href}
        # By value (attributes) or by reference (href) with attribute overrides.
        body = {k: v for k, v in value.items() if k != "href"}
        parsed = {}
        if body or href is None:  # by value, even empty: its required attributes are checked
            partial = href is not None or trusted
            parsed = self.of.from_json(body, path=path, partial=partial, trusted=trusted).to_json()
            parsed.pop("resourceURI", None)
        if href is not None:
            parsed["href"] = href
        return parsed

    # -- output ----------------------------------------------------------
    def dump(self, value):
        if self.many:
            return [self._dump_one(v) for v in value]
        return self._dump_one(value)

    def _dump_one(self, value):
        if not isinstance(self.kind, str) and hasattr(value, "to_json"):
            return value.to_json()
        if isinstance(value, dict):
            return dict(value)
        return value
