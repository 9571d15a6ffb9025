# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Machine templates and configurations: stored by the provider where it stores them, else client-side.

A provider that stores them (a CIMI endpoint such as siroccod: ``machine_template.list``,
``machine_config.list`` with ``.create``/``.delete``) keeps MachineTemplates and MachineConfigurations
itself; the ``machine_template`` and ``machine_config`` modules manage them there. Everywhere else a
playbook names templates and configurations defined client-side, in a YAML file of named entries (in the
style of the inventory's ``clouds_file``) or a dictionary given inline (doc fragment ``templates``)::

    machine_configs:
      m1: {cpu: 1, memory_mib: 512}
    machine_templates:
      web:
        machine_config: m1            # an entry above, a size of the provider, or a dictionary
        machine_image: debian-12
        credential: {name: my-key}    # or {public_key: ..., user_name: ...}
        user_data: "#cloud-config ..."
        properties: {role: web}
        networks: [private]
        description: the web tier

``machine_template: web`` then works on every provider: the provider's stored template of that name where
it stores templates, else the client-side one. The options a task gives override the template's
(``properties`` key by key). Only the modules use this file (``module`` is a ``module.SiroccoModule``).
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    CPU_ARCHS,
    MachineConfiguration,
    MachineTemplate,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import KIB_PER_MIB

TEMPLATES_ENV = "SIROCCO_TEMPLATES_FILE"
TEMPLATES_FILES = ("~/.config/sirocco/templates.yaml", "/etc/sirocco/templates.yaml")
TEMPLATES_KEYS = ("machine_templates", "machine_configs", "system_templates")
# what a client-side template may hold: the machine module's options of the same names
TEMPLATE_KEYS = ("description", "machine_config", "machine_image", "credential", "user_data", "properties",
                 "networks")
CONFIG_KEYS = ("cpu", "memory_mib", "disk_gib", "cpu_arch")
CREDENTIAL_KEYS = ("name", "public_key", "user_name")
KIB_PER_GIB = 1024 * 1024
# written into the properties of what *_info modules list from client-side definitions
SOURCE_PROPERTY = "sirocco.source"
# where to define what a provider does not store
POINTER = ("define it client-side instead: under %s in a templates file (option templates_file, environment "
           "variable " + TEMPLATES_ENV + ", default " + " or ".join(TEMPLATES_FILES) + ") or in the templates "
           "option, and use it as machine_template/machine_config of sirocco.cimi.machine")


def templates_argument_spec():
    """The options of the ``templates`` doc fragment (doc_fragments/templates.py): change both together."""
    return dict(
        templates=dict(type="dict"),
        templates_file=dict(type="path"),
    )


# -- machine_config dictionaries ---------------------------------------------------------------------
def _integer(config, key, minimum, option):
    value = config[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput("%s.%s: expected an integer of at least %d, got %r" % (option, key, minimum, value),
                           attribute="machineConfig")
    return value


def config_by_value(config, option="machine_config"):
    """A MachineConfiguration from the dictionary form of ``machine_config`` (errors name ``option``)."""
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise InvalidInput("%s: unknown key(s) %s (known: %s)" % (option, ", ".join(map(str, unknown)),
                                                                  ", ".join(CONFIG_KEYS)),
                           attribute="machineConfig")
    for key in ("cpu", "memory_mib"):
        if config.get(key) is None:
            raise InvalidInput("%s.%s is required when %s is a dictionary" % (option, key, option),
                               attribute="machineConfig")
    arch = config.get("cpu_arch")
    if arch is not None and arch not in CPU_ARCHS:
        raise InvalidInput("%s.cpu_arch: '%s' is not one of %s" % (option, arch, ", ".join(CPU_ARCHS)),
                           attribute="machineConfig")
    disk_gib = _integer(config, "disk_gib", 0, option) if config.get("disk_gib") is not None else 0
    return MachineConfiguration(
        cpu=_integer(config, "cpu", 1, option), memory=_integer(config, "memory_mib", 1, option) * KIB_PER_MIB,
        cpuArch=arch, disks=[{"capacity": disk_gib * KIB_PER_GIB}] if disk_gib else None)


def config_options(config):
    """The dictionary form (cpu, memory_mib, disk_gib, cpu_arch) of a MachineConfiguration."""
    out = {"cpu": config.cpu, "memory_mib": -(-(config.memory or 0) // KIB_PER_MIB)}
    disks = config.disks or []
    if disks and (disks[0].get("capacity") if isinstance(disks[0], dict) else disks[0].capacity):
        capacity = disks[0]["capacity"] if isinstance(disks[0], dict) else disks[0].capacity
        out["disk_gib"] = -(-capacity // KIB_PER_GIB)
    if config.cpuArch:
        out["cpu_arch"] = config.cpuArch
    return out


def resolve_config(connector, capabilities, value, library=None):
    """``machine_config`` (a size name or a dictionary) as a MachineConfiguration the provider accepts. A name
    is the provider's size, else a client-side configuration of ``library`` (templates.Library)."""
    library = library or Library(inline={}, path=None, environ={})
    if isinstance(value, str):
        try:
            return connector.get_machine_config(value)
        except Unsupported:
            known = None
        except NotFound:
            known = ", ".join(c.name or c.id for c in connector.list_machine_configs()) or "none"
        found = library.config(value)
        if found is not None:
            return fitting(connector, capabilities, found[0], "machine_config (%s)" % value)
        if known is None:
            raise InvalidInput("machine_config: provider '%s' offers no named sizes and %s define no configuration "
                               "'%s'; give machine_config as a dictionary (%s)"
                               % (connector.name, library.where(), value, ", ".join(CONFIG_KEYS)),
                               attribute="machineConfig")
        client = ", ".join(sorted(library.entries("machine_configs"))) or "none"
        raise InvalidInput("machine_config: unknown size '%s' on provider '%s' (known: %s; client-side, in %s: %s)"
                           % (value, connector.name, known, library.where(), client), attribute="machineConfig")
    if not isinstance(value, dict):
        raise InvalidInput("machine_config: expected a size name or a dictionary, got %s" % type(value).__name__,
                           attribute="machineConfig")
    return fitting(connector, capabilities, config_by_value(value), "machine_config")


def fitting(connector, capabilities, config, option):
    """``config``, unless it does not fit the provider's advertised ranges (InvalidInput naming ``option``)."""
    reasons = capabilities.fits(cpu=config.cpu, memory_mib=config.memory // KIB_PER_MIB, arch=config.cpuArch)
    if reasons:
        raise InvalidInput("%s: does not fit provider '%s': %s" % (option, connector.name, "; ".join(reasons)),
                           attribute="machineConfig")
    return config


# -- the client-side library: a templates file and the inline dictionary ------------------------------
class Library:
    """Client-side templates and configurations: the templates file's, then the inline ones (which win).

    Nothing is read until asked: a task that never needs a client-side definition never opens the file.
    """

    def __init__(self, inline=None, path=None, environ=None):
        self.inline = inline
        self.path = path
        self.environ = os.environ if environ is None else environ
        self._entries = None

    def file_path(self):
        """The templates file to read: ``templates_file``, else the environment variable, else the first
        default that exists; None when there is none."""
        if self.path:
            return os.path.expanduser(self.path)
        if self.environ.get(TEMPLATES_ENV):
            return os.path.expanduser(self.environ[TEMPLATES_ENV])
        return next((p for p in map(os.path.expanduser, TEMPLATES_FILES) if os.path.isfile(p)), None)

    def where(self):
        """Where client-side definitions were looked for, for messages."""
        places = []
        path = self.file_path()
        places.append("templates file %s" % path if path else "no templates file (%s)" % ", ".join(TEMPLATES_FILES))
        if self.inline:
            places.append("the templates option")
        return " and ".join(places)

    def entries(self, kind):
        """{name: definition} of ``kind`` (machine_templates, machine_configs), each with its source."""
        if self._entries is None:
            found = {key: {} for key in TEMPLATES_KEYS}
            path = self.file_path()
            explicit = bool(self.path or self.environ.get(TEMPLATES_ENV))
            if path and (explicit or os.path.isfile(path)):
                for key, items in parse(load_file(path), "templates_file: %s" % path).items():
                    found[key].update({name: (value, path) for name, value in items.items()})
            if self.inline is not None:
                for key, items in parse(self.inline, "templates").items():
                    found[key].update({name: (value, "templates") for name, value in items.items()})
            self._entries = found
        return self._entries[kind]

    def template(self, name):
        """(options, source) of the client-side template ``name``, or None."""
        return self.entries("machine_templates").get(name)

    def config(self, name):
        """(MachineConfiguration, source) of the client-side configuration ``name``, or None."""
        found = self.entries("machine_configs").get(name)
        if found is None:
            return None
        value, source = found
        config = config_by_value(value, "%s: machine_configs.%s" % (_shown(source), name))
        return MachineConfiguration(name=name, cpu=config.cpu, memory=config.memory, cpuArch=config.cpuArch,
                                    disks=config.disks), source


def _shown(source):
    return "templates" if source == "templates" else "templates_file: %s" % source


def load_file(path):
    """The YAML document of a templates file, or InvalidInput naming templates_file."""
    try:
        import yaml  # PyYAML, which Ansible itself needs
    except ImportError:
        raise InvalidInput("templates_file: reading %s needs the Python package PyYAML" % path,
                           attribute="templates_file") from None
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise InvalidInput("templates_file: cannot read %s: %s" % (path, exc.strerror or exc),
                           attribute="templates_file") from None
    except yaml.YAMLError as exc:
        raise InvalidInput("templates_file: %s is not valid YAML: %s" % (path, str(exc).replace("\n", " ")),
                           attribute="templates_file") from None


def parse(data, where):
    """{kind: {name: definition}} of a templates document, every entry checked; errors start with ``where``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("%s: expected a dictionary with %s" % (where, " and/or ".join(TEMPLATES_KEYS)),
                           attribute=where.split(":")[0])
    attribute = where.split(":")[0]
    unknown = sorted(str(k) for k in set(data) - set(TEMPLATES_KEYS))
    if unknown:
        raise InvalidInput("%s: unknown key(s) %s (known: %s)" % (where, ", ".join(unknown), ", ".join(TEMPLATES_KEYS)),
                           attribute=attribute)
    out = {}
    for kind in TEMPLATES_KEYS:
        items = data.get(kind) or {}
        if not isinstance(items, dict):
            raise InvalidInput("%s: %s must be a dictionary of named entries" % (where, kind), attribute=attribute)
        out[kind] = {}
        for name, value in items.items():
            label = "%s: %s.%s" % (where, kind, name)
            if not isinstance(value, dict):
                raise InvalidInput("%s: expected a dictionary" % label, attribute=attribute)
            try:
                if kind == "machine_configs":
                    config_by_value(value, label)
                elif kind == "machine_templates":
                    check_template(value, label, attribute)
                # system_templates: checked where they are used (systems.parse_template), against the provider
            except InvalidInput as exc:  # the option at fault is the file (or the inline dictionary)
                raise InvalidInput(exc.message, attribute=attribute) from None
            out[kind][str(name)] = dict(value)
    return out


def check_template(value, label, attribute):
    """InvalidInput (naming ``label``) unless ``value`` is a well-formed client-side template."""
    unknown = sorted(str(k) for k in set(value) - set(TEMPLATE_KEYS))
    if unknown:
        raise InvalidInput("%s: unknown key(s) %s (known: %s)" % (label, ", ".join(unknown), ", ".join(TEMPLATE_KEYS)),
                           attribute=attribute)
    config = value.get("machine_config")
    if config is not None and not isinstance(config, (str, dict)):
        raise InvalidInput("%s.machine_config: expected a size name or a dictionary" % label, attribute=attribute)
    if isinstance(config, dict):
        config_by_value(config, label + ".machine_config")
    for key in ("machine_image", "user_data", "description"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidInput("%s.%s: expected a string" % (label, key), attribute=attribute)
    if value.get("properties") is not None and not isinstance(value["properties"], dict):
        raise InvalidInput("%s.properties: expected a dictionary" % label, attribute=attribute)
    networks = value.get("networks")
    if networks is not None and (not isinstance(networks, list) or not all(isinstance(n, str) for n in networks)):
        raise InvalidInput("%s.networks: expected a list of network names or ids" % label, attribute=attribute)
    credential = value.get("credential")
    if credential is not None:
        check_credential(credential, label + ".credential", attribute)


def check_credential(credential, label, attribute):
    """A credential option: a dictionary with exactly one of ``name`` and ``public_key``."""
    if not isinstance(credential, dict):
        raise InvalidInput("%s: expected a dictionary with name, or public_key and user_name" % label,
                           attribute=attribute)
    unknown = sorted(str(k) for k in set(credential) - set(CREDENTIAL_KEYS))
    if unknown:
        raise InvalidInput("%s: unknown key(s) %s (known: %s)" % (label, ", ".join(unknown),
                                                                  ", ".join(CREDENTIAL_KEYS)), attribute=attribute)
    given = [key for key in ("name", "public_key") if credential.get(key)]
    if len(given) != 1:
        raise InvalidInput("%s: give exactly one of name (a credential the provider keeps) and public_key"
                           % label, attribute=attribute)


# -- templates as machine options -------------------------------------------------------------------
def _href(ref):
    return ref.get("href") if isinstance(ref, dict) else None


def native_options(template):
    """The machine options a provider's stored MachineTemplate stands for (references as ids)."""
    options = {}
    config = template.get("machineConfig")
    if isinstance(config, dict):
        if config.get("href"):
            options["machine_config"] = config["href"]
        elif config.get("cpu") and config.get("memory"):
            options["machine_config"] = config_options(MachineConfiguration(**{
                k: v for k, v in config.items() if k in ("cpu", "memory", "cpuArch", "disks")}))
    if _href(template.get("machineImage")):
        options["machine_image"] = _href(template.get("machineImage"))
    credential = template.get("credential")
    if _href(credential):
        options["credential"] = {"name": _href(credential)}
    elif isinstance(credential, dict) and credential.get("key"):
        options["credential"] = {"public_key": credential["key"], "user_name": credential.get("userName")}
    networks = [_href(i.get("network")) for i in template.get("interfaceTemplates") or []
                if isinstance(i, dict) and _href(i.get("network"))]
    if networks:
        options["networks"] = networks
    for key, wire in (("user_data", "userData"), ("description", "description"), ("properties", "properties")):
        if template.get(wire):
            options[key] = template.get(wire)
    return options


def find_template(connector, capabilities, name, library):
    """(options, source) of the machine template ``name``: the provider's stored one where it stores templates,
    else the client-side one; InvalidInput naming machine_template when there is none."""
    if capabilities.supports("machine_template.list"):
        try:
            return native_options(connector.get_machine_template(name)), "provider"
        except NotFound:
            pass
    found = library.template(name)
    if found is not None:
        return found
    stored = (" provider '%s' stores none of that name, and" % connector.name
              if capabilities.supports("machine_template.list") else "")
    known = sorted(library.entries("machine_templates"))
    raise InvalidInput("machine_template: unknown template '%s':%s %s define%s none (known there: %s)"
                       % (name, stored, library.where(), "" if " and " in library.where() else "s",
                          ", ".join(known) or "none"), attribute="machineTemplate")


def merge(template, params, keys=TEMPLATE_KEYS):
    """The machine options: the task's where it gives them, else the template's; properties key by key."""
    merged = dict(params)
    for key in keys:
        if key == "properties" and template.get(key) and params.get(key):
            merged[key] = dict(template[key], **params[key])
        elif params.get(key) is None and template.get(key) is not None:
            merged[key] = template[key]
    return merged


# -- the machine_template and machine_config modules (providers that store them) -----------------------
def require_stored(capabilities, kind, operation):
    """Unsupported naming ``operation`` and pointing at client-side definitions, unless the provider stores
    ``kind`` (machine_template, machine_config) and offers ``operation``."""
    if not capabilities.supports(operation):
        section = "machine_templates" if kind == "machine_template" else "machine_configs"
        raise Unsupported(capabilities.provider, operation, "provider '%s' does not store %ss (no operation '%s'); "
                          % (capabilities.provider, kind.replace("_", " "), operation) + POINTER % section)


def template_document(connector, params, resolve_config, resolve_image):
    """The MachineTemplate the machine_template module stores, every reference resolved on the provider
    (an unknown size, image, credential or network fails here, before anything is stored)."""
    values = {"name": params["name"], "description": params.get("description"),
              "properties": params.get("properties") or None, "userData": params.get("user_data")}
    if params.get("machine_config") is not None:
        config = resolve_config(params["machine_config"])
        values["machineConfig"] = ({"href": config.id} if config.id else
                                   {k: v for k, v in config.to_json().items() if k != "resourceURI"})
    if params.get("machine_image"):
        values["machineImage"] = {"href": resolve_image(params["machine_image"])}
    credential = params.get("credential")
    if credential:
        check_credential(credential, "credential", "credential")
        if credential.get("name"):
            values["credential"] = {"href": stored_credential(connector, credential["name"]).id}
        else:
            values["credential"] = {"key": credential["public_key"], "userName": credential.get("user_name")}
    if params.get("networks"):
        values["interfaceTemplates"] = [{"network": {"href": network_id(connector, ref)}}
                                        for ref in params["networks"]]
    return MachineTemplate(**values)


def stored_credential(connector, name):
    """The Credential ``credential.name`` names, or InvalidInput naming the option."""
    try:
        return connector.get_credential(name)
    except Unsupported:
        raise InvalidInput("credential.name: provider '%s' keeps no credentials (no operation 'credential.list'); "
                           "give credential.public_key instead" % connector.name, attribute="credential") from None
    except NotFound:
        known = ", ".join(sorted(c.name or c.id for c in connector.list_credentials())) or "none"
        raise InvalidInput("credential.name: no credential '%s' on provider '%s' (known: %s)"
                           % (name, connector.name, known), attribute="credential") from None


def network_id(connector, ref):
    """The native id of the network ``ref`` (a name or an id), or InvalidInput naming ``networks``."""
    try:
        return connector.get_network(ref).id
    except Unsupported:
        raise InvalidInput("networks: provider '%s' does not list networks (no operation 'network.list')"
                           % connector.name, attribute="networks") from None
    except NotFound:
        known = ", ".join(sorted(n.name or n.id for n in connector.list_networks())) or "none"
        raise InvalidInput("networks: no network '%s' on provider '%s' (known: %s)" % (ref, connector.name, known),
                           attribute="networks") from None


def comparable(doc):
    """What decides whether a stored template or configuration is the one asked for: its JSON without what
    the provider adds (ids, times, operations, links of its own)."""
    skip = ("id", "created", "updated", "operations", "resourceURI")
    out = {}
    for key, value in doc.items():
        if key in skip or value in (None, {}, []):
            continue
        if isinstance(value, dict):
            value = comparable(value) if "href" not in value else {"href": value["href"]}
        elif isinstance(value, list):
            value = [comparable(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def library_of(params):
    """The client-side Library of a module's ``templates`` and ``templates_file`` options."""
    return Library(inline=params.get("templates"), path=params.get("templates_file"))


def client_side_docs(library, kind):
    """CIMI JSON of the client-side entries of ``kind`` (machine_templates, machine_configs), each with its
    source in properties; for the _info modules."""
    docs = []
    for name, (value, source) in sorted(library.entries(kind).items()):
        if kind == "machine_configs":
            config = library.config(name)[0]
            doc = config.to_json()
        else:
            doc = {"resourceURI": MachineTemplate().to_json()["resourceURI"], "name": name}
            doc.update(template_json(value))
        doc["properties"] = dict(doc.get("properties") or {}, **{SOURCE_PROPERTY: source})
        docs.append(doc)
    return docs


def template_json(options):
    """The MachineTemplate JSON of client-side template options, references by name (``{"name": ...}``)."""
    doc = {}
    config = options.get("machine_config")
    if isinstance(config, str):
        doc["machineConfig"] = {"name": config}
    elif isinstance(config, dict):
        doc["machineConfig"] = {k: v for k, v in config_by_value(config).to_json().items() if k != "resourceURI"}
    if options.get("machine_image"):
        doc["machineImage"] = {"name": options["machine_image"]}
    credential = options.get("credential") or {}
    if credential.get("name"):
        doc["credential"] = {"name": credential["name"]}
    elif credential.get("public_key"):
        doc["credential"] = {"key": credential["public_key"], "userName": credential.get("user_name")}
    if options.get("networks"):
        doc["interfaceTemplates"] = [{"network": {"name": n}} for n in options["networks"]]
    if options.get("user_data"):
        doc["userData"] = options["user_data"]
    if options.get("description"):
        doc["description"] = options["description"]
    if options.get("properties"):
        doc["properties"] = {str(k): str(v) for k, v in options["properties"].items()}
    return doc


# -- handlers of the machine_template, machine_config and their _info modules ---------------------------
CREATE, DELETE = "create", "delete"
# what the machine_template module manages, hence compares and shows
TEMPLATE_FIELDS = ("name", "description", "properties", "machineConfig", "machineImage", "credential", "userData",
                   "interfaceTemplates")
CONFIG_FIELDS = ("name", "description", "cpu", "memory", "cpuArch", "disks")


def shown(doc, fields):
    """The part of a stored document a result or diff shows: ``fields`` that are set, userData as its size and
    digest (it often carries secrets)."""
    out = {key: doc[key] for key in fields if doc.get(key) not in (None, {}, [])}
    if isinstance(out.get("userData"), str):
        data = out["userData"].encode("utf-8")
        out["userData"] = "(%d bytes, sha256 %s)" % (len(data), hashlib.sha256(data).hexdigest()[:16])
    return out


def same(existing, desired, fields):
    """Whether a stored document already is the one asked for, over ``fields`` (the provider's additions
    ignored)."""
    return (comparable({k: existing.get(k) for k in fields if k != "name"})
            == comparable({k: desired.get(k) for k in fields if k != "name"}))


def named(items, name, what, provider):
    """The one item called ``name`` (or with that id), None, or Conflict when several share the name."""
    found = [item for item in items if item.id == name] or [item for item in items if item.name == name]
    if len(found) > 1:
        raise Conflict("%d %ss are named '%s' on provider '%s'" % (len(found), what, name, provider))
    return found[0] if found else None


def converge(module, kind, desired, existing, fields, create, delete):
    """Plan and (outside check mode) apply: create, replace (delete then create: stored templates and
    configurations have no update) or delete; the module's result."""
    capabilities = module.connector.capabilities()
    before = existing.to_json() if existing is not None else {}
    if desired is None:
        operations = [DELETE] if existing is not None else []
    elif existing is None:
        operations = [CREATE]
    else:
        operations = [] if same(before, desired.to_json(), fields) else [DELETE, CREATE]
    for op in operations:
        require_stored(capabilities, kind, "%s.%s" % (kind, op))
    after = before if desired is None and not operations else {}
    if desired is not None:
        after = desired.to_json() if operations else before
    if not module.check_mode:
        if DELETE in operations:
            delete(existing.id)
        if CREATE in operations:
            after = create(desired).to_json()
    result = dict(changed=bool(operations), actions=operations)
    if desired is not None:
        result[kind] = shown(after, ("id", "resourceURI") + fields) if after else {}
    if module.diff_mode:
        result["diff"] = dict(before=shown(before, fields), after=shown(after if desired is not None else {}, fields))
    return result


def run_template(module):
    """The sirocco.cimi.machine_template module: a MachineTemplate stored by the provider."""
    p = module.params
    connector = module.connector
    capabilities = connector.capabilities()
    require_stored(capabilities, "machine_template", "machine_template.list")
    existing = named(connector.list_machine_templates(), p["name"], "machine template", connector.name)
    desired = None
    if p["state"] == "present":
        desired = template_document(
            connector, p, lambda value: resolve_config(connector, capabilities, value),
            lambda ref: machine_images.resolve_image(connector, ref).id)
    return converge(module, "machine_template", desired, existing, TEMPLATE_FIELDS,
                    connector.create_machine_template, connector.delete_machine_template)


def config_document(params):
    """The named MachineConfiguration the machine_config module stores."""
    try:
        config = config_by_value({k: params.get(k) for k in CONFIG_KEYS if params.get(k) is not None})
    except InvalidInput as exc:  # its options are the dictionary's keys: name them alone
        raise InvalidInput(exc.message.replace("machine_config.", "", 1)) from None
    return MachineConfiguration(name=params["name"], description=params.get("description"), cpu=config.cpu,
                                memory=config.memory, cpuArch=config.cpuArch, disks=config.disks)


def run_config(module):
    """The sirocco.cimi.machine_config module: a MachineConfiguration stored by the provider."""
    p = module.params
    connector = module.connector
    desired = config_document(p) if p["state"] == "present" else None  # bad input fails first
    require_stored(connector.capabilities(), "machine_config", "machine_config.list")
    existing = named(connector.list_machine_configs(), p["name"], "machine configuration", connector.name)
    return converge(module, "machine_config", desired, existing, CONFIG_FIELDS,
                    connector.create_machine_config, connector.delete_machine_config)


def run_info(module, kind):
    """The _info modules: the provider's stored ``kind`` (machine_templates, machine_configs) and the
    client-side ones, filtered by ``name`` and a CIMI ``filter``, sorted by name; nothing changes."""
    p = module.params
    match = parse_filter(p["filter"]) if p.get("filter") is not None else None  # checked before any call
    connector = module.connector
    operation = "machine_template.list" if kind == "machine_templates" else "machine_config.list"
    docs = []
    if connector.capabilities().supports(operation):
        items = connector.list_machine_templates() if kind == "machine_templates" else connector.list_machine_configs()
        fields = ("id", "resourceURI") + (TEMPLATE_FIELDS if kind == "machine_templates" else CONFIG_FIELDS)
        docs = [shown(item.to_json(), fields) for item in items]
    docs += [shown(doc, tuple(doc)) for doc in client_side_docs(library_of(p), kind)]
    chosen = [d for d in docs if (p.get("name") is None or d.get("name") == p["name"])
              and (match is None or match.matches(d))]
    return {"changed": False, kind: sorted(chosen, key=lambda d: (d.get("name") or "", d.get("id") or ""))}
