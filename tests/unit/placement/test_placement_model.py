"""Parsing the JSON of ``siroccod place``: clear errors naming the offending field."""

import pytest
from placement_helpers import host, problem, vm

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import (
    Among,
    MaxOnline,
    PlacementInputError,
    Preserve,
    parse_problem,
)


def test_round_trip():
    p = problem([host("a", cpu_overcommit=2.0), host("b", on=False)], [vm("x", host="a"), vm("y")],
                [{"type": "among", "vms": ["x", "y"], "groups": [["a"], ["b"]]},
                 {"type": "max_online", "amount": 1}, {"type": "preserve", "vms": ["x"]}],
                migration_cost=5, max_migrations=3)
    assert isinstance(p.constraints[0], Among) and p.constraints[0].groups == (("a",), ("b",))
    assert p.constraints[1] == MaxOnline(amount=1, hosts=None)
    assert isinstance(p.constraints[2], Preserve)
    assert p.hosts[0].cpu_capacity == 16 and not p.hosts[1].on
    assert parse_problem(p.to_json()) == p


def test_error_is_invalid_input_and_value_error():
    assert issubclass(PlacementInputError, InvalidInput) and issubclass(PlacementInputError, ValueError)
    assert PlacementInputError("x", attribute="vms").http_status == 400


@pytest.mark.parametrize("data, field, words", [
    ([], "", "expected an object"),
    ({"vms": []}, "hosts", "required"),
    ({"hosts": [], "vms": [], "extra": 1}, "extra", "unknown field"),
    ({"hosts": {}, "vms": []}, "hosts", "expected a list"),
    ({"hosts": [host("a", cpu=0)], "vms": []}, "hosts[0].cpu", "> 0"),
    ({"hosts": [host("a", cpu=True)], "vms": []}, "hosts[0].cpu", "expected a number"),
    ({"hosts": [host("a", idle=300, peak=200)], "vms": []}, "hosts[0].power_max", ">= power_idle"),
    ({"hosts": [host("a"), host("a")], "vms": []}, "hosts[1].name", "duplicate"),
    ({"hosts": [dict(host("a"), on="yes")], "vms": []}, "hosts[0].on", "true or false"),
    ({"hosts": [{"name": "a", "cpu": 1, "memory": 1, "power_max": 1}], "vms": []}, "hosts[0].power_idle",
     "required"),
    ({"hosts": [host("a")], "vms": [vm("x", cpu=-1)]}, "vms[0].cpu", ">= 0"),
    ({"hosts": [host("a")], "vms": [vm("x", host="zz")]}, "vms[0].host", "unknown host 'zz'"),
    ({"hosts": [host("a")], "vms": [vm("x"), vm("x")]}, "vms[1].name", "duplicate"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "near"}]}, "constraints[0].type",
     "expected one of"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "spread", "vms": ["x", "q"]}]},
     "constraints[0].vms[1]", "unknown vm 'q'"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "spread", "vms": ["x"], "hosts": []}]},
     "constraints[0].hosts", "unknown field"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "ban", "vms": ["x"]}]},
     "constraints[0].hosts", "required"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "among", "vms": ["x"],
                                                               "groups": [["a"], ["b"]]}]},
     "constraints[0].groups[1][0]", "unknown host 'b'"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "max_online", "amount": -1}]},
     "constraints[0].amount", "non-negative integer"),
    ({"hosts": [host("a")], "vms": [vm("x")], "constraints": [{"type": "preserve", "vms": ["x"]}]},
     "constraints[0].vms[0]", "no current host"),
    ({"hosts": [host("a")], "vms": [], "time_limit": 0}, "time_limit", "> 0"),
    ({"hosts": [host("a")], "vms": [], "migration_cost": -2}, "migration_cost", ">= 0"),
    ({"hosts": [host("a")], "vms": [], "max_migrations": 1.5}, "max_migrations", "non-negative integer"),
])
def test_errors_name_the_field(data, field, words):
    with pytest.raises(PlacementInputError) as err:
        parse_problem(data)
    assert err.value.attribute == field
    assert str(err.value).startswith(field + ": " if field else ": ") and words in str(err.value)
