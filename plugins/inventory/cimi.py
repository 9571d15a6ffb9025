# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cimi
short_description: Every machine of every configured provider, as CIMI Machines
version_added: 0.1.0
description:
  - Lists the machines of any number of providers (hypervisors, clouds, CIMI endpoints) through Sirocco's
    connectors, in every state (stopped ones too), and makes them inventory hosts.
  - The providers are asked at the same time, each within its own C(timeout) counted from its own start; every
    listing is read page by page to its end. Each provider starts once the one before it waits for its answer
    (at most 0.5 s later), as their start-up work (imports, client set-up) cannot run side by side in one process.
  - A provider that fails or does not answer in time is left out with a warning naming its label (never its
    credentials), and the other providers' hosts are returned, unless O(fail_on_errors) is set.
  - Every host gets the whole CIMI Machine JSON document as C(cimi), plus C(cimi_id), C(cimi_state),
    C(cimi_provider) (the provider's label), C(cimi_provider_type), C(cimi_location) when known, and
    C(ansible_host) set to the machine's first IP address when it has one and the host name is not already it.
  - Where the provider forwards a port to the guest's SSH (libvirt guests on QEMU's user-mode network are reached at
    127.0.0.1 and a port of their own), C(ansible_host) is that address and C(ansible_port) that port; a machine
    created with a credential gets C(ansible_user) from it (its C(sirocco.user) property).
  - 'Where the provider knows the SSH host key the guest will present (libvirt: the connector makes it and hands it
    to cloud-init), the key is written to O(known_hosts_file) under an alias of the machine, and
    C(ansible_ssh_common_args) makes SSH check the guest against it: host key checking stays on, and a new guest
    behind a reused address and port is never taken for an old one.'
  - 'Default groups (see O(default_groups)): C(provider_<label>), C(state_<state>) (lower case, like
    C(state_started), C(state_stopped)), C(location_<location>) and C(prop_<key>_<value>) for each property
    (C(prop_<key>) when the value is empty). In these names every character other than an ASCII letter, a digit
    or C(_) becomes C(_).'
  - 'Host names follow O(hostnames). When several machines get the same name (two providers each have a C(web1)),
    each of them is renamed C(<name>_<label>); if that is still ambiguous (one provider has two machines of that
    name) C(<name>_<label>_<id>). A machine whose name is unique keeps it, whatever the other providers hold.'
  - Uses a YAML configuration file whose name ends with C(cimi.yml) or C(cimi.yaml).
  - 'With caching on (O(cache)), each provider account has its own cache entry, keyed by a SHA-256 hash of the
    inventory source path, the provider type, O(uri), O(username), O(region) and O(provider_options) (never the
    password): two accounts never share an entry, a provider that failed is not cached (it is asked again next
    time), and C(--flush-cache) asks every provider again.'
author:
  - Sirocco engineers (@sirocco-cimi)
requirements:
  - The Python packages of the connectors in use (libvirt-python, XenAPI, pyvmomi...).
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - sirocco.cimi.provider
notes:
  - The provider options at the top level (O(provider), O(uri), O(username), O(password), O(region),
    O(validate_certs), O(timeout), O(provider_options)) are the defaults of every entry of O(providers); without
    O(providers) they describe the one provider to list. Each falls back to its E(SIROCCO_*) environment variable
    as in the modules.
  - Any value of the file may be vault-encrypted (C(!vault)) or a Jinja2 template such as
    C("{{ lookup('ansible.builtin.env', 'XS_PASSWORD') }}").
  - O(fail_on_errors=true) turns a failing provider into a failure of the whole inventory source; for
    C(ansible-inventory) or C(ansible-playbook) to stop on it, also set E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true).
options:
  plugin:
    description: Marks the file as a source for this plugin.
    required: true
    type: str
    choices: [sirocco.cimi.cimi]
  providers:
    description:
      - The providers to list, each a dictionary of provider options. Each takes the provider options of the
        modules (the same names and values as at the top level of this file, see the C(sirocco.cimi.provider)
        documentation fragment), plus C(name) and C(cloud). An entry's own value wins over its cloud's, which
        wins over the top-level one, then the E(SIROCCO_*) environment variable, then the default.
      - C(name) is the provider's label, used in group names, host-name suffixes, C(cimi_provider) and warnings;
        letters, digits, C(_) and C(-). It defaults to C(cloud), else to the provider type when only one entry
        has that type, else to C(<type>_<n>) counting the entries of that type from 1.
      - C(cloud) names an entry of O(clouds_file) holding this provider's options (credentials included).
      - C(timeout) bounds each request to the provider and also the whole listing of that provider.
      - If empty, the top-level provider options describe the one provider to list.
    type: list
    elements: dict
    default: []
  clouds_file:
    description:
      - A YAML file (which may be vault-encrypted) of named provider accounts, read for the entries of
        O(providers) that have a C(cloud), in the style of OpenStack's C(clouds.yaml).
      - 'It holds a C(clouds) dictionary: name -> provider options (C(provider), C(uri), C(username),
        C(password)...). The OpenStack spelling is understood too: C(auth.auth_url), C(auth.username),
        C(auth.password), C(region_name) and C(verify).'
      - If not set, the first of C(~/.config/sirocco/clouds.yaml) and C(/etc/sirocco/clouds.yaml) that exists.
    type: path
    env:
      - name: SIROCCO_CLOUDS_FILE
  hostnames:
    description:
      - How to name each host, by preference; the first one a machine has a value for is used, else its id.
      - C(name) (the machine's name), C(id) (its id on the provider), C(address) (its first IP address),
        C(property:<key>) (the value of one of its properties).
    type: list
    elements: str
    default: [name]
  default_groups:
    description:
      - Which groups every host joins besides the constructed ones (O(groups), O(keyed_groups)).
      - C(provider) (C(provider_<label>)), C(state) (C(state_<state>)), C(location) (C(location_<location>), when
        the connector or the provider's region tells where the machine is), C(properties)
        (C(prop_<key>_<value>)).
    type: list
    elements: str
    choices: [provider, state, location, properties]
    default: [provider, state, location, properties]
  known_hosts_file:
    description:
      - The known_hosts file where the SSH host keys that providers report for their guests are kept (see above);
        lines of other hosts in it are kept as they are.
      - An empty value turns it off; hosts then get no C(ansible_ssh_common_args) and SSH checks them the usual way.
    type: path
    default: ~/.cache/sirocco/known_hosts
    env:
      - name: SIROCCO_KNOWN_HOSTS
  fail_on_errors:
    description:
      - Whether a provider that fails or does not answer within its timeout fails the whole inventory source,
        rather than being left out with a warning.
    type: bool
    default: false
  page_size:
    description:
      - How many machines to ask each provider for at a time; the listing goes on page after page to its end.
      - If not set, each connector pages through its provider in the provider's own page size (EC2 1000 instances
        per call, XenServer and libvirt everything at once), which asks the fewest questions.
    type: int
"""

EXAMPLES = r"""
# lab.cimi.yml: a libvirt host, a XenServer pool and a vCenter, grouped by owner too
plugin: sirocco.cimi.cimi
providers:
  - name: kvm1
    provider: libvirt
    uri: qemu+ssh://root@kvm1.example.org/system
  - name: xen
    cloud: lab-xen              # uri and credentials in ~/.config/sirocco/clouds.yaml
  - name: vc
    provider: vsphere
    uri: https://vcenter.example.org/sdk
    username: inventory@vsphere.local
    password: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      ...
    timeout: 20
hostnames: [address, name]
keyed_groups:
  - key: cimi.properties.owner | default('nobody')
    prefix: owner
groups:
  big: cimi.cpu >= 4
compose:
  memory_mib: cimi.memory // 1024

---
# local.cimi.yml: one provider, described at the top level
plugin: sirocco.cimi.cimi
provider: libvirt
uri: qemu:///system

---
# cached.cimi.yml: each provider account cached for 10 minutes in JSON files
plugin: sirocco.cimi.cimi
providers:
  - {name: xen, provider: xenserver, uri: "https://xs.example.org", username: root,
     password: "{{ lookup('ansible.builtin.env', 'XS_PASSWORD') }}"}
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/sirocco-inventory
cache_timeout: 600
"""

import os
import time
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

try:  # ansible-core 2.19 and later: a vault-encrypted value of a YAML file is an EncryptedString
    from ansible.parsing.vault import EncryptedString as VaultValue
except ImportError:  # 2.16-2.18 (meta/runtime.yml's requires_ansible): AnsibleVaultEncryptedUnicode
    from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode as VaultValue

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.module import (
    connect_error,
    error_message,
    provider_argument_spec,
    scrub,
)
from ansible_collections.sirocco.cimi.plugins.plugin_utils import inventory as inv

CACHE_VERSION = 1
# the modules' provider options (doc fragment sirocco.cimi.provider), the defaults of every entry of ``providers``
PROVIDER_OPTIONS = tuple(provider_argument_spec())
ENTRY_KEYS = ("name", "cloud")
CLOUDS_FILES = ("~/.config/sirocco/clouds.yaml", "/etc/sirocco/clouds.yaml")
# OpenStack clouds.yaml spellings -> ours
_OPENSTACK = {"auth_url": "uri", "region_name": "region", "verify": "validate_certs"}


class _Source:
    """One provider to list: its label, validated options and the secrets to keep out of messages."""

    def __init__(self, label, params, secrets):
        self.label = label
        self.params = params
        self.secrets = secrets
        self.provider = params["provider"]
        self.cache_key = None

    def connect(self):
        p = self.params
        try:
            return registry.open_connection(registry.ConnectionParams.from_options(self.provider, p))
        except InvalidInput as exc:
            raise connect_error(exc) from None


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "sirocco.cimi.cimi"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("cimi.yml", "cimi.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        config = self._read_config_data(path)
        try:
            hostnames = inv.check_hostnames(self.get_option("hostnames"))
            sources = self._sources(config)
        except InvalidInput as exc:
            raise AnsibleParserError("%s: %s" % (path, exc.message)) from None
        use_cache = bool(self.get_option("cache"))
        base_key = self.get_cache_key(path)
        results, wanted = {}, []
        for source in sources:
            p = source.params
            source.cache_key = inv.cache_key(base_key, source.provider, p["uri"], p["username"], p["region"],
                                             p["provider_options"])
            cached = self._cached(source) if use_cache and cache else None
            if isinstance(cached, Mapping) and cached.get("version") == CACHE_VERSION:
                results[source.label] = cached
            else:
                wanted.append(source)
        with inv.collector_paused():
            started = time.monotonic()
            failures = self._fetch(wanted, results, use_cache)
            self.display.vvv("sirocco.cimi.cimi: %d of %d providers asked in %.2f s"
                             % (len(wanted), len(sources), time.monotonic() - started))
            if failures and self.get_option("fail_on_errors"):
                raise AnsibleError("; ".join(failures))
            for failure in failures:
                self.display.warning(failure)
            started = time.monotonic()
            self._populate(sources, results, hostnames)
            self.display.vvv("sirocco.cimi.cimi: %d hosts added in %.2f s"
                             % (sum(len(r["machines"]) for r in results.values()), time.monotonic() - started))

    def _cached(self, source):
        """A provider's cache entry, or None (absent, expired, of another format, or unreadable: asked again)."""
        try:
            return self._cache.get(source.cache_key)
        except Exception as exc:  # noqa: BLE001 - a broken cache entry must not lose the provider
            self.display.vvv("sirocco.cimi.cimi: cache entry of provider '%s' unreadable (%s): asking it"
                             % (source.label, exc))
            return None

    # -- configuration ---------------------------------------------------------------------
    def _sources(self, config):
        """The providers of this file, each with its options merged, resolved and validated."""
        top = {key: self._resolve(config[key]) for key in PROVIDER_OPTIONS if key in config}
        entries = self.get_option("providers") or [{}]
        clouds = None
        merged = []
        for i, entry in enumerate(entries):
            where = "providers[%d]" % i
            if not isinstance(entry, Mapping):
                raise InvalidInput("%s: expected a dictionary of provider options" % where, attribute="providers")
            entry = {key: self._resolve(value) for key, value in entry.items()}
            unknown = sorted(set(entry) - set(PROVIDER_OPTIONS) - set(ENTRY_KEYS))
            if unknown:
                raise InvalidInput("%s: unknown option(s) %s (known: %s)"
                                   % (where, ", ".join(map(str, unknown)),
                                      ", ".join(sorted(PROVIDER_OPTIONS + ENTRY_KEYS))), attribute="providers")
            params = dict(top)
            if entry.get("cloud"):
                if clouds is None:
                    clouds = self._clouds()
                if entry["cloud"] not in clouds:
                    raise InvalidInput("%s.cloud: '%s' is not in the clouds file (it has: %s)"
                                       % (where, entry["cloud"], ", ".join(sorted(clouds)) or "none"),
                                       attribute="cloud")
                params.update(clouds[entry["cloud"]])
            params.update({key: value for key, value in entry.items() if value is not None})
            merged.append((where, params))
        validated = []
        for where, params in merged:
            extra = {key: params.pop(key, None) for key in ENTRY_KEYS}
            result = ArgumentSpecValidator(provider_argument_spec()).validate(params)
            secrets = [str(s) for s in result._no_log_values if s]
            if result.error_messages:
                raise InvalidInput("%s: %s" % (where, scrub("; ".join(result.error_messages), secrets)),
                                   attribute="providers")
            values = dict(result.validated_parameters, **extra)
            validated.append((values, secrets))
        labels = inv.default_labels([values for values, _secrets in validated])
        return [_Source(label, values, secrets) for label, (values, secrets) in zip(labels, validated, strict=True)]

    def _resolve(self, value):
        """A value of the file as plain Python data (no Ansible tags, which provider libraries cannot send):
        vault-encrypted strings decrypted, templates rendered."""
        if isinstance(value, VaultValue):
            return str.__str__(str(value))
        if isinstance(value, Mapping):
            return {self._resolve(key): self._resolve(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._resolve(item) for item in value]
        if isinstance(value, str):
            if self.templar.is_template(value):
                self.templar.available_variables = self._vars or {}
                return self._resolve(self.templar.template(value))
            return str.__str__(value)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        return value

    def _clouds(self):
        """``{name: provider options}`` from the clouds file (OpenStack spellings translated)."""
        path = self.get_option("clouds_file")
        if not path:
            path = next((p for p in map(os.path.expanduser, CLOUDS_FILES) if os.path.isfile(p)), None)
            if path is None:
                raise InvalidInput("a provider names a cloud, but there is no clouds file (clouds_file, "
                                   "SIROCCO_CLOUDS_FILE, %s)" % ", ".join(CLOUDS_FILES), attribute="clouds_file")
        try:
            data = self.loader.load_from_file(path, cache="none")
        except Exception as exc:  # noqa: BLE001 - the loader's message names the file and what is wrong
            raise InvalidInput("clouds_file: cannot read %s: %s" % (path, exc), attribute="clouds_file") from None
        clouds = (data or {}).get("clouds") if isinstance(data, Mapping) else None
        if not isinstance(clouds, Mapping):
            raise InvalidInput("clouds_file: %s has no 'clouds' dictionary" % path, attribute="clouds_file")
        out = {}
        for name, cloud in clouds.items():
            if not isinstance(cloud, Mapping):
                raise InvalidInput("clouds_file: clouds.%s is not a dictionary" % name, attribute="clouds_file")
            cloud = self._resolve(dict(cloud))
            auth = cloud.pop("auth", None) or {}
            options = {_OPENSTACK.get(key, key): value for key, value in dict(auth, **cloud).items()}
            out[str(name)] = {key: value for key, value in options.items() if key in PROVIDER_OPTIONS}
        return out

    # -- fetching ----------------------------------------------------------------------------
    def _fetch(self, sources, results, use_cache):
        """List ``sources`` at once into ``results``; the failures' messages, in the order of the file."""
        page_size = self.get_option("page_size")
        want_location = "location" in self.get_option("default_groups")
        calls = {s.label: (inv.fetch_provider(s.connect, page_size, s.params["timeout"], s.params["region"],
                                              want_location), s.params["timeout"]) for s in sources}
        outcomes = inv.fetch_all(calls) if calls else {}
        failures = []
        for source in sources:
            outcome = outcomes[source.label]
            what = "provider '%s' (%s)" % (source.label, source.provider)
            if outcome.timed_out:
                failures.append("%s left out: no answer within its timeout of %s s"
                                % (what, source.params["timeout"]))
            elif outcome.error is not None:
                failures.append("%s left out: %s" % (what, error_message(outcome.error, secrets=source.secrets)))
            else:
                self.display.vvv("sirocco.cimi.cimi: provider '%s' (%s): %d machines in %.2f s"
                                 % (source.label, source.provider, len(outcome.value["machines"]), outcome.seconds))
                value = dict(outcome.value, version=CACHE_VERSION)
                results[source.label] = value
                if use_cache:
                    self._cache[source.cache_key] = value
        return failures

    # -- hosts and groups -----------------------------------------------------------------------
    def _populate(self, sources, results, hostnames):
        found = []
        for source in sources:
            result = results.get(source.label)
            if result is None:
                continue
            for machine in sorted(result["machines"], key=lambda m: str(m.get("id"))):
                found.append((source, result.get("location"), machine, inv.preferred_hostname(machine, hostnames)))
        names = inv.assign_hostnames([(s.label, m["id"], name) for s, _loc, m, name in found])
        kinds = self.get_option("default_groups")
        known_hosts = self.get_option("known_hosts_file")
        if known_hosts:
            known_hosts = os.path.expanduser(known_hosts)
            inv.write_known_hosts(known_hosts, [machine for _s, _l, machine, _p in found])
        strict = self.get_option("strict")
        compose, groups, keyed = self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups")
        for (source, location, machine, _preferred), host in zip(found, names, strict=True):
            location = machine.get("location") or location
            self.inventory.add_host(host)
            hostvars = {"cimi": machine, "cimi_id": machine["id"], "cimi_state": machine.get("state"),
                        "cimi_provider": source.label, "cimi_provider_type": source.provider}
            if location:
                hostvars["cimi_location"] = location
            for key, value in inv.connection_vars(machine, known_hosts).items():
                if key != "ansible_host" or value != host:
                    hostvars[key] = value
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            for group in inv.default_groups(source.label, machine, location, kinds):
                self.inventory.add_group(group)
                self.inventory.add_child(group, host)
            if compose or groups or keyed:
                self._set_composite_vars(compose, hostvars, host, strict=strict)
                self._add_host_to_composed_groups(groups, hostvars, host, strict=strict)
                self._add_host_to_keyed_groups(keyed, hostvars, host, strict=strict)
