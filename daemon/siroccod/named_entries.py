"""Config lists of named mappings (``hosts``, ``upstreams``): the checks their entries share.

Each entry must be a mapping with only known keys and a ``name`` that matches the name pattern and
is neither reserved nor taken (by another list or an earlier entry). Errors name the field.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput


def named_entries(items, section, keys, name_pattern, duplicate, taken=(), reserved=None):
    """Yield (where, item) for each entry of the config list ``section``, checked one at a time (so the
    first fault in file order is the one reported, whichever field it is in).

    ``duplicate`` is the message of a taken name, a %-template over section, where and name;
    ``reserved`` maps names an entry may not take to why."""
    if not isinstance(items, list):
        raise InvalidInput("config: %s must be a list" % section, attribute=section)
    names = set(taken)
    for i, item in enumerate(items):
        where = "%s[%d]" % (section, i)
        if not isinstance(item, dict):
            raise InvalidInput("config: %s must be a mapping" % where, attribute=where)
        unknown = sorted(set(item) - set(keys))
        if unknown:
            raise InvalidInput("config: %s: unknown key(s) %s" % (where, ", ".join(unknown)), attribute=where)
        name = item.get("name")
        if not isinstance(name, str) or not name_pattern.fullmatch(name):
            raise InvalidInput("config: %s.name must be a short name of letters, digits, . _ -" % where,
                               attribute=where + ".name")
        if name in (reserved or {}):
            raise InvalidInput("config: %s.name: '%s' %s" % (where, name, reserved[name]), attribute=where + ".name")
        if name in names:
            raise InvalidInput(duplicate % {"section": section, "where": where, "name": name},
                               attribute=where + ".name")
        names.add(name)
        yield where, item
