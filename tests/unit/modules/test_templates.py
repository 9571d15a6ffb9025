"""Client-side machine templates and configurations (module_utils/templates.py): the templates file and inline
definitions, their checks, merging with a task's options, stored templates read back as options.

Stored templates on a real siroccod and client-side ones on real libvirtd are proved by the integration targets
machine_template_siroccod and machine_template.
"""

import pytest

from ansible_collections.sirocco.cimi.plugins.doc_fragments import templates as fragment
from ansible_collections.sirocco.cimi.plugins.module_utils import templates as tpl
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineTemplate
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Capabilities

FILE = """
machine_configs:
  half: {cpu: 1, memory_mib: 80, disk_gib: 2}
machine_templates:
  web:
    machine_config: half
    properties: {role: web}
    credential: {name: my-key}
"""


def library(tmp_path, text=FILE, inline=None, environ=None):
    path = tmp_path / "templates.yaml"
    path.write_text(text)
    return tpl.Library(inline=inline, path=str(path), environ=environ or {}), str(path)


def test_options_match_the_doc_fragment():
    import yaml

    docs = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    spec = tpl.templates_argument_spec()
    assert sorted(docs) == sorted(spec)
    for name, option in spec.items():
        assert docs[name]["type"] == option["type"]


def test_file_entries_with_their_source(tmp_path):
    lib, path = library(tmp_path)
    options, source = lib.template("web")
    assert source == path
    assert options["machine_config"] == "half"
    config, source = lib.config("half")
    assert (config.name, config.cpu, config.memory, config.disks[0].get("capacity")) == ("half", 1, 80 * 1024,
                                                                                         2 * 1024 * 1024)
    assert lib.template("nope") is None


def test_a_file_with_system_templates_still_gives_its_machine_entries(tmp_path):
    """One templates file serves machine and system templates (system.py reads the system_templates)."""
    text = FILE + ("system_templates:\n  pair:\n    componentDescriptors:\n"
                   "      - {name: m, type: machine, component: {machine_template: web}}\n")
    lib, path = library(tmp_path, text)
    assert lib.config("half")[1] == path
    assert lib.template("web")[0]["machine_config"] == "half"


def test_inline_entries_win_over_the_file(tmp_path):
    lib, _path = library(tmp_path, inline={"machine_templates": {"web": {"machine_config": "tiny"}}})
    assert lib.template("web") == ({"machine_config": "tiny"}, "templates")
    assert lib.config("half")[0].cpu == 1  # the file's other entries stay


def test_path_option_then_environment_then_first_default_that_exists(tmp_path, monkeypatch):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    monkeypatch.setattr(tpl, "TEMPLATES_FILES", (str(first), str(second)))
    assert tpl.Library(environ={}).file_path() is None
    second.write_text(FILE)
    assert tpl.Library(environ={}).file_path() == str(second)
    first.write_text("")
    assert tpl.Library(environ={}).file_path() == str(first)
    assert tpl.Library(environ={tpl.TEMPLATES_ENV: "/x/env.yaml"}).file_path() == "/x/env.yaml"
    assert tpl.Library(path="/x/opt.yaml", environ={tpl.TEMPLATES_ENV: "/x/env.yaml"}).file_path() == "/x/opt.yaml"


def test_no_file_and_no_inline_means_no_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(tpl, "TEMPLATES_FILES", (str(tmp_path / "none.yaml"),))
    lib = tpl.Library(environ={})
    assert lib.entries("machine_configs") == {}
    assert lib.template("web") is None
    assert "no templates file" in lib.where()


@pytest.mark.parametrize("text, words", [
    ("machine_templates: [a, b]", ["machine_templates must be a dictionary"]),
    ("colours: {}", ["unknown key(s) colours"]),
    ("machine_templates: {web: {colour: blue}}", ["machine_templates.web", "unknown key(s) colour"]),
    ("machine_templates: {web: {machine_config: 3}}", ["machine_templates.web.machine_config"]),
    ("machine_templates: {web: {machine_config: {cpu: 1}}}", ["machine_templates.web.machine_config.memory_mib"]),
    ("machine_templates: {web: {networks: net-a}}", ["machine_templates.web.networks"]),
    ("machine_templates: {web: {credential: {name: a, public_key: b}}}", ["credential", "exactly one"]),
    ("machine_configs: {half: {cpu: 0, memory_mib: 64}}", ["machine_configs.half.cpu", "at least 1"]),
    ("machine_templates: {web: [}", ["not valid YAML"]),
])
def test_a_malformed_file_is_refused_naming_the_file_and_the_entry(tmp_path, text, words):
    lib, path = library(tmp_path, text)
    with pytest.raises(InvalidInput) as err:
        lib.entries("machine_templates")
    assert err.value.message.startswith("templates_file: ")
    assert path in err.value.message
    for word in words:
        assert word in err.value.message
    assert err.value.attribute == "templates_file"


def test_a_missing_file_named_explicitly_is_an_error(tmp_path):
    lib = tpl.Library(path=str(tmp_path / "missing.yaml"), environ={})
    with pytest.raises(InvalidInput, match="templates_file: cannot read .*missing.yaml"):
        lib.template("web")


def test_inline_errors_name_the_templates_option():
    lib = tpl.Library(inline={"machine_templates": {"web": {"colour": "blue"}}}, environ={})
    with pytest.raises(InvalidInput) as err:
        lib.template("web")
    assert err.value.message.startswith("templates: machine_templates.web")
    assert err.value.attribute == "templates"


def test_merge_task_options_win_and_properties_merge_by_key():
    template = {"machine_config": "half", "description": "t", "properties": {"role": "web", "tier": "front"},
                "networks": ["a"]}
    params = {"name": "m", "machine_config": None, "description": "mine", "properties": {"tier": "back"},
              "networks": None}
    merged = tpl.merge(template, params)
    assert merged["machine_config"] == "half"
    assert merged["description"] == "mine"
    assert merged["properties"] == {"role": "web", "tier": "back"}
    assert merged["networks"] == ["a"]
    assert params["properties"] == {"tier": "back"}  # the task's options are left alone


def test_stored_template_as_options():
    stored = MachineTemplate.from_json({
        "name": "web", "machineConfig": {"href": "http://e/cimi/machineConfigs/1"},
        "machineImage": {"href": "http://e/cimi/machineImages/2"}, "credential": {"href": "http://e/cimi/credentials/3"},
        "userData": "#cloud-config\n", "properties": {"role": "web"},
        "interfaceTemplates": [{"network": {"href": "http://e/cimi/networks/4"}}]}, trusted=True)
    assert tpl.native_options(stored) == {
        "machine_config": "http://e/cimi/machineConfigs/1", "machine_image": "http://e/cimi/machineImages/2",
        "credential": {"name": "http://e/cimi/credentials/3"}, "networks": ["http://e/cimi/networks/4"],
        "user_data": "#cloud-config\n", "properties": {"role": "web"}}
    by_value = MachineTemplate.from_json({"name": "x", "machineConfig": {"cpu": 2, "memory": 262144}}, trusted=True)
    assert tpl.native_options(by_value) == {"machine_config": {"cpu": 2, "memory_mib": 256}}


def test_a_provider_that_stores_nothing_is_refused_with_a_pointer():
    caps = Capabilities(provider="libvirt", operations=frozenset({"machine_config.list"}))
    tpl.require_stored(caps, "machine_config", "machine_config.list")
    with pytest.raises(Unsupported) as err:
        tpl.require_stored(caps, "machine_config", "machine_config.create")
    assert err.value.operation == "machine_config.create"
    assert "provider 'libvirt'" in err.value.message
    assert "machine_configs" in err.value.message
    assert tpl.TEMPLATES_ENV in err.value.message


def test_shown_hides_user_data():
    doc = tpl.shown({"name": "t", "userData": "secret", "id": None}, ("name", "userData", "id"))
    assert doc["name"] == "t"
    assert "secret" not in str(doc)
    assert doc["userData"].startswith("(6 bytes, sha256 ")


def test_comparable_ignores_what_the_provider_adds():
    mine = {"name": "t", "machineConfig": {"href": "u"}, "properties": {"a": "1"}}
    stored = dict(mine, id="x", created="2026-01-01T00:00:00Z", resourceURI="r",
                  machineConfig={"href": "u", "cpu": 1}, operations=[{"rel": "edit"}])
    assert tpl.same(stored, mine, tpl.TEMPLATE_FIELDS)
    assert not tpl.same(dict(stored, properties={"a": "2"}), mine, tpl.TEMPLATE_FIELDS)


def test_client_side_docs_carry_their_source(tmp_path):
    lib, path = library(tmp_path)
    configs = tpl.client_side_docs(lib, "machine_configs")
    assert configs[0]["name"] == "half"
    assert configs[0]["properties"] == {tpl.SOURCE_PROPERTY: path}
    templates = tpl.client_side_docs(lib, "machine_templates")
    assert templates[0]["machineConfig"] == {"name": "half"}
    assert templates[0]["credential"] == {"name": "my-key"}
    assert templates[0]["properties"] == {"role": "web", tpl.SOURCE_PROPERTY: path}
