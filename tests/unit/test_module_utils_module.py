"""module_utils/module.py: the shared argument spec matches its doc fragments, and errors get one shape."""

import re

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.doc_fragments import provider as provider_fragment
from ansible_collections.sirocco.cimi.plugins.doc_fragments import wait as wait_fragment
from ansible_collections.sirocco.cimi.plugins.module_utils import module as mu
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry


def fragment_options(fragment):
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("spec, fragment", [
    (mu.provider_argument_spec(), provider_fragment),
    (mu.wait_argument_spec(), wait_fragment),
])
def test_argument_spec_matches_its_doc_fragment(spec, fragment):
    docs = fragment_options(fragment)
    assert sorted(spec) == sorted(docs)
    for name, option in spec.items():
        doc = docs[name]
        assert doc["type"] == option["type"], name
        assert doc.get("default") == option.get("default"), name
        assert doc.get("choices") == option.get("choices"), name
        assert doc.get("required", False) == option.get("required", False), name
        assert doc["description"], name


def test_provider_choices_are_the_registry_and_the_doc_lists_them_all():
    assert mu.provider_argument_spec()["provider"]["choices"] == registry.provider_names()
    assert mu.DEFAULT_PROVIDER in registry.provider_names()


def test_secrets_are_no_log_and_every_environment_fallback_is_documented():
    spec = mu.provider_argument_spec()
    assert spec["password"]["no_log"] is True
    docs = fragment_options(provider_fragment)
    for name, option in spec.items():
        if "fallback" in option:
            variable = option["fallback"][1][0]
            assert "E(%s)" % variable in " ".join(docs[name]["description"]), name


def test_module_options_can_be_added_but_spec_is_fresh_each_time():
    first = mu.provider_argument_spec()
    first["provider"]["choices"].append("bogus")
    assert "bogus" not in mu.provider_argument_spec()["provider"]["choices"]


@pytest.mark.parametrize("exc, expected", [
    (InvalidInput("machineConfig.cpu must be at least 1", attribute="machineConfig.cpu"),
     "machine_config: machineConfig.cpu must be at least 1"),
    (InvalidInput("machine_config: unknown size 'huge'", attribute="machineConfig"),
     "machine_config: unknown size 'huge'"),
    (InvalidInput("provider 'libvirt' does not know option(s): x", attribute="provider_options"),
     "provider_options: provider 'libvirt' does not know option(s): x"),
    (InvalidInput("provider_options.sizes[0]: needs name", attribute="provider_options"),
     "provider_options.sizes[0]: needs name"),
    (InvalidInput("initialState must be one of STARTED, STOPPED", attribute="initialState"),
     "state: initialState must be one of STARTED, STOPPED"),
    (InvalidInput("a message about nothing known", attribute="somethingElse"), "a message about nothing known"),
    (NotFound("machine 'x' not found"), "machine 'x' not found"),
    (Unsupported("libvirt", "machine.capture"), "provider 'libvirt' does not support operation 'machine.capture'"),
])
def test_error_message_names_the_option(exc, expected):
    options = {"machineConfig": "machine_config", "initialState": "state"}
    assert mu.error_message(exc, options) == expected


def test_error_message_of_an_untranslated_error_has_its_type_and_no_traceback():
    message = mu.error_message(KeyError("boom"))
    assert message == "unexpected KeyError: 'boom'"


def test_error_message_never_shows_a_secret():
    exc = ProviderUnavailable("cannot reach https://admin:hunter2@cloud.example/api as admin/hunter2")
    message = mu.error_message(exc, secrets=["hunter2"])
    assert "hunter2" not in message
    assert message == "cannot reach https://admin:********@cloud.example/api as admin/********"


def test_scrub_ignores_empty_secrets():
    assert mu.scrub("text", secrets=[None, ""]) == "text"


@pytest.mark.parametrize("attribute, expected", [
    ("machineConfig.cpu", "machine_config"),
    ("machineConfig", "machine_config"),
    ("$filter", "filter"),
    ("provider", "provider"),
    ("provider_options", "provider_options"),
    ("properties", "properties"),
    ("volumes[0].volume", None),
    (None, None),
])
def test_option_for(attribute, expected):
    options = {"machineConfig": "machine_config", "$filter": "filter", "properties": "properties"}
    assert mu.option_for(attribute, options) == expected


def test_deadline_counts_down_and_never_goes_negative():
    now = [100.0]
    deadline = mu.Deadline(10, clock=lambda: now[0])
    assert deadline.remaining() == 10 and not deadline.expired
    now[0] = 104.5
    assert deadline.remaining() == 5.5
    now[0] = 200
    assert deadline.remaining() == 0 and deadline.expired


def test_diff_view_keeps_only_set_fields_in_order():
    doc = {"id": "1", "name": "m", "state": "STOPPED", "properties": {}, "disks": [], "cpu": 1}
    assert mu.diff_view(doc, ("name", "state", "cpu", "properties", "disks")) == {
        "name": "m", "state": "STOPPED", "cpu": 1}
    assert mu.diff_view({}, ("name",)) == {} and mu.diff_view(None, ("name",)) == {}


def test_string_map():
    assert mu.string_map(None, "properties") is None
    assert mu.string_map({"a": 1, "b": False, "c": "x", 4: 2.5}, "properties") == {
        "a": "1", "b": "false", "c": "x", "4": "2.5"}
    with pytest.raises(InvalidInput, match=re.escape("properties.a: expected a string, got dict")):
        mu.string_map({"a": {}}, "properties")
    with pytest.raises(InvalidInput, match="properties: expected a dictionary"):
        mu.string_map(["a"], "properties")


@pytest.mark.parametrize("exc, expected", [
    (InvalidInput("sizes[0]: needs name, cpu and memory_mib", attribute="sizes"),
     "provider_options: sizes[0]: needs name, cpu and memory_mib"),
    (InvalidInput("provider_options.domain_type: 'z' is not one of qemu", attribute="domain_type"),
     "provider_options.domain_type: 'z' is not one of qemu"),
    (InvalidInput("provider: unknown provider 'x'", attribute="provider"), "provider: unknown provider 'x'"),
])
def test_connect_errors_about_connector_options_name_provider_options(exc, expected):
    assert mu.error_message(mu.connect_error(exc)) == expected
