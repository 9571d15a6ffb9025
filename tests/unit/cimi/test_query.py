"""The CIMI query language (DSP0263 4.1.6): $filter, $select, $expand, $orderby, $first/$last."""

import operator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import (
    MATCH_ALL,
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Comparison,
    Or,
    PropertyComparison,
    QueryError,
    apply_collection_query,
    apply_query,
    combine_filters,
    expand,
    order,
    page,
    parse_datetime,
    parse_duration,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_position,
    parse_select,
    select,
    select_collection,
)

NS = "http://schemas.dmtf.org/cimi/2/"


def machine(n, **extra):
    doc = {
        "resourceURI": NS + "Machine",
        "id": f"/machines/{n}",
        "name": f"vm{n}",
        "state": "STARTED",
        "cpu": 2,
        "memory": 262144,
        "created": "2026-11-23T10:00:00Z",
        "properties": {"env": "prod"},
    }
    doc.update(extra)
    return {k: v for k, v in doc.items() if v is not None}


VM = machine(1)


def matches(text, doc=VM):
    return parse_filter(text).matches(doc)


def error(func, *args):
    with pytest.raises(QueryError) as info:
        func(*args)
    return str(info.value)


# ---------------------------------------------------------------------------
# $filter: values and operators
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("cpu=2", True),
        ("cpu!=2", False),
        ("cpu<3", True),
        ("cpu<2", False),
        ("cpu<=2", True),
        ("cpu>=2", True),
        ("cpu>2", False),
        ("cpu>1", True),
        ("memory=262144", True),
        ("cpu=2.0", True),
        ("cpu<2.5", True),
        ("cpu>-1", True),
        ("3>cpu", True),  # Value Op Attribute: the operator is mirrored
        ("2<=cpu", True),
        ("1>=cpu", False),
        ("2=cpu", True),
    ],
)
def test_integer_comparisons(text, expected):
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name='vm1'", True),
        ('name="vm1"', True),
        ("name!='vm1'", False),
        ("name!='vm2'", True),
        ("'vm1'=name", True),
        ("name='VM1'", False),  # case sensitive
        ("state = 'STARTED'", True),
    ],
)
def test_string_comparisons(text, expected):
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("enabled=true", True),
        ("enabled!=true", False),
        ("enabled=false", False),
        ("enabled!=false", True),
        ("true=enabled", True),
        ("cpu=true", False),  # 2 is not a boolean
    ],
)
def test_boolean_comparisons(text, expected):
    assert matches(text, machine(1, enabled=True)) is expected


def test_booleans_are_not_numbers():
    doc = machine(1, cpu=True)
    assert not matches("cpu=1", doc)
    assert not matches("cpu>0", doc)
    assert matches("cpu=true", doc)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("created=2026-11-23T10:00:00Z", True),
        ("created=2026-11-23T11:00:00+01:00", True),  # same instant, other zone
        ("created>2026-11-23T09:59:59Z", True),
        ("created>2026-11-23T10:00:00-01:00", False),
        ("created<2026-11-23T10:00:00.5Z", True),
        ("created<=2026-11-23T10:00:00Z", True),
        ("created>=2026-11-24", False),  # xs:date: midnight UTC
        ("created>2026-11-23", True),
        ("created!=2026-11-23T10:00:00Z", False),
        ("created<2026-11-24T00:00:00", True),  # no zone: UTC
        ("created<2026-11-22T24:00:00Z", False),  # 24:00 ends the day
        ("2027-01-01T00:00:00Z>created", True),
        ("name>2000-01-01", False),  # 'vm1' is not a dateTime: no match, no crash
        ("cpu>2000-01-01", False),
    ],
)
def test_datetime_comparisons(text, expected):
    assert matches(text) is expected


def test_datetime_attribute_may_be_written_leniently():
    assert matches("created=2026-11-23T10:00:00Z", machine(1, created="2026-11-23 10:00:00+00:00"))
    assert matches("created=2026-11-23T10:00:00Z", machine(1, created=datetime(2026, 11, 23, 10)))


def test_string_equality_on_a_date_attribute_is_textual():
    assert matches("created='2026-11-23T10:00:00Z'")
    assert not matches("created='2026-11-23T11:00:00+01:00'")


@pytest.mark.parametrize(
    "text",
    ["name='vm1'", "name!='vm1'", "cpu=2", "cpu!=2", "cpu<5", "flag=true", "flag!=true", "created>2000-01-01"],
)
def test_missing_or_null_attribute_never_matches(text):
    doc = {"id": "x"}
    assert not matches(text, doc)
    assert not matches(text, dict.fromkeys(["name", "cpu", "flag", "created"]))


def test_mismatched_types_never_match_and_never_crash():
    doc = machine(1, cpu="2", memory=[1], name=3, properties="nope")
    for text in ["cpu=2", "cpu!=2", "cpu>1", "memory=1", "name='3'", "name!='3'", "property['env']='prod'"]:
        assert not matches(text, doc)
    assert not matches("cpu=1", "not a document")


def test_escaped_quotes_in_strings():
    assert matches("name='it''s'", machine(1, name="it's"))
    assert matches('name="say ""hi"""', machine(1, name='say "hi"'))
    assert matches("name='it\\'s'", machine(1, name="it's"))
    assert matches('name="a\\"b"', machine(1, name='a"b'))
    assert matches("name='back\\\\slash'", machine(1, name="back\\slash"))
    assert matches("name='C:\\temp'", machine(1, name="C:\\temp"))  # other backslashes stay
    assert matches("name='say \"hi\"'", machine(1, name='say "hi"'))  # the other quote needs no escape
    assert matches("name=''", machine(1, name=""))
    assert parse_filter("name='a''b' and x=1") == And((Comparison("name", "=", "a'b"), Comparison("x", "=", 1)))


def test_strings_keep_keywords_and_operators_literally():
    assert matches("name='a and b or (c<=d)'", machine(1, name="a and b or (c<=d)"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("property['env']='prod'", True),
        ('property["env"]="prod"', True),
        ("property['env']=\"prod\"", True),
        ("property['env']!='prod'", False),
        ("property['env']!='dev'", True),
        ("property['env']='dev'", False),
        ("property['missing']!='x'", False),
        ("property[ 'env' ] = 'prod'", True),
        ("property['it''s']='yes'", False),
    ],
)
def test_property_expressions(text, expected):
    assert matches(text) is expected


def test_property_keys_with_odd_characters():
    doc = machine(1, properties={"it's": "a b", "k.x/y": "v"})
    assert matches("property['it''s']='a b'", doc)
    assert matches("property[\"k.x/y\"]='v'", doc)
    assert not matches("property['env']='prod'", {"id": "x"})


def test_property_is_an_ordinary_attribute_without_brackets():
    assert matches("property='p'", machine(1, property="p"))


def test_dotted_attribute_paths():
    doc = machine(1, machineTemplate={"href": "/t/1"})
    assert matches("machineTemplate.href='/t/1'", doc)
    assert matches("properties.env='prod'", doc)
    assert not matches("machineTemplate.nope='x'", doc)
    assert not matches("name.inner='x'", doc)
    assert matches("a.b=1", {"a.b": 1})


# ---------------------------------------------------------------------------
# $filter: and / or / parentheses
# ---------------------------------------------------------------------------
A, B, C = (Comparison(n, "=", 1) for n in "abc")


@pytest.mark.parametrize(
    "text, tree",
    [
        ("a=1 or b=1 and c=1", Or((A, And((B, C))))),
        ("a=1 and b=1 or c=1", Or((And((A, B)), C))),
        ("(a=1 or b=1) and c=1", And((Or((A, B)), C))),
        ("a=1 and (b=1 or c=1)", And((A, Or((B, C))))),
        ("a=1 and b=1 and c=1", And((A, B, C))),
        ("a=1 or b=1 or c=1", Or((A, B, C))),
        ("((a=1))", A),
        ("(((a=1) or ((b=1))) and (c=1))", And((Or((A, B)), C))),
        ("a=1and b=1", And((A, B))),
        ("(a=1)or(b=1)", Or((A, B))),
    ],
)
def test_precedence_and_parentheses(text, tree):
    assert parse_filter(text) == tree


def test_and_binds_tighter_than_or_when_evaluated():
    doc = {"a": 1, "b": 0, "c": 0}
    assert matches("a=1 or b=1 and c=1", doc)
    assert not matches("(a=1 or b=1) and c=1", doc)


def test_keywords_are_lower_case():
    assert "found 'AND'" in error(parse_filter, "a=1 AND b=1")


def test_long_chains_do_not_recurse():
    text = " or ".join(["a=1"] * 580)
    assert len(text) <= MAX_LENGTH
    assert matches(text, {"a": 1})
    assert len(parse_filter(text).terms) == 580


def test_nesting_up_to_the_limit_is_fine():
    text = "(" * MAX_DEPTH + "a=1" + ")" * MAX_DEPTH
    assert parse_filter(text) == A


def test_multiple_filters_are_and_ed():
    combined = combine_filters(["cpu=2", "name='vm1' or name='vm2'"])
    assert combined == And(
        (Comparison("cpu", "=", 2), Or((Comparison("name", "=", "vm1"), Comparison("name", "=", "vm2"))))
    )
    assert combined.matches(VM)
    assert not combine_filters(["cpu=2", "name='vm3'"]).matches(VM)
    assert combine_filters("cpu=2") == Comparison("cpu", "=", 2)
    assert combine_filters([]) is not None and combine_filters([]).matches(VM)
    assert MATCH_ALL.matches({})
    assert parse_filter("cpu=2")(VM)


def test_filter_nodes():
    assert parse_filter("property['k']!='v'") == PropertyComparison("k", "!=", "v")
    assert parse_filter("created>2026-01-01T00:00:00+02:00") == Comparison(
        "created", ">", datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    )


# ---------------------------------------------------------------------------
# $filter: malformed input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("(a=1", "$filter: unclosed '(' at position 0"),
        ("((a=1)", "$filter: unclosed '(' at position 0"),
        ("a=1)", "$filter: unbalanced ')' at position 3"),
        ("()", "$filter: expected a comparison but found ')' at position 1"),
        ("(a=1 b=1)", "$filter: expected ')', 'and' or 'or' but found 'b' at position 5"),
        ("a=1 and", "$filter: expected a comparison but the expression ended at position 7"),
        ("a=1 or or b=1", "$filter: expected a comparison but found 'or' at position 7"),
        ("and a=1", "$filter: expected a comparison but found 'and' at position 0"),
        ("a=", "$filter: expected a value after '=' but the expression ended at position 2"),
        ("a", "$filter: expected a comparison operator after 'a' but the expression ended at position 1"),
        ("a 1", "$filter: expected a comparison operator after 'a' but found '1' at position 2"),
        ("=1", "$filter: expected a comparison but found '=' at position 0"),
        ("a=1 b=2", "$filter: expected 'and', 'or' or the end but found 'b' at position 4"),
        ("name='vm1", "$filter: unterminated string at position 5"),
        ("name=\"vm1'", "$filter: unterminated string at position 5"),
        ("name='it''", "$filter: unterminated string at position 5"),
        ("name='x\\'", "$filter: unterminated string at position 5"),
        ("a==1", "$filter: unknown operator '==' at position 1"),
        ("a<>1", "$filter: unknown operator '<>' at position 1"),
        ("a~'x'", "$filter: unknown operator '~' at position 1"),
        ("a=!1", "$filter: unknown operator '=!' at position 1"),
        ("a eq 1", "$filter: expected a comparison operator after 'a' but found 'eq' at position 2"),
        ("name<'vm1'", "$filter: strings can only be compared with '=' or '!=', not '<' at position 4"),
        ("name>='vm1'", "$filter: strings can only be compared with '=' or '!=', not '>=' at position 4"),
        ("'vm1'>name", "$filter: strings can only be compared with '=' or '!=', not '>' at position 5"),
        ("flag<true", "$filter: booleans can only be compared with '=' or '!=', not '<' at position 4"),
        ("property['env']<'x'", "$filter: strings can only be compared with '=' or '!=', not '<' at position 15"),
        ("name=vm1", "$filter: expected a value after '=' but found unquoted 'vm1' at position 5"),
        ("a=b", "$filter: expected a value after '=' but found unquoted 'b' at position 2"),
        ("1=2", "$filter: expected an attribute name after '=' but found '2' at position 2"),
        ("created>2026-13-01T00:00:00Z", "$filter: invalid dateTime '2026-13-01T00:00:00Z' at position 8"),
        ("created>2026-01-01T25:00:00Z", "$filter: invalid dateTime '2026-01-01T25:00:00Z' at position 8"),
        ("created>2026-01-01T10:00Z", "$filter: invalid dateTime '2026-01-01T10:00Z' at position 8"),
        ("created>2026-02-30", "$filter: invalid dateTime '2026-02-30' at position 8"),
        ("created>2026-01-01T10:00:00+15:00", "$filter: invalid dateTime '2026-01-01T10:00:00+15:00' at position 8"),
        ("created>2026-1-1", "$filter: invalid dateTime '2026-1-1' at position 8"),
        ("a=1 @ b=2", "$filter: unexpected character '@' at position 4"),
        ("a=1.", "$filter: unexpected character '.' at position 3"),
        ("a=$x", "$filter: unexpected character '$' at position 2"),
        (
            "property[env]='x'",
            "$filter: expected a quoted property key after 'property[' but found 'env' at position 9",
        ),
        ("property['env'='x'", "$filter: expected ']' but found '=' at position 14"),
        ("property['env']=1", "$filter: expected a quoted string after '=' but found '1' at position 16"),
        (
            "property['env']",
            "$filter: expected a comparison operator after ']' but the expression ended at position 15",
        ),
        ("", "$filter: empty expression"),
        ("   ", "$filter: empty expression"),
        ("not a=1", "$filter: expected a comparison operator after 'not' but found 'a' at position 4"),
    ],
)
def test_malformed_filters(text, message):
    assert error(parse_filter, text) == message


def test_too_deep_nesting():
    text = "(" * (MAX_DEPTH + 1) + "a=1" + ")" * (MAX_DEPTH + 1)
    assert error(parse_filter, text) == f"$filter: parentheses nested deeper than 64 levels at position {MAX_DEPTH}"
    # far deeper than Python's recursion limit, still a QueryError
    assert "nested deeper" in error(parse_filter, "(" * 4000)


def test_too_long():
    assert error(parse_filter, "a=1 or " * 600 + "a=1") == "$filter: value longer than 4096 characters"


def test_not_a_string():
    assert error(parse_filter, 42) == "$filter: expected a string, got int"


def test_long_tokens_are_shortened_in_messages():
    message = error(parse_filter, "a=1 " + "b" * 200)
    assert "'" + "b" * 40 + "...'" in message


def test_query_error_is_an_invalid_input_and_a_value_error():
    with pytest.raises(QueryError) as info:
        parse_filter("a=1 b")
    err = info.value
    assert isinstance(err, InvalidInput) and isinstance(err, ValueError)
    assert err.http_status == 400
    assert (err.parameter, err.position, err.attribute) == ("$filter", 4, "$filter")
    assert err.reason == "expected 'and', 'or' or the end but found 'b'"
    assert err.message == str(err) == "$filter: expected 'and', 'or' or the end but found 'b' at position 4"


# ---------------------------------------------------------------------------
# dateTime and duration helpers
# ---------------------------------------------------------------------------
def test_parse_datetime():
    assert parse_datetime("2012-05-25T13:30:15-05:00") == datetime(2012, 5, 25, 18, 30, 15, tzinfo=UTC)
    assert parse_datetime("2012-05-25T13:30:15.1234567Z") == datetime(2012, 5, 25, 13, 30, 15, 123456, tzinfo=UTC)
    assert parse_datetime("2012-05-25") == datetime(2012, 5, 25, tzinfo=UTC)
    assert parse_datetime("2012-05-25T24:00:00Z") == datetime(2012, 5, 26, tzinfo=UTC)
    for bad in ["2012-05-25T24:00:01Z", "2012-5-25", "2012-05-25T13:30", "x", "", None, 5, "2012-05-25T13:30:15+14:01"]:
        assert parse_datetime(bad) is None


def test_parse_duration():
    assert parse_duration("PT1H30M") == 5400
    assert parse_duration("P1D") == 86400
    assert parse_duration("-PT1.5S") == -1.5
    assert parse_duration("P1Y") > parse_duration("P12D")
    for bad in ["P", "PT", "P1DT", "1D", "", "P1H", None]:
        assert parse_duration(bad) is None


# ---------------------------------------------------------------------------
# $select
# ---------------------------------------------------------------------------
def test_parse_select():
    assert parse_select("name,state") == ["name", "state"]
    assert parse_select(" name , state ,name") == ["name", "state"]
    assert parse_select("name,*") == ["*"]
    assert parse_select("disks/name,operations") == ["disks/name", "operations"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "$select: empty attribute list"),
        ("name,,state", "$select: empty attribute name at position 5"),
        ("name,", "$select: empty attribute name at position 5"),
        ("name, st ate", "$select: invalid attribute name 'st ate' at position 6"),
        ("a/b/c", "$select: invalid attribute name 'a/b/c' at position 0"),
        ("na-me", "$select: invalid attribute name 'na-me' at position 0"),
    ],
)
def test_malformed_select(text, message):
    assert error(parse_select, text) == message


def test_select_keeps_resource_uri_and_document_order():
    assert select(VM, ["state", "name", "nope"]) == {"resourceURI": NS + "Machine", "name": "vm1", "state": "STARTED"}
    assert list(select(VM, ["state", "name"])) == ["resourceURI", "name", "state"]
    assert select(VM, ["*"]) == VM and select(VM, ["*"]) is not VM
    assert select(VM, ["machines/cpu"]) == {"resourceURI": NS + "Machine", "cpu": 2}
    assert select({"name": "x"}, ["cpu"]) == {}


def test_select_on_a_collection():
    items = [machine(1), machine(2)]
    coll = {
        "resourceURI": NS + "MachineCollection",
        "id": "/machines",
        "count": 2,
        "machines": items,
        "operations": [{"rel": "add", "href": "/machines"}],
    }
    # collection attributes only: no items at all (4.1.6.3 example "count,operations")
    assert select_collection(coll, "machines", ["count", "operations"]) == {
        "resourceURI": NS + "MachineCollection",
        "count": 2,
        "operations": coll["operations"],
    }
    # item attributes: each item subset, nothing else of the collection
    assert select_collection(coll, "machines", ["name", "cpu"]) == {
        "resourceURI": NS + "MachineCollection",
        "machines": [
            {"resourceURI": NS + "Machine", "name": "vm1", "cpu": 2},
            {"resourceURI": NS + "Machine", "name": "vm2", "cpu": 2},
        ],
    }
    # path notation disambiguates operations/id
    picked = select_collection(coll, "machines", ["machines/name", "operations", "other/name"])
    assert picked["operations"] == coll["operations"]
    assert picked["machines"][0] == {"resourceURI": NS + "Machine", "name": "vm1"}
    # the grouping attribute alone keeps whole items
    assert select_collection(coll, "machines", ["machines"])["machines"] == items
    assert select_collection(coll, "machines", ["*"]) == coll


def test_apply_collection_query_selects_on_the_collection():
    """4.1.6.3 through the whole query: $select on the Collection, the other parameters on its entries."""
    docs = [machine(1), machine(2, cpu=4), machine(3, cpu=4)]
    ops = [{"rel": "add", "href": "/machines"}]

    def build(items, count):
        doc = {"resourceURI": NS + "MachineCollection", "id": "/machines", "count": count}
        if items:
            doc["machines"] = items
        return dict(doc, operations=ops)

    def run(**params):
        return apply_collection_query(docs, params, "machines", build)

    assert run(**{"$filter": "cpu=4", "$select": "count,operations"}) == {
        "resourceURI": NS + "MachineCollection", "count": 2, "operations": ops}
    assert run(**{"$select": ["count", "machines/name"], "$first": "2"}) == {
        "resourceURI": NS + "MachineCollection", "count": 3,
        "machines": [{"resourceURI": NS + "Machine", "name": "vm2"}, {"resourceURI": NS + "Machine", "name": "vm3"}]}
    assert set(run(**{"$select": "name"})) == {"resourceURI", "machines"}
    assert run(**{"$select": "*"}) == run() == build(docs, 3)
    assert run(**{"$select": "id,machines", "$last": "1"})["machines"] == [docs[0]]
    with pytest.raises(QueryError):
        run(**{"$select": "count", "$expand": "a b"})  # still validated though no entry is expanded


# ---------------------------------------------------------------------------
# $expand
# ---------------------------------------------------------------------------
RESOURCES = {
    "/configs/1": {"resourceURI": NS + "MachineConfiguration", "id": "/configs/1", "cpu": 4},
    "/volumes/1": {"id": "/volumes/1", "capacity": 10},
    "/volumes/2": {"id": "/volumes/2", "capacity": 20},
}


def test_parse_expand():
    assert parse_expand("volumes,machineConfig,volumes") == ["volumes", "machineConfig"]
    assert parse_expand("*") == "*"
    assert parse_expand("a,*") == "*"
    assert parse_expand("") == "*"  # no list at all means everything (4.1.6.4)
    assert error(parse_expand, "a,,b") == "$expand: empty attribute name at position 2"
    assert error(parse_expand, "a b") == "$expand: invalid attribute name 'a b' at position 0"


def test_expand_references_and_lists_of_references():
    doc = {
        "id": "/machines/1",
        "machineConfig": {"href": "/configs/1"},
        "volumes": [{"href": "/volumes/1", "initialLocation": "/dev/vdb"}, {"href": "/gone"}, "x"],
        "eventLog": {"href": "/gone"},
        "operations": [{"rel": "edit", "href": "/configs/1"}],
    }
    out = expand(doc, "*", RESOURCES.get)
    assert out["machineConfig"] == {
        "href": "/configs/1",
        "resourceURI": NS + "MachineConfiguration",
        "id": "/configs/1",
        "cpu": 4,
    }
    assert list(out["machineConfig"])[0] == "href"
    assert out["volumes"] == [
        {"href": "/volumes/1", "initialLocation": "/dev/vdb", "id": "/volumes/1", "capacity": 10},
        {"href": "/gone"},
        "x",
    ]
    assert out["eventLog"] == {"href": "/gone"}  # unresolvable: left alone
    assert out["operations"] == doc["operations"]  # never expanded
    assert doc["machineConfig"] == {"href": "/configs/1"}  # input untouched

    only = expand(doc, ["volumes", "nope", "id"], RESOURCES.get)
    assert only["machineConfig"] == {"href": "/configs/1"}
    assert only["volumes"][0]["capacity"] == 10
    assert expand(doc, ["operations"], RESOURCES.get) == doc


def test_expand_never_touches_properties():
    doc = {"properties": {"href": "/configs/1"}, "machineConfig": {"href": "/configs/1"}}
    assert expand(doc, "*", RESOURCES.get)["properties"] == {"href": "/configs/1"}
    assert expand(doc, "properties,machineConfig", RESOURCES.get)["machineConfig"]["cpu"] == 4


def test_text_arguments_are_parsed():
    assert select(VM, "name") == {"resourceURI": NS + "Machine", "name": "vm1"}
    assert expand({"c": {"href": "/configs/1"}}, "c", RESOURCES.get)["c"]["cpu"] == 4
    assert names(order([machine(1), machine(2)], "name:desc")) == ["vm2", "vm1"]
    assert error(order, [], "cpu:up") == "$orderby: unknown direction 'up' at position 4"


def test_expand_keeps_the_reference_attributes_over_the_target():
    out = expand({"v": {"href": "/volumes/1", "capacity": 99}}, ["v"], RESOURCES.get)
    assert out["v"]["capacity"] == 99


# ---------------------------------------------------------------------------
# $orderby
# ---------------------------------------------------------------------------
def test_parse_orderby():
    assert parse_orderby("created:desc") == [("created", True)]
    assert parse_orderby("cpu:desc,memory:asc,name") == [("cpu", True), ("memory", False), ("name", False)]
    assert parse_orderby(" cpu : DESC , name") == [("cpu", True), ("name", False)]
    assert parse_orderby("machineTemplate.href") == [("machineTemplate.href", False)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("cpu:up", "$orderby: unknown direction 'up' at position 4"),
        ("name,cpu:", "$orderby: unknown direction '' at position 9"),
        ("cpu:desc:asc", "$orderby: unknown direction 'desc:asc' at position 4"),
        ("", "$orderby: empty attribute list"),
        ("cpu,,name", "$orderby: empty attribute name at position 4"),
        (":desc", "$orderby: empty attribute name at position 0"),
        ("c pu", "$orderby: invalid attribute name 'c pu' at position 0"),
        ("cpu, 9x", "$orderby: invalid attribute name '9x' at position 5"),
    ],
)
def test_malformed_orderby(text, message):
    assert error(parse_orderby, text) == message


def names(docs):
    return [d.get("name") for d in docs]


def test_order_by_numbers_strings_booleans():
    docs = [machine(1, cpu=4, memory=1), machine(2, cpu=1, memory=2), machine(3, cpu=4, memory=0), machine(4, cpu=None)]
    assert names(order(docs, [("cpu", False)])) == ["vm2", "vm1", "vm3", "vm4"]  # stable, missing last
    assert names(order(docs, [("cpu", True)])) == ["vm1", "vm3", "vm2", "vm4"]  # missing last in desc too
    assert names(order(docs, [("cpu", True), ("memory", False)])) == ["vm3", "vm1", "vm2", "vm4"]
    assert names(order(docs, ["memory"])) == ["vm3", "vm1", "vm2", "vm4"]
    assert names(order(docs, [("name", True)])) == ["vm4", "vm3", "vm2", "vm1"]
    flags = [{"name": "a", "f": True}, {"name": "b", "f": False}, {"name": "c"}]
    assert names(order(flags, [("f", False)])) == ["b", "a", "c"]
    assert names(order(docs, [])) == names(docs)


def test_order_by_datetime_compares_instants():
    docs = [
        {"name": "a", "t": "2026-01-01T10:00:00+02:00"},
        {"name": "b", "t": "2026-01-01T09:00:00Z"},
        {"name": "c", "t": "2026-01-01T08:30:00Z"},
    ]
    assert names(order(docs, [("t", False)])) == ["a", "c", "b"]  # a is 08:00Z
    assert names(order(docs, [("t", True)])) == ["b", "c", "a"]


def test_order_by_duration():
    docs = [{"name": "a", "d": "PT2H"}, {"name": "b", "d": "PT90M"}, {"name": "c", "d": "P1D"}]
    assert names(order(docs, [("d", False)])) == ["b", "a", "c"]


def test_order_strings_after_nfkd():
    docs = [{"name": "b"}, {"name": "\ufb01"}, {"name": "a"}]  # the 'fi' ligature sorts as "fi"
    assert names(order(docs, ["name"])) == ["a", "b", "\ufb01"]


def test_order_mixed_types_does_not_crash():
    docs = [
        {"name": "s", "v": "x"},
        {"name": "i", "v": 3},
        {"name": "b", "v": True},
        {"name": "d", "v": {}},
        {"name": "f", "v": 1.5},
        {"name": "n", "v": None},
        {"name": "l", "v": [1]},
        {"name": "t", "v": "2026-01-01"},
    ]
    assert names(order(docs, [("v", False)])) == ["b", "f", "i", "t", "s", "d", "l", "n"]
    assert names(order(docs, [("v", True)])) == ["d", "l", "s", "t", "i", "f", "b", "n"]


# ---------------------------------------------------------------------------
# $first / $last
# ---------------------------------------------------------------------------
DOCS = [machine(i) for i in range(1, 6)]


@pytest.mark.parametrize(
    "first, last, expected",
    [
        (None, None, [1, 2, 3, 4, 5]),
        (2, None, [2, 3, 4, 5]),
        (None, 2, [1, 2]),
        (2, 4, [2, 3, 4]),
        (3, 3, [3]),
        (4, 10, [4, 5]),  # partly out of bounds: no fault
        (6, None, []),
        (9, 12, []),
        (4, 2, []),  # first > last: empty range
    ],
)
def test_page(first, last, expected):
    assert names(page(DOCS, first, last)) == [f"vm{i}" for i in expected]


@pytest.mark.parametrize("first, last", [(0, None), (None, 0), (-1, None), (True, None), ("1", None), (1.0, 2)])
def test_page_rejects_non_positions(first, last):
    param = "$first" if first is not None else "$last"
    value = first if first is not None else last
    assert error(page, DOCS, first, last) == f"{param}: expected a positive integer, got {value!r}"


def test_parse_position():
    assert parse_position("3") == 3
    assert parse_position(" 007 ", "$last") == 7
    assert parse_position("9" * 60) == 10**18
    for bad in ["0", "000", "-1", "abc", "", "1.5", "+2", "1_0", "\u0663", "1e3"]:
        assert error(parse_position, bad, "$last") == f"$last: expected a positive integer, got {bad!r}"


# ---------------------------------------------------------------------------
# apply_query
# ---------------------------------------------------------------------------
FLEET = [
    machine(1, cpu=2, state="STARTED", created="2026-11-23T10:00:00Z", machineConfig={"href": "/configs/1"}),
    machine(2, cpu=8, state="STOPPED", created="2026-11-21T10:00:00Z"),
    machine(3, cpu=4, state="STARTED", created="2026-11-22T10:00:00Z", properties={"env": "dev"}),
    machine(4, cpu=1, state="STARTED", created="2026-11-24T10:00:00Z"),
    machine(5, cpu=4, state="ERROR", created="2026-11-20T10:00:00Z", properties=None),
]


def test_apply_query_without_parameters():
    docs, count = apply_query(FLEET, {})
    assert docs == FLEET and count == 5
    assert all(a is b for a, b in zip(docs, FLEET, strict=True))


def test_apply_query_order_of_operations():
    params = {
        "$filter": "state='STARTED'",
        "$orderby": "cpu:desc",
        "$first": "2",
        "$last": "3",
        "$select": "name,cpu",
        "$format": "xml",
        "other": "ignored",
    }
    docs, count = apply_query(FLEET, params)
    assert count == 3  # after filtering, before paging
    assert docs == [
        {"resourceURI": NS + "Machine", "name": "vm1", "cpu": 2},
        {"resourceURI": NS + "Machine", "name": "vm4", "cpu": 1},
    ]


def test_apply_query_repeated_parameters():
    params = {
        "$filter": ["cpu>=2", "property['env']='prod'"],
        "$orderby": ["cpu", "created:desc"],
        "$select": ["name", "cpu,name"],
        "$first": ["1", "99"],
    }
    docs, count = apply_query(FLEET, params)
    assert count == 2
    assert names(docs) == ["vm1", "vm2"]
    assert all(set(d) == {"resourceURI", "name", "cpu"} for d in docs)


def test_apply_query_accepts_multidict_like_params_and_ints():
    class MultiDict(dict):
        def getlist(self, key):
            return self.get(key, [])

    docs, count = apply_query(FLEET, MultiDict({"$filter": ["cpu=4", "state='ERROR'"]}))
    assert (names(docs), count) == (["vm5"], 1)
    docs, count = apply_query(FLEET, {"$first": 5, "$last": 5})
    assert (names(docs), count) == (["vm5"], 5)


def test_apply_query_expand_after_paging_with_cache():
    calls = []

    def resolve(href):
        calls.append(href)
        return RESOURCES.get(href)

    fleet = FLEET + [machine(6, machineConfig={"href": "/configs/1"})]
    docs, count = apply_query(fleet, {"$expand": "machineConfig", "$select": "name,machineConfig"}, resolve)
    assert count == 6
    assert docs[0] == {
        "resourceURI": NS + "Machine",
        "name": "vm1",
        "machineConfig": {
            "href": "/configs/1",
            "resourceURI": NS + "MachineConfiguration",
            "id": "/configs/1",
            "cpu": 4,
        },
    }
    assert docs[5]["machineConfig"]["cpu"] == 4
    assert calls == ["/configs/1"]  # resolved once

    calls.clear()
    apply_query(fleet, {"$expand": "", "$last": "1"}, resolve)
    assert calls == ["/configs/1"]
    calls.clear()
    apply_query(fleet, {"$expand": ["machineConfig", "*"], "$first": "2"}, resolve)
    assert calls == ["/configs/1"]  # only the paged entries are expanded

    # without a resolver $expand is only validated
    assert apply_query(FLEET, {"$expand": "machineConfig"})[0] == FLEET
    with pytest.raises(QueryError):
        apply_query(FLEET, {"$expand": "a b"})


def test_apply_query_select_star_and_filter_nothing():
    assert apply_query(FLEET, {"$select": "name,*"})[0] == FLEET
    assert apply_query(FLEET, {"$filter": "cpu>100"}) == ([], 0)
    assert apply_query([], {"$filter": "cpu>1", "$first": "3"}) == ([], 0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"$filter": "cpu>"}, "$filter: expected a value after '>' but the expression ended at position 4"),
        ({"$filter": ["cpu>1", "(x=1"]}, "$filter: unclosed '(' at position 0"),
        ({"$orderby": "cpu:up"}, "$orderby: unknown direction 'up' at position 4"),
        ({"$first": "0"}, "$first: expected a positive integer, got '0'"),
        ({"$first": "-1"}, "$first: expected a positive integer, got '-1'"),
        ({"$last": "abc"}, "$last: expected a positive integer, got 'abc'"),
        ({"$select": ""}, "$select: empty attribute list"),
        ({"$select": 1.5}, "$select: expected a string, got float"),
        ({"$filter": [None]}, "$filter: expected a string, got NoneType"),
    ],
)
def test_apply_query_rejects_bad_parameters_even_without_entries(params, message):
    assert error(apply_query, [], params) == message


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------
OPS = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge, ">": operator.gt, "!=": operator.ne}
values = st.one_of(st.none(), st.integers(-5, 5), st.booleans(), st.text(max_size=3), st.floats(-5, 5))


@settings(max_examples=300, deadline=None)
@given(
    docs=st.lists(st.dictionaries(st.sampled_from(["a", "b"]), values), max_size=8),
    op=st.sampled_from(sorted(OPS)),
    n=st.integers(-5, 5),
    reverse=st.booleans(),
)
def test_integer_filter_agrees_with_python(docs, op, n, reverse):
    text = f"{n}{op}a" if reverse else f"a{op}{n}"
    if reverse:  # "n < a" is "a > n"
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    got, count = apply_query(docs, {"$filter": text})
    want = [d for d in docs if type(d.get("a")) in (int, float) and OPS[op](d["a"], n)]
    assert got == want and count == len(want)


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(st.dictionaries(st.sampled_from(["s", "t"]), values), max_size=8),
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=4),
    negate=st.booleans(),
)
def test_string_filter_agrees_with_python(docs, text, negate):
    literal = "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    op = "!=" if negate else "="
    got, _count = apply_query(docs, {"$filter": f"s{op}{literal}"})
    assert got == [d for d in docs if isinstance(d.get("s"), str) and (d["s"] != text if negate else d["s"] == text)]


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(st.fixed_dictionaries({"a": st.integers(0, 3), "b": st.integers(0, 3)}), max_size=6),
    x=st.integers(0, 3),
    y=st.integers(0, 3),
    z=st.integers(0, 3),
)
def test_and_or_agree_with_python(docs, x, y, z):
    flt = parse_filter(f"a={x} or b={y} and a!={z}")
    for doc in docs:
        assert flt.matches(doc) == (doc["a"] == x or (doc["b"] == y and doc["a"] != z))


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(st.fixed_dictionaries({"k": st.integers(0, 3)}, optional={"m": st.integers(0, 3)}), max_size=8),
    first=st.integers(1, 10),
    last=st.integers(1, 10),
)
def test_order_and_page_agree_with_python(docs, first, last):
    got, count = apply_query(docs, {"$orderby": "m:desc,k", "$first": str(first), "$last": str(last)})
    present = sorted(sorted((d for d in docs if "m" in d), key=lambda d: d["k"]), key=lambda d: d["m"], reverse=True)
    missing = sorted((d for d in docs if "m" not in d), key=lambda d: d["k"])
    assert got == (present + missing)[first - 1 : last] and count == len(docs)


TOKENS = list("ab1 ()[]'\"=<>!~.-:,TZ\\*/$") + ["and", "or", "property", "2026-01-01", "true"]
GARBAGE = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join) | st.text(max_size=40)


@settings(max_examples=500, deadline=None)
@given(text=GARBAGE)
def test_garbage_only_raises_query_error(text):
    for parse in (parse_filter, parse_select, parse_expand, parse_orderby, parse_position):
        try:
            result = parse(text)
        except QueryError:
            continue
        if parse is parse_filter:
            result.matches(VM)
            result.matches({"a": 1, "b": "x", "property": [], "properties": {"a": "1"}})


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(0, 300))
def test_any_nesting_depth_is_handled(depth):
    text = "(" * depth + "a=1" + ")" * depth
    if depth <= MAX_DEPTH:
        assert parse_filter(text) == A
    else:
        assert "nested deeper" in error(parse_filter, text)
