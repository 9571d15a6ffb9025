"""provider: auto in sirocco.cimi.machine: its options match their docs, requests and prices are read right.

The choice itself runs against real providers in tests/integration/targets/machine_auto and
tests/unit/placement/test_match.py.
"""

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.doc_fragments import placement as placement_fragment
from ansible_collections.sirocco.cimi.plugins.module_utils import machines
from ansible_collections.sirocco.cimi.plugins.module_utils import module as mu
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
from ansible_collections.sirocco.cimi.plugins.modules import machine as mod


def _same(spec, docs, where):
    assert sorted(spec) == sorted(docs), where
    for name, option in spec.items():
        doc = docs[name]
        assert doc["type"] == option["type"], (where, name)
        assert doc.get("default") == option.get("default"), (where, name)
        assert doc.get("choices") == option.get("choices"), (where, name)
        assert doc.get("required", False) == option.get("required", False), (where, name)
        assert doc.get("elements") == option.get("elements"), (where, name)
        assert doc["description"], (where, name)
        if "options" in option:
            _same(option["options"], doc["suboptions"], "%s.%s" % (where, name))


def test_placement_spec_matches_its_doc_fragment():
    _same(mu.placement_argument_spec(), yaml.safe_load(placement_fragment.ModuleDocFragment.DOCUMENTATION)["options"],
          "placement")


def test_policies_documented_are_the_registered_ones():
    assert mu.placement_argument_spec()["placement_policy"]["choices"] == match.policy_names()


def test_machine_provider_choices_are_auto_and_the_registry():
    """When a connector joins the registry, add its name to ``provider``'s choices in machine.py's DOCUMENTATION."""
    docs = yaml.safe_load(mod.DOCUMENTATION)["options"]["provider"]
    assert docs["choices"] == [mu.AUTO] + registry.provider_names()


def test_passwords_of_providers_are_no_log():
    entry = mu.placement_argument_spec()["providers"]["options"]
    assert entry["password"]["no_log"] is True
    assert [name for name, option in entry.items() if option.get("no_log")] == ["password"]


def test_prices_from_own_sizes_and_from_the_prices_option():
    entry = {"label": "lab", "provider_options": {"sizes": [
        {"name": "a", "cpu": 1, "memory_mib": 64, "price_per_hour": 0.5}, {"name": "b", "cpu": 1, "memory_mib": 64}]},
        "prices": {"b": "0.25", "a": 0.4}}
    assert mu.prices(entry) == {"a": 0.4, "b": "0.25"}
    assert mu.prices({"label": "x"}) == {}
    for bad in ({"a": "cheap"}, {"a": True}, {"a": [1]}):
        with pytest.raises(InvalidInput, match="providers\\[x\\]: the price of size 'a' must be a number"):
            mu.prices({"label": "x", "prices": bad})


def test_placement_request_from_module_options():
    wishes = {match.WISH_LOCATION: "rack-1", match.WISH_PROVIDER: "lab"}
    request = machines.placement_request({"cpu": 2, "memory_mib": 512, "disk_gib": 3, "cpu_arch": "x86_64"}, "paused",
                                         wishes)
    assert (request.cpu, request.memory_mib, request.disk_gib, request.arch) == (2, 512, 3, "x86_64")
    assert (request.location, request.providers) == ("rack-1", ("lab",))
    assert request.operations == match.BASE_OPERATIONS | {"machine.pause"}
    assert machines.placement_request("small", "started", None).size == "small"
    with pytest.raises(InvalidInput, match="machine_config: unknown key"):
        machines.placement_request({"cpu": 1, "memory_mib": 64, "ram": 1}, "present", None)
    with pytest.raises(InvalidInput, match="machine_config: expected a size name or a dictionary"):
        machines.placement_request(3, "present", None)
