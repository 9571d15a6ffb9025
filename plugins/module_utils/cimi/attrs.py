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
    """

    def __init__(self, wire, kind, *, read_only=False, required=False, write_only=False,
                 many=False, of=None, choices=None, minimum=None, doc=""):
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
        self.doc = doc
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
            if self.choices and value not in self.choices:
                raise InvalidInput("%s: '%s' is not one of %s" % (path, value, ", ".join(self.choices)),
                                   attribute=path)
            return value
        if kind == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("%s: expected an integer, got %s" % (path, _type_name(value)), attribute=path)
            if self.minimum is not None and value < self.minimum:
                raise InvalidInput("%s: must be at least %d, got %d" % (path, self.minimum, value), attribute=path)
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
            return dict(value)
        # REF: {"href": ...}, or the referenced structure by value when ``of`` allows it.
        if not isinstance(value, dict):
            raise InvalidInput("%s: expected an object with an 'href', got %s" % (path, _type_name(value)),
                               attribute=path)
        href = value.get("href")
        if href is not None and (not isinstance(href, str) or not href):
            raise InvalidInput("%s.href: expected a non-empty string" % path, attribute=path + ".href")
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
