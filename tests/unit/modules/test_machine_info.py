"""Pure logic of sirocco.cimi.machine_info: name and $filter selection over Machine JSON."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import QueryError, parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.module import error_message
from ansible_collections.sirocco.cimi.plugins.modules import machine_info as mod

DOCS = [
    {"id": "3", "name": "web-2", "state": "STOPPED", "cpu": 1, "memory": 65536, "properties": {"role": "web"}},
    {"id": "1", "name": "db-1", "state": "STARTED", "cpu": 2, "memory": 262144, "properties": {"role": "db"}},
    {"id": "2", "name": "web-1", "state": "STARTED", "cpu": 1, "memory": 65536, "properties": {"role": "web"}},
]


def names(docs):
    return [d["name"] for d in docs]


def test_select_everything_sorted_by_name():
    assert names(mod.select(DOCS)) == ["db-1", "web-1", "web-2"]


def test_select_by_name():
    assert names(mod.select(DOCS, name="web-1")) == ["web-1"]
    assert mod.select(DOCS, name="nope") == []


@pytest.mark.parametrize("text, expected", [
    ("state='STARTED'", ["db-1", "web-1"]),
    ("property['role']='web' and state!='STARTED'", ["web-2"]),
    ("cpu>=2 or name='web-2'", ["db-1", "web-2"]),
    ("memory>100000", ["db-1"]),
])
def test_select_by_filter(text, expected):
    assert names(mod.select(DOCS, match=parse_filter(text))) == expected


def test_malformed_filter_message_names_the_option():
    with pytest.raises(QueryError) as err:
        parse_filter("state=")
    message = error_message(err.value, {"$filter": "filter"})
    assert message.startswith("filter: $filter: ")
