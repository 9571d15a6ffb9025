# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A STAND-IN for the XenServer / XCP-ng management API (XAPI). It is NOT XenServer.

No XAPI simulator can be installed on a development machine, so the tests of
Sirocco's ``xenserver`` connector run against this small server instead. It
speaks XAPI's real wire protocol so that the unmodified ``XenAPI`` package
(PyPI) talks to it: XML-RPC over HTTP, every result wrapped in
``{"Status": "Success", "Value": ...}`` or ``{"Status": "Failure",
"ErrorDescription": [code, param, ...]}``, sessions, ``OpaqueRef:<uuid>``
references, 64-bit integers sent as strings, ``Async.*`` calls returning tasks,
``event.from``; and XAPI's HTTP handlers for disk contents, ``PUT /import_raw_vdi``
(raw, xapi's chunked sparse protocol, VHD read as vhd-tool reads a stream) and
``GET /export_raw_vdi`` (raw), answering and failing their task as xapi's
``import_raw_vdi.ml``/``export_raw_vdi.ml`` do (README.md). Field names, enum
spellings, power-state rules and error codes follow the XenAPI reference and
xapi's own lifecycle checks; everything else (hypervisor, storage back-ends,
guest agents) is simulated in memory. State
lives in this process only and is lost when it stops.

Run: ``python server.py --port 0 --user root --password secret``; it prints
``XAPI stand-in listening on http://127.0.0.1:PORT/`` once ready (see
``control.py`` for the pytest helper).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import calendar
import copy
import hashlib
import inspect
import itertools
import math
import signal
import struct
import sys
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
import xmlrpc.client
from http.cookies import CookieError, SimpleCookie
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlsplit
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

NULL = "OpaqueRef:NULL"
GIB = 1024 ** 3
MIB = 1024 ** 2
CONTENT_BLOCK = MIB  # disk contents are kept in blocks of this size; never-written ones are zeroes

HALTED, PAUSED, RUNNING, SUSPENDED = "Halted", "Paused", "Running", "Suspended"
ALL_POWER_STATES = (HALTED, PAUSED, SUSPENDED, RUNNING)

# xapi_vm_lifecycle.allowed_power_states: the power states each VM operation needs.
ALLOWED_POWER_STATES = {
    "changing_memory_limits": (HALTED,), "changing_static_range": (HALTED,), "changing_VCPUs": (HALTED,),
    "make_into_template": (HALTED,), "provision": (HALTED,), "start": (HALTED,), "start_on": (HALTED,),
    "unpause": (PAUSED,),
    "resume": (SUSPENDED,), "resume_on": (SUSPENDED,),
    "clean_reboot": (RUNNING,), "clean_shutdown": (RUNNING,), "data_source_op": (RUNNING,),
    "changing_VCPUs_live": (RUNNING,), "changing_memory_live": (RUNNING,),
    "pause": (RUNNING,), "suspend": (RUNNING,), "pool_migrate": (RUNNING,),
    "changing_dynamic_range": (HALTED, RUNNING),
    "clone": (HALTED,), "copy": (HALTED,),
    "destroy": (HALTED, SUSPENDED), "export": (HALTED, SUSPENDED),
    "hard_reboot": (PAUSED, RUNNING),
    "checkpoint": (PAUSED, SUSPENDED, RUNNING), "hard_shutdown": (PAUSED, SUSPENDED, RUNNING),
    "snapshot": ALL_POWER_STATES, "revert": ALL_POWER_STATES, "metadata_export": ALL_POWER_STATES,
}
# What a template (not a snapshot) may still do; destroy unless it is a default template.
TEMPLATE_OPERATIONS = ("changing_dynamic_range", "changing_static_range", "changing_memory_limits",
                       "changing_shadow_memory", "changing_VCPUs", "clone", "copy", "export",
                       "metadata_export", "provision")
SNAPSHOT_OPERATIONS = ("revert", "clone", "copy", "export", "destroy", "hard_shutdown", "metadata_export")
CONTROL_DOMAIN_OPERATIONS = ("data_source_op", "changing_memory_live", "metadata_export",
                             "changing_dynamic_range", "start")
LISTED_OPERATIONS = ("snapshot", "copy", "clone", "revert", "checkpoint", "start", "start_on", "pause",
                     "unpause", "clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot", "suspend",
                     "resume", "resume_on", "export", "destroy", "provision", "make_into_template",
                     "changing_static_range", "changing_dynamic_range", "changing_VCPUs", "changing_VCPUs_live")

VDI_TYPES = ("system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata", "redo_log",
             "rrd", "pvs_cache", "cbt_metadata")
EVENT_CLASSES = ("session", "pool", "host", "host_metrics", "host_cpu", "VM", "VM_metrics",
                 "VM_guest_metrics", "SM", "SR", "VDI", "VBD", "VIF", "network", "task")

# The storage drivers (SM objects) of the SR types the stand-in holds, with the capabilities their sm drivers
# declare (xapi turns "NAME/N" into the feature NAME at version N): nfs as NFSSR (no online resize), iso as
# ISOSR, lvm as the local-LVM driver LVMSR, which declared VDI_RESIZE_ONLINE.
SM_DRIVERS = {
    "nfs": ("NFS VHD", ["SR_PROBE", "SR_UPDATE", "SR_CACHING", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH",
                        "VDI_DETACH", "VDI_UPDATE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_GENERATE_CONFIG",
                        "VDI_MIRROR", "VDI_RESET_ON_BOOT/2", "ATOMIC_PAUSE", "VDI_CONFIG_CBT", "VDI_ACTIVATE",
                        "VDI_DEACTIVATE", "THIN_PROVISIONING", "VDI_READ_CACHING"]),
    "iso": ("ISO", ["VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "SR_SCAN", "SR_ATTACH", "SR_DETACH"]),
    "lvm": ("LVM", ["SR_PROBE", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "VDI_RESIZE",
                    "VDI_RESIZE_ONLINE"]),
}
# VDI operations listed in allowed_operations, with the SM feature each needs and whether it may run while a
# VBD has the VDI plugged (xapi_vdi.check_operation_error: resize_online, snapshot and clone may).
VDI_OPERATIONS = {"resize": ("VDI_RESIZE", False), "resize_online": ("VDI_RESIZE_ONLINE", True),
                  "destroy": ("VDI_DELETE", False), "snapshot": ("VDI_SNAPSHOT", True), "clone": ("VDI_CLONE", True)}

# Fields a plain set_<field> may change (maps also get add_to_/remove_from_); the
# rest are read-only or have their own validated setter below.
WRITABLE = {
    "VM": ("name_label", "name_description", "other_config", "xenstore_data", "platform", "tags",
           "blocked_operations", "VCPUs_params", "actions_after_shutdown", "actions_after_reboot",
           "actions_after_crash", "PV_bootloader", "PV_kernel", "PV_ramdisk", "PV_args",
           "PV_bootloader_args", "HVM_boot_policy", "HVM_boot_params", "affinity", "suspend_SR",
           "is_a_template", "user_version", "ha_always_run", "recommendations"),
    "VDI": ("name_label", "name_description", "other_config", "xenstore_data", "sm_config", "tags",
            "on_boot", "allow_caching"),
    "VBD": ("other_config", "bootable", "mode", "userdevice", "qos_algorithm_type", "qos_algorithm_params"),
    "VIF": ("other_config", "qos_algorithm_type", "qos_algorithm_params", "locking_mode"),
    "SR": ("name_label", "name_description", "other_config", "tags", "sm_config"),
    "SM": ("other_config",),
    "network": ("name_label", "name_description", "other_config", "tags", "MTU"),
    "host": ("name_label", "name_description", "other_config", "tags", "logging"),
    "pool": ("name_label", "name_description", "other_config", "tags", "default_SR", "suspend_image_SR",
             "crash_dump_SR"),
    "host_metrics": ("other_config",), "host_cpu": ("other_config",), "VM_metrics": ("other_config",),
    "VM_guest_metrics": ("other_config",), "task": ("other_config",),
}


class XapiError(Exception):
    """A XAPI failure: ``ErrorDescription`` = [code, params...] (all strings)."""

    def __init__(self, code, *params):
        super().__init__(code)
        self.description = [code] + [str(p) for p in params]


class DeviceError(Exception):
    """A read or write a VDI's block device refuses (past its end): vhd-tool fails on it."""


def now():
    return xmlrpc.client.DateTime(time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()))


EPOCH = xmlrpc.client.DateTime("19700101T00:00:00Z")


def new_ref():
    return "OpaqueRef:" + str(uuidlib.uuid4())


def new_uuid():
    return str(uuidlib.uuid4())


def as_int(value, field="value"):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise XapiError("FIELD_TYPE_ERROR", field) from None


def as_bool(value, field="value"):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise XapiError("FIELD_TYPE_ERROR", field)


def mac_address(seed):
    digest = hashlib.sha1(seed.encode()).digest()
    return "%02x:%02x:%02x:%02x:%02x:%02x" % ((digest[0] & 0xFC) | 0x02, *digest[1:6])


class Xapi:
    """The in-memory pool and every API call. Method ``api_<Class>__<name>`` serves ``<Class>.<name>``."""

    def __init__(self, username, password, hosts=2, seed_vms=0, async_delay=0.0):
        self.username = username
        self.password = password
        self.async_delay = async_delay
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.db = {cls: {} for cls in EVENT_CLASSES}
        self.events = []
        self.event_id = itertools.count(1)
        self.domid = itertools.count(1)
        self.contents = {}  # VDI ref -> {block index: bytearray(BLOCK)}: what the HTTP handlers wrote
        with self.lock:
            self._seed(hosts, seed_vms)

    # -- the store -------------------------------------------------------
    def _new(self, cls, record, ref=None):
        ref = ref or new_ref()
        record.setdefault("uuid", new_uuid())
        self.db[cls][ref] = record
        self._event(cls, ref, "add")
        return ref

    def _del(self, cls, ref):
        self._event(cls, ref, "del")
        del self.db[cls][ref]

    def _rec(self, cls, ref):
        try:
            return self.db[cls][ref]
        except (KeyError, TypeError):
            raise XapiError("HANDLE_INVALID", cls, ref) from None

    def _mod(self, cls, ref):
        self._event(cls, ref, "mod")

    def _event(self, cls, ref, operation):
        stamp = time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime())
        self.events.append({"id": str(next(self.event_id)), "timestamp": stamp,
                            "class": cls.lower(), "operation": operation, "ref": ref,
                            "snapshot": self._public(cls, ref)})
        del self.events[:-10000]
        self.changed.notify_all()

    def _public(self, cls, ref):
        record = copy.deepcopy(self.db[cls][ref])
        if cls == "VM":
            record["allowed_operations"] = [op for op in LISTED_OPERATIONS if self._vm_error(ref, op) is None]
        if cls == "VDI":
            record["allowed_operations"] = [op for op in VDI_OPERATIONS if self._vdi_error(ref, op) is None]
        if cls == "host_metrics":
            host = next((h for h, r in self.db["host"].items() if r["metrics"] == ref), None)
            if host is not None:
                record["memory_free"] = str(self._host_free(host))
        return record

    # -- seed ------------------------------------------------------------
    def _seed(self, hosts, seed_vms):
        pool = self._new("pool", {"name_label": "sirocco-standin-pool", "name_description": "XAPI stand-in pool",
                                  "master": NULL, "default_SR": NULL, "suspend_image_SR": NULL,
                                  "crash_dump_SR": NULL, "other_config": {}, "ha_enabled": False,
                                  "tags": [], "restrictions": {}, "cpu_info": {}})
        shared = self._new("SR", self._sr_record("NFS virtual disk storage", "nfs", "user", True, 2048 * GIB))
        iso = self._new("SR", self._sr_record("ISO library", "iso", "iso", True, 64 * GIB))
        self._new("SR", self._sr_record("Local storage", "lvm", "user", False, 512 * GIB))
        for sr_type, (name, capabilities) in SM_DRIVERS.items():
            self._new("SM", self._sm_record(sr_type, name, capabilities))
        self.db["pool"][pool]["default_SR"] = shared
        self.db["pool"][pool]["suspend_image_SR"] = shared
        self.db["pool"][pool]["crash_dump_SR"] = shared
        self._new("VDI", self._vdi_record(iso, "debian-12.iso", 700 * MIB, "user", read_only=True))
        self._new("network", {"name_label": "Pool-wide network associated with eth0", "name_description": "",
                              "MTU": "1500", "bridge": "xenbr0", "other_config": {}, "VIFs": [], "PIFs": [],
                              "managed": True, "tags": [], "blobs": {}, "default_locking_mode": "unlocked",
                              "assigned_ips": {}, "purpose": [], "allowed_operations": [],
                              "current_operations": {}})
        self._new("network", {"name_label": "Host internal management network",
                              "name_description": "Network on which guests will be assigned a private "
                                                  "link-local IP address which can be used to talk XenAPI",
                              "MTU": "1500", "bridge": "xenapi", "VIFs": [], "PIFs": [], "managed": True,
                              "other_config": {"is_guest_installer_network": "true",
                                               "is_host_internal_management_network": "true"},
                              "tags": [], "blobs": {}, "default_locking_mode": "unlocked", "assigned_ips": {},
                              "purpose": [], "allowed_operations": [], "current_operations": {}})
        shapes = [(16, 2400, 64), (8, 2100, 32), (4, 1800, 16), (32, 2600, 256)]
        for i in range(max(1, hosts)):
            cpus, mhz, gib = shapes[i % len(shapes)]
            host = self._seed_host("xs-host-%d" % (i + 1), "10.0.0.%d" % (11 + i), cpus, mhz, gib)
            if i == 0:
                self.db["pool"][pool]["master"] = host
        self._seed_templates(shared)
        for i in range(seed_vms):
            tpl = next(ref for ref, r in self.db["VM"].items() if r["name_label"] == "tiny-linux")
            vm = self.api_VM__clone(None, tpl, "seed-vm-%03d" % i)
            self.api_VM__provision(None, vm)
            if i % 2 == 0:
                self.api_VM__start(None, vm, False, False)

    @staticmethod
    def _sr_record(name, sr_type, content_type, shared, size):
        return {"name_label": name, "name_description": "", "allowed_operations": [], "current_operations": {},
                "VDIs": [], "PBDs": [], "virtual_allocation": "0", "physical_utilisation": "0",
                "physical_size": str(size), "type": sr_type, "content_type": content_type, "shared": shared,
                "other_config": {}, "tags": [], "sm_config": {}, "blobs": {}, "local_cache_enabled": False,
                "introduced_by": NULL, "clustered": False, "is_tools_sr": False}

    @staticmethod
    def _sm_record(sr_type, name, capabilities):
        features = dict(c.split("/", 1) if "/" in c else (c, "1") for c in capabilities)
        return {"name_label": name, "name_description": "SR plugin of type %s (stand-in)" % sr_type, "type": sr_type,
                "vendor": "XAPI stand-in", "copyright": "", "version": "1.0", "required_api_version": "1.0",
                "configuration": {}, "capabilities": [c.split("/")[0] for c in capabilities], "features": features,
                "other_config": {}, "driver_filename": "/opt/xensource/sm/%sSR" % sr_type.upper(),
                "required_cluster_stack": []}

    @staticmethod
    def _vdi_record(sr, name, size, vdi_type, read_only=False, other_config=None, description=""):
        return {"name_label": name, "name_description": description, "allowed_operations": [],
                "current_operations": {}, "SR": sr, "VBDs": [], "crash_dumps": [], "virtual_size": str(size),
                "physical_utilisation": str(size // 8), "type": vdi_type, "sharable": False,
                "read_only": read_only, "other_config": dict(other_config or {}), "storage_lock": False,
                "location": new_uuid(), "managed": True, "missing": False, "parent": NULL, "xenstore_data": {},
                "sm_config": {}, "is_a_snapshot": False, "snapshot_of": NULL, "snapshots": [],
                "snapshot_time": EPOCH, "tags": [], "allow_caching": False, "on_boot": "persist",
                "metadata_of_pool": NULL, "metadata_latest": False, "is_tools_iso": False, "cbt_enabled": False}

    def _seed_host(self, name, address, cpus, mhz, gib):
        metrics = self._new("host_metrics", {"memory_total": str(gib * GIB), "memory_free": "0", "live": True,
                                             "last_updated": now(), "other_config": {}})
        host = new_ref()
        cpu_refs = [self._new("host_cpu", {"host": host, "number": str(n), "vendor": "GenuineIntel",
                                           "speed": str(mhz), "modelname": "Intel(R) Xeon(R) stand-in CPU",
                                           "family": "6", "model": "85", "stepping": "4", "flags": "fpu vme",
                                           "features": "", "utilisation": 0.0, "other_config": {}})
                    for n in range(cpus)]
        self._new("host", {
            "name_label": name, "name_description": "Default install", "memory_overhead": str(160 * MIB),
            "allowed_operations": ["provision", "evacuate", "shutdown", "reboot", "power_on", "vm_start",
                                   "vm_resume", "vm_migrate"],
            "current_operations": {}, "API_version_major": "2", "API_version_minor": "21",
            "API_version_vendor": "XenSource", "API_version_vendor_implementation": {}, "enabled": True,
            "software_version": {"product_brand": "XAPI stand-in", "product_version": "8.3.0",
                                 "platform_name": "XCP", "xapi": "24.19", "xen": "4.17.0",
                                 "hostname": name, "note": "Sirocco test stand-in, not XenServer"},
            "other_config": {}, "capabilities": ["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_64"],
            "cpu_configuration": {}, "sched_policy": "credit", "supported_bootloaders": ["pygrub", "eliloader"],
            "resident_VMs": [], "logging": {}, "PIFs": [], "suspend_image_sr": NULL, "crash_dump_sr": NULL,
            "crashdumps": [], "patches": [], "updates": [], "PBDs": [], "host_CPUs": cpu_refs,
            "cpu_info": {"cpu_count": str(cpus), "socket_count": str(max(1, cpus // 8)),
                         "vendor": "GenuineIntel", "speed": "%d.000" % mhz,
                         "modelname": "Intel(R) Xeon(R) stand-in CPU", "family": "6", "model": "85",
                         "stepping": "4", "flags": "fpu vme", "features": ""},
            "hostname": name, "address": address, "metrics": metrics, "license_params": {},
            "ha_statefiles": [], "ha_network_peers": [], "blobs": {}, "tags": [], "external_auth_type": "",
            "external_auth_service_name": "", "external_auth_configuration": {}, "edition": "xcp-ng",
            "license_server": {}, "bios_strings": {}, "power_on_mode": "", "power_on_config": {},
            "local_cache_sr": NULL, "chipset_info": {}, "PCIs": [], "PGPUs": [], "PUSBs": [],
            "ssl_legacy": False, "guest_VCPUs_params": {}, "display": "enabled",
            "virtual_hardware_platform_versions": ["0", "1", "2"], "control_domain": NULL,
            "updates_requiring_reboot": [], "features": [], "iscsi_iqn": "", "multipathing": False,
            "uefi_certificates": "", "certificates": [], "editions": ["xcp-ng"], "pending_guidances": [],
            "tls_verification_enabled": True,
        }, ref=host)
        dom0 = self._new("VM", self._vm_record("Control domain on host: %s" % name, 1 * GIB, 4,
                                               is_control_domain=True))
        record = self.db["VM"][dom0]
        record.update(power_state=RUNNING, resident_on=host, domid="0")
        self.db["host"][host]["resident_VMs"].append(dom0)
        self.db["host"][host]["control_domain"] = dom0
        return host

    def _seed_templates(self, sr):
        disks = ('<provision><disk device="0" size="%d" sr="" bootable="true" type="system"/></provision>'
                 % (10 * GIB))
        debian = self._new("VM", self._vm_record("Debian Bookworm 12", 512 * MIB, 1, template=True, other_config={
            "default_template": "true", "linux_template": "true", "install-methods": "cdrom,nfs,http,ftp",
            "disks": disks}, description="Template that allows VM installation from Xen-aware Debian-based "
                                         "distros. To use this template from the CLI, install your VM using "
                                         "vm-install, then set other-config-install-repository to the path "
                                         "to your network repository, e.g. http://<server>/<path>"))
        self.db["VM"][debian]["is_default_template"] = True
        other = self._new("VM", self._vm_record(
            "Other install media", 256 * MIB, 1, template=True,
            other_config={"default_template": "true", "install-methods": "cdrom"},
            description="Template which allows VM installation from install media"))
        self.db["VM"][other]["is_default_template"] = True
        tiny = self._new("VM", self._vm_record("tiny-linux", 128 * MIB, 1, template=True,
                                               description="A small prepared Linux image (custom template)"))
        vdi = self._new("VDI", self._vdi_record(sr, "tiny-linux root", 1 * GIB, "system"))
        self._attach_new_vbd(tiny, vdi, "0", bootable=True)
        self._recount_sr(sr)

    @staticmethod
    def _vm_record(name, memory, vcpus, template=False, is_control_domain=False, other_config=None,
                   description=""):
        return {
            "name_label": name, "name_description": description, "allowed_operations": [],
            "current_operations": {}, "power_state": HALTED, "user_version": "1", "is_a_template": template,
            "is_default_template": False, "suspend_VDI": NULL, "resident_on": NULL,
            "scheduled_to_be_resident_on": NULL, "affinity": NULL, "memory_overhead": str(memory // 128),
            "memory_target": "0", "memory_static_max": str(memory), "memory_dynamic_max": str(memory),
            "memory_dynamic_min": str(memory), "memory_static_min": str(min(memory, 128 * MIB)),
            "VCPUs_params": {}, "VCPUs_max": str(vcpus), "VCPUs_at_startup": str(vcpus),
            "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "restart", "consoles": [], "VIFs": [], "VBDs": [], "VUSBs": [],
            "crash_dumps": [], "VTPMs": [], "PV_bootloader": "", "PV_kernel": "", "PV_ramdisk": "", "PV_args": "",
            "PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
            "HVM_boot_params": {"order": "cdn"}, "HVM_shadow_multiplier": 1.0,
            "platform": {"viridian": "false", "acpi": "1", "apic": "true", "pae": "true", "nx": "true"},
            "PCI_bus": "", "other_config": dict(other_config or {}), "domid": "-1", "domarch": "",
            "last_boot_CPU_flags": {}, "is_control_domain": is_control_domain, "metrics": NULL,
            "guest_metrics": NULL, "last_booted_record": "", "recommendations": "", "xenstore_data": {},
            "ha_always_run": False, "ha_restart_priority": "", "is_a_snapshot": False, "snapshot_of": NULL,
            "snapshots": [], "snapshot_time": EPOCH, "transportable_snapshot_id": "", "blobs": {}, "tags": [],
            "blocked_operations": {}, "snapshot_info": {}, "snapshot_metadata": "", "parent": NULL,
            "children": [], "bios_strings": {}, "protection_policy": NULL, "is_snapshot_from_vmpp": False,
            "snapshot_schedule": NULL, "is_vmss_snapshot": False, "appliance": NULL, "start_delay": "0",
            "shutdown_delay": "0", "order": "0", "VGPUs": [], "attached_PCIs": [], "suspend_SR": NULL,
            "version": "0", "generation_id": "", "hardware_platform_version": "0", "has_vendor_device": False,
            "requires_reboot": False, "reference_label": "", "domain_type": "hvm", "NVRAM": {},
            "pending_guidances": [],
        }

    def _new_vm(self, record):
        ref = self._new("VM", record)
        metrics = self._new("VM_metrics", {
            "memory_actual": "0", "VCPUs_number": "0", "VCPUs_utilisation": {}, "VCPUs_CPU": {},
            "VCPUs_params": {}, "VCPUs_flags": {}, "state": [], "start_time": EPOCH, "install_time": now(),
            "last_updated": EPOCH, "other_config": {}, "hvm": False, "nested_virt": False, "nomigrate": False,
            "current_domain_type": "unspecified"})
        record["metrics"] = metrics
        return ref

    def _recount_sr(self, sr):
        record = self.db["SR"][sr]
        vdis = [self.db["VDI"][v] for v in record["VDIs"] if v in self.db["VDI"]]
        record["virtual_allocation"] = str(sum(int(v["virtual_size"]) for v in vdis))
        record["physical_utilisation"] = str(sum(int(v["physical_utilisation"]) for v in vdis))

    # -- dispatch ----------------------------------------------------------
    def dispatch(self, method, params):
        try:
            value = self.call(method, list(params))
        except XapiError as err:
            return {"Status": "Failure", "ErrorDescription": err.description}
        except Exception as err:  # a bug of the stand-in: report it the way xapi does
            text = "%s: %s" % (type(err).__name__, err)
            return {"Status": "Failure", "ErrorDescription": ["INTERNAL_ERROR", text]}
        return {"Status": "Success", "Value": "" if value is None else value}

    def call(self, method, params):
        if method in ("session.login_with_password", "session.slave_local_login_with_password"):
            return self.login(method, params)
        if method.startswith("system."):
            raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
        if not params:
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "1", "0")
        session = params[0]
        with self.lock:
            if session not in self.db["session"]:
                raise XapiError("SESSION_INVALID", session)
            self.db["session"][session]["last_active"] = now()
        if method.startswith("Async."):
            return self.start_task(session, method[len("Async."):], params[1:])
        handler = self._handler(method)
        self._check_arity(method, handler, params)
        if method == "event.from":  # waits without holding the lock
            return handler(*params)
        with self.lock:
            return handler(*params)

    def login(self, method, params):
        if len(params) not in (2, 3, 4):
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "4", str(len(params)))
        username, password = params[0], params[1]
        if username != self.username or password != self.password:
            raise XapiError("SESSION_AUTHENTICATION_FAILED", username,
                            "Authentication failure")
        with self.lock:
            master = next(r["master"] for r in self.db["pool"].values())
            return self._new("session", {"this_host": master, "this_user": NULL, "last_active": now(),
                                         "pool": False, "other_config": {}, "is_local_superuser": True,
                                         "subject": NULL, "validation_time": now(), "auth_user_sid": "",
                                         "auth_user_name": username, "rbac_permissions": [], "tasks": [],
                                         "parent": NULL, "originator": str(params[3]) if len(params) > 3 else "",
                                         "client_certificate": False})

    def _handler(self, method):
        cls, name = method.split(".", 1) if "." in method else (method, "")
        explicit = getattr(self, "api_%s__%s" % (cls, name), None)
        if explicit is not None:
            return explicit
        if cls not in self.db or cls == "session" and name not in ("get_record", "get_uuid", "get_this_host"):
            raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
        return self._generic(cls, name, method)

    @staticmethod
    def _check_arity(method, handler, params):
        sig = inspect.signature(handler)
        positional = [p for p in sig.parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
            return
        required = len([p for p in positional if p.default is p.empty])
        if not required <= len(params) <= len(positional):
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, str(len(positional)), str(len(params)))

    def _generic(self, cls, name, method):
        table = self.db[cls]

        def get_all(session):
            return list(table)

        def get_all_records(session):
            return {ref: self._public(cls, ref) for ref in table}

        def get_record(session, ref):
            self._rec(cls, ref)
            return self._public(cls, ref)

        def get_by_uuid(session, uuid):
            for ref, record in table.items():
                if record["uuid"] == uuid:
                    return ref
            raise XapiError("UUID_INVALID", cls, uuid)

        def get_by_name_label(session, label):
            return [ref for ref, record in table.items() if record.get("name_label") == label]

        simple = {"get_all": get_all, "get_all_records": get_all_records, "get_record": get_record,
                  "get_by_uuid": get_by_uuid}
        if name in simple:
            return simple[name]
        if name == "get_by_name_label" and cls not in ("session", "host_metrics", "host_cpu", "VM_metrics",
                                                       "VM_guest_metrics", "VBD", "VIF"):
            return get_by_name_label
        writable = WRITABLE.get(cls, ())
        for prefix in ("get_", "set_", "add_to_", "remove_from_"):
            if not name.startswith(prefix):
                continue
            field = name[len(prefix):]
            if prefix == "get_":
                if not table or field not in next(iter(table.values())):
                    break

                def getter(session, ref, field=field):
                    self._rec(cls, ref)
                    return self._public(cls, ref)[field]
                return getter
            if field not in writable:
                break
            if prefix == "set_":
                def setter(session, ref, value, field=field):
                    record = self._rec(cls, ref)
                    current = record[field]
                    if isinstance(current, dict):
                        if not isinstance(value, dict):
                            raise XapiError("FIELD_TYPE_ERROR", field)
                        value = {str(k): str(v) for k, v in value.items()}
                    elif isinstance(current, bool):
                        value = as_bool(value, field)
                    elif isinstance(current, list):
                        value = [str(v) for v in value]
                    else:
                        value = str(value)
                    record[field] = value
                    self._mod(cls, ref)
                return setter
            if not table or not isinstance(next(iter(table.values())).get(field), dict):
                break
            if prefix == "add_to_":
                def add_to(session, ref, key, value, field=field):
                    record = self._rec(cls, ref)
                    if key in record[field]:
                        raise XapiError("MAP_DUPLICATE_KEY", cls, field, ref, key)
                    record[field][str(key)] = str(value)
                    self._mod(cls, ref)
                return add_to

            def remove_from(session, ref, key, field=field):
                record = self._rec(cls, ref)
                record[field].pop(key, None)
                self._mod(cls, ref)
            return remove_from
        raise XapiError("MESSAGE_METHOD_UNKNOWN", method)

    # -- tasks -----------------------------------------------------------
    def start_task(self, session, method, params):
        handler = self._handler(method)
        self._check_arity("Async." + method, handler, [session] + list(params))
        with self.lock:
            task = self._new_task(session, "Async." + method)

        def run():
            if self.async_delay:
                time.sleep(self.async_delay)
            with self.lock:
                record = self.db["task"].get(task)
                if record is None:
                    return
                try:
                    value = handler(session, *params)
                except XapiError as err:
                    record.update(status="failure", error_info=err.description)
                except Exception as err:
                    record.update(status="failure", error_info=["INTERNAL_ERROR", str(err)])
                else:
                    record.update(status="success", result=self._task_result(value))
                record.update(progress=1.0, finished=now(), allowed_operations=[])
                self._mod("task", task)

        threading.Thread(target=run, daemon=True).start()
        return task

    @staticmethod
    def _task_result(value):
        """A task's result is the XML-RPC encoding of the value (``<value>OpaqueRef:...</value>``)."""
        if value is None:
            return ""
        if isinstance(value, str):
            return "<value>%s</value>" % value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = xmlrpc.client.dumps((value,), allow_none=False)
        start, end = text.index("<value>"), text.rindex("</value>") + len("</value>")
        return text[start:end]

    def _new_task(self, session, label, description=""):
        master = self.db["session"][session]["this_host"]
        return self._new("task", {"name_label": str(label), "name_description": str(description),
                                  "allowed_operations": ["cancel"], "current_operations": {},
                                  "created": now(), "finished": EPOCH, "status": "pending",
                                  "resident_on": master, "progress": 0.0, "type": "<none/>", "result": "",
                                  "error_info": [], "other_config": {}, "subtask_of": NULL, "subtasks": [],
                                  "backtrace": "()"})

    def api_task__create(self, session, label, description):
        # a client's own task: it hands it to an HTTP handler (?task_id=) and watches it
        return self._new_task(session, label, description)

    def api_task__cancel(self, session, task):
        record = self._rec("task", task)
        if record["status"] != "pending":
            raise XapiError("OPERATION_NOT_ALLOWED", "task is not pending")
        record.update(status="cancelled", finished=now(), error_info=["TASK_CANCELLED", task])
        self._mod("task", task)

    def api_task__destroy(self, session, task):
        self._rec("task", task)
        self._del("task", task)

    def api_session__logout(self, session):
        self._del("session", session)

    def api_session__get_this_host(self, session, _self):
        return self._rec("session", _self)["this_host"]

    # -- events ------------------------------------------------------------
    def api_event__from(self, session, classes, token, timeout):
        wanted = {c.lower() for c in classes}
        try:
            since = int(token) if token else None
        except ValueError:
            raise XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", token) from None
        deadline = time.monotonic() + max(0.0, min(float(timeout), 60.0))
        with self.lock:
            if since is None:
                events = []
                for cls in EVENT_CLASSES:
                    if "*" in wanted or cls.lower() in wanted:
                        for ref in self.db[cls]:
                            events.append({"id": "0", "timestamp": now(), "class": cls.lower(),
                                           "operation": "add", "ref": ref, "snapshot": self._public(cls, ref)})
                last = int(self.events[-1]["id"]) if self.events else 0
                return {"events": events, "valid_ref_counts": {}, "token": str(last)}
            while True:
                found = [e for e in self.events if int(e["id"]) > since and ("*" in wanted or e["class"] in wanted)]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    break
                self.changed.wait(remaining)
            last = int(self.events[-1]["id"]) if self.events else since
            counts = {}
            for e in found:
                counts[e["class"]] = counts.get(e["class"], 0) + 1
            return {"events": copy.deepcopy(found), "valid_ref_counts": {k: str(v) for k, v in counts.items()},
                    "token": str(max(last, since))}

    # -- pool and hosts ------------------------------------------------------
    def _host_free(self, host):
        record = self.db["host"][host]
        total = int(self.db["host_metrics"][record["metrics"]]["memory_total"])
        used = int(record["memory_overhead"])
        for vm in record["resident_VMs"]:
            vm_rec = self.db["VM"][vm]
            used += int(vm_rec["memory_static_max"]) + int(vm_rec["memory_overhead"])
        return max(0, total - used)

    def api_host__compute_free_memory(self, session, host):
        self._rec("host", host)
        return str(self._host_free(host))

    def api_pool__get_master(self, session, pool):
        return self._rec("pool", pool)["master"]

    # -- VM lifecycle checks (xapi_vm_lifecycle.check_operation_error) ----------
    def _vm_error(self, ref, op):
        vm = self.db["VM"][ref]
        if op in vm["blocked_operations"]:
            return ("OPERATION_BLOCKED", ref, vm["blocked_operations"][op])
        allowed = ALLOWED_POWER_STATES.get(op, ALL_POWER_STATES)
        if op in ("clone", "copy") and vm["is_a_snapshot"]:
            allowed = (HALTED, SUSPENDED)
        if vm["power_state"] not in allowed:
            return ("VM_BAD_POWER_STATE", ref, ", ".join(s.lower() for s in allowed), vm["power_state"].lower())
        if vm["current_operations"]:
            return ("OTHER_OPERATION_IN_PROGRESS", "VM." + next(iter(vm["current_operations"].values())), ref)
        if vm["is_a_template"] and not vm["is_a_snapshot"]:
            default = vm["other_config"].get("default_template") == "true"
            if not (op in TEMPLATE_OPERATIONS or (op == "destroy" and not default)):
                return ("VM_IS_TEMPLATE", ref, op)
        if vm["is_a_snapshot"] and op not in SNAPSHOT_OPERATIONS:
            return ("VM_IS_SNAPSHOT", ref, op)
        if op == "provision" and not vm["is_a_template"]:
            return ("ONLY_PROVISION_TEMPLATE",)
        if op == "revert" and not vm["is_a_snapshot"]:
            return ("ONLY_REVERT_SNAPSHOT",)
        if vm["is_control_domain"] and op not in CONTROL_DOMAIN_OPERATIONS:
            return ("OPERATION_NOT_ALLOWED", "Operations on domain 0 are not allowed")
        return None

    def _assert_vm(self, ref, op):
        self._rec("VM", ref)
        error = self._vm_error(ref, op)
        if error:
            raise XapiError(*error)
        return self.db["VM"][ref]

    # -- VM creation -----------------------------------------------------------
    def api_VM__create(self, session, args):
        if not isinstance(args, dict):
            raise XapiError("FIELD_TYPE_ERROR", "args")
        for field in ("name_label", "memory_static_max", "memory_dynamic_max", "memory_dynamic_min",
                      "memory_static_min", "VCPUs_max", "VCPUs_at_startup"):
            if field not in args:
                raise XapiError("FIELD_TYPE_ERROR", field)
        record = self._vm_record(str(args["name_label"]), as_int(args["memory_static_max"], "memory_static_max"),
                                 as_int(args["VCPUs_max"], "VCPUs_max"))
        for field, value in args.items():
            if field in record and field not in ("uuid", "power_state", "metrics", "guest_metrics", "VBDs",
                                                 "VIFs", "snapshots", "resident_on", "is_control_domain",
                                                 "is_a_snapshot", "snapshot_of", "domid", "allowed_operations",
                                                 "current_operations"):
                current = record[field]
                record[field] = (value if isinstance(current, (dict, list, bool, float, xmlrpc.client.DateTime))
                                 else str(value))
        self._check_memory(record, *(int(record[f]) for f in ("memory_static_min", "memory_static_max",
                                                              "memory_dynamic_min", "memory_dynamic_max")))
        self._check_vcpus(int(record["VCPUs_at_startup"]), int(record["VCPUs_max"]))
        return self._new_vm(record)

    def _copy_vm(self, source, name, sr=None, snapshot=False, ignore_vdis=()):
        src = self.db["VM"][source]
        record = copy.deepcopy(src)
        record.pop("uuid")
        record.update(name_label=name, power_state=HALTED, resident_on=NULL, domid="-1", VBDs=[], VIFs=[],
                      snapshots=[], consoles=[], guest_metrics=NULL, current_operations={},
                      allowed_operations=[], suspend_VDI=NULL, is_control_domain=False, is_default_template=False,
                      children=[], parent=NULL)
        record["other_config"].pop("default_template", None)
        if snapshot:
            record.update(is_a_snapshot=True, is_a_template=True, snapshot_of=source, snapshot_time=now())
        else:
            record.update(is_a_snapshot=False, snapshot_of=NULL, snapshot_time=EPOCH)
        ref = self._new_vm(record)
        for vbd in src["VBDs"]:
            vbd_rec = self.db["VBD"][vbd]
            vdi = vbd_rec["VDI"]
            if vdi in ignore_vdis:
                continue
            if vdi != NULL and not vbd_rec["empty"]:
                vdi = self._copy_vdi(vdi, sr, snapshot=snapshot)
            self._attach_new_vbd(ref, vdi, vbd_rec["userdevice"], bootable=vbd_rec["bootable"],
                                 mode=vbd_rec["mode"], vbd_type=vbd_rec["type"], empty=vbd_rec["empty"])
        for vif in src["VIFs"]:
            vif_rec = self.db["VIF"][vif]
            mac = vif_rec["MAC"] if snapshot else ""
            self._new_vif(ref, vif_rec["network"], vif_rec["device"], mac, vif_rec["MTU"])
        if snapshot:
            src["snapshots"].append(ref)
            self._mod("VM", source)
        return ref

    def _copy_vdi(self, vdi, sr=None, snapshot=False):
        src = self.db["VDI"][vdi]
        record = copy.deepcopy(src)
        record.pop("uuid")
        target_sr = sr if sr not in (None, NULL) else src["SR"]
        record.update(SR=target_sr, VBDs=[], location=new_uuid(), snapshots=[], current_operations={})
        if snapshot:
            record.update(is_a_snapshot=True, snapshot_of=vdi, snapshot_time=now())
        else:
            record.update(is_a_snapshot=False, snapshot_of=NULL, snapshot_time=EPOCH, read_only=False)
        ref = self._new("VDI", record)
        self.db["SR"][target_sr]["VDIs"].append(ref)
        self._recount_sr(target_sr)
        if snapshot:
            src["snapshots"].append(ref)
        if vdi in self.contents:
            self.contents[ref] = {i: bytearray(b) for i, b in self.contents[vdi].items()}
        return ref

    def api_VM__clone(self, session, vm, new_name):
        self._assert_vm(vm, "clone")
        return self._copy_vm(vm, str(new_name))

    def api_VM__copy(self, session, vm, new_name, sr):
        self._assert_vm(vm, "copy")
        if sr != NULL:
            self._rec("SR", sr)
        return self._copy_vm(vm, str(new_name), sr=sr)

    def api_VM__snapshot(self, session, vm, new_name, ignore_vdis=None):
        self._assert_vm(vm, "snapshot")
        for vdi in ignore_vdis or []:
            self._rec("VDI", vdi)
        return self._copy_vm(vm, str(new_name), snapshot=True, ignore_vdis=ignore_vdis or ())

    def api_VM__provision(self, session, vm):
        record = self._assert_vm(vm, "provision")
        pool = next(iter(self.db["pool"].values()))
        text = record["other_config"].get("disks")
        if text:
            try:
                disks = ET.fromstring(text).findall("disk")
            except ET.ParseError:
                raise XapiError("INVALID_VALUE", "other_config:disks", text) from None
            for disk in disks:
                sr = pool["default_SR"]
                wanted = disk.get("sr", "")
                if wanted:
                    sr = next((ref for ref, r in self.db["SR"].items() if r["uuid"] == wanted), None)
                    if sr is None:
                        raise XapiError("UUID_INVALID", "SR", wanted)
                if sr == NULL:
                    raise XapiError("SR_NOT_FOUND", "")  # no default SR
                vdi = self._create_vdi(sr, "%s %s" % (record["name_label"], disk.get("device", "0")),
                                       as_int(disk.get("size"), "size"), disk.get("type", "system"),
                                       description="Created by template provisioner")
                self._attach_new_vbd(vm, vdi, disk.get("device", "0"),
                                     bootable=disk.get("bootable", "false") == "true")
            del record["other_config"]["disks"]
        record["is_a_template"] = False
        self._mod("VM", vm)

    # -- VM power -----------------------------------------------------------------
    def _pick_host(self, vm, host=None):
        need = int(self.db["VM"][vm]["memory_static_max"]) + int(self.db["VM"][vm]["memory_overhead"])
        hosts = [host] if host else sorted(self.db["host"], key=self._host_free, reverse=True)
        for candidate in hosts:
            if self.db["host"][candidate]["enabled"] and self._host_free(candidate) >= need:
                return candidate
        best = max(self._host_free(h) for h in hosts)
        raise XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", str(need), str(best))

    def _boot(self, vm, host, paused):
        record = self.db["VM"][vm]
        record.update(power_state=PAUSED if paused else RUNNING, resident_on=host, domid=str(next(self.domid)),
                      memory_target=record["memory_dynamic_max"])
        self.db["host"][host]["resident_VMs"].append(vm)
        metrics = self.db["VM_metrics"][record["metrics"]]
        vcpus = int(record["VCPUs_at_startup"])
        metrics.update(memory_actual=record["memory_dynamic_max"], VCPUs_number=str(vcpus),
                       VCPUs_utilisation={str(i): 0.0 for i in range(vcpus)}, start_time=now(),
                       last_updated=now(), state=["running"] if not paused else ["paused"])
        for vbd in record["VBDs"]:
            self.db["VBD"][vbd].update(currently_attached=True, device=self._device(self.db["VBD"][vbd]))
        for vif in record["VIFs"]:
            self.db["VIF"][vif]["currently_attached"] = True
        index = int(record["domid"])
        gm = self._new("VM_guest_metrics", {
            "os_version": {"name": "Debian GNU/Linux 12 (bookworm)", "distro": "debian", "major": "12",
                           "minor": "0", "uname": "6.1.0-stand-in"},
            "PV_drivers_version": {"major": "8", "minor": "3", "micro": "0", "build": "1"},
            "PV_drivers_up_to_date": True, "memory": {}, "disks": {}, "other": {"feature-shutdown": "1"},
            "networks": {"%s/ip" % device: "10.%d.%d.%d" % (1 + int(device), index // 250 % 250, index % 250 + 2)
                         for device in (self.db["VIF"][v]["device"] for v in record["VIFs"])},
            "last_updated": now(), "other_config": {}, "live": True, "can_use_hotplug_vbd": "yes",
            "can_use_hotplug_vif": "yes", "PV_drivers_detected": True})
        record["guest_metrics"] = gm
        self._mod("VM", vm)

    @staticmethod
    def _device(vbd):
        n = int(vbd["userdevice"]) if vbd["userdevice"].isdigit() else 0
        return "xvd" + "abcdefghijklmnop"[n % 16]

    def _halt(self, vm):
        record = self.db["VM"][vm]
        if record["resident_on"] != NULL:
            self.db["host"][record["resident_on"]]["resident_VMs"].remove(vm)
        if record["suspend_VDI"] != NULL:
            self._destroy_vdi(record["suspend_VDI"])
        record.update(power_state=HALTED, resident_on=NULL, domid="-1", suspend_VDI=NULL, memory_target="0")
        metrics = self.db["VM_metrics"][record["metrics"]]
        metrics.update(memory_actual="0", VCPUs_number="0", VCPUs_utilisation={}, state=[], last_updated=now())
        for vbd in record["VBDs"]:
            self.db["VBD"][vbd]["currently_attached"] = False
        for vif in record["VIFs"]:
            self.db["VIF"][vif]["currently_attached"] = False
        if record["guest_metrics"] != NULL:
            self._del("VM_guest_metrics", record["guest_metrics"])
            record["guest_metrics"] = NULL
        self._mod("VM", vm)

    def api_VM__start(self, session, vm, start_paused, force):
        self._assert_vm(vm, "start")
        self._boot(vm, self._pick_host(vm), as_bool(start_paused, "start_paused"))

    def api_VM__start_on(self, session, vm, host, start_paused, force):
        self._assert_vm(vm, "start_on")
        self._rec("host", host)
        self._boot(vm, self._pick_host(vm, host), as_bool(start_paused, "start_paused"))

    def api_VM__clean_shutdown(self, session, vm):
        self._assert_vm(vm, "clean_shutdown")
        self._halt(vm)

    def api_VM__hard_shutdown(self, session, vm):
        self._assert_vm(vm, "hard_shutdown")
        self._halt(vm)

    def api_VM__shutdown(self, session, vm):
        self._assert_vm(vm, "hard_shutdown")
        self._halt(vm)

    def _reboot(self, vm):
        record = self.db["VM"][vm]
        host = record["resident_on"]
        self._halt(vm)
        self._boot(vm, host, False)

    def api_VM__clean_reboot(self, session, vm):
        self._assert_vm(vm, "clean_reboot")
        self._reboot(vm)

    def api_VM__hard_reboot(self, session, vm):
        self._assert_vm(vm, "hard_reboot")
        self._reboot(vm)

    def api_VM__pause(self, session, vm):
        self._assert_vm(vm, "pause")["power_state"] = PAUSED
        self._mod("VM", vm)

    def api_VM__unpause(self, session, vm):
        self._assert_vm(vm, "unpause")["power_state"] = RUNNING
        self._mod("VM", vm)

    def api_VM__suspend(self, session, vm):
        record = self._assert_vm(vm, "suspend")
        pool = next(iter(self.db["pool"].values()))
        sr = record["suspend_SR"] if record["suspend_SR"] != NULL else pool["suspend_image_SR"]
        suspend_vdi = self._create_vdi(sr, "Suspend image", int(record["memory_static_max"]) + 10 * MIB, "suspend",
                                       description="Suspend image of %s" % record["uuid"])
        host = record["resident_on"]
        self.db["host"][host]["resident_VMs"].remove(vm)
        record.update(power_state=SUSPENDED, resident_on=NULL, domid="-1", suspend_VDI=suspend_vdi)
        self.db["VM_metrics"][record["metrics"]].update(memory_actual="0", state=[], last_updated=now())
        self._mod("VM", vm)

    def _resume(self, vm, host, paused):
        record = self.db["VM"][vm]
        suspend_vdi = record["suspend_VDI"]
        record["suspend_VDI"] = NULL
        self._boot(vm, host, paused)
        if suspend_vdi != NULL:
            self._destroy_vdi(suspend_vdi)

    def api_VM__resume(self, session, vm, start_paused, force):
        self._assert_vm(vm, "resume")
        self._resume(vm, self._pick_host(vm), as_bool(start_paused, "start_paused"))

    def api_VM__resume_on(self, session, vm, host, start_paused, force):
        self._assert_vm(vm, "resume_on")
        self._rec("host", host)
        self._resume(vm, self._pick_host(vm, host), as_bool(start_paused, "start_paused"))

    def api_VM__destroy(self, session, vm):
        record = self._assert_vm(vm, "destroy")
        if record["power_state"] == SUSPENDED:
            self._halt(vm)
        for vbd in list(record["VBDs"]):
            self._destroy_vbd(vbd)
        for vif in list(record["VIFs"]):
            self._destroy_vif(vif)
        if record["metrics"] in self.db["VM_metrics"]:
            self._del("VM_metrics", record["metrics"])
        if record["is_a_snapshot"] and record["snapshot_of"] in self.db["VM"]:
            self.db["VM"][record["snapshot_of"]]["snapshots"].remove(vm)
        self._del("VM", vm)

    def api_VM__get_power_state(self, session, vm):
        return self._rec("VM", vm)["power_state"]

    # -- VM settings ---------------------------------------------------------------
    @staticmethod
    def _check_memory(record, static_min, static_max, dynamic_min, dynamic_max):
        if not 0 <= static_min <= dynamic_min <= dynamic_max <= static_max:
            raise XapiError("MEMORY_CONSTRAINT_VIOLATION",
                            "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max")

    @staticmethod
    def _check_vcpus(at_startup, vcpus_max):
        if at_startup < 1 or at_startup > vcpus_max:
            raise XapiError("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max",
                            str(at_startup))

    def api_VM__set_memory_limits(self, session, vm, static_min, static_max, dynamic_min, dynamic_max):
        record = self._assert_vm(vm, "changing_memory_limits")
        values = [as_int(v, "memory") for v in (static_min, static_max, dynamic_min, dynamic_max)]
        self._check_memory(record, *values)
        record.update(memory_static_min=str(values[0]), memory_static_max=str(values[1]),
                      memory_dynamic_min=str(values[2]), memory_dynamic_max=str(values[3]),
                      memory_overhead=str(values[1] // 128))
        self._mod("VM", vm)

    def api_VM__set_memory_static_range(self, session, vm, static_min, static_max):
        record = self._assert_vm(vm, "changing_static_range")
        lo, hi = as_int(static_min), as_int(static_max)
        self._check_memory(record, lo, hi, int(record["memory_dynamic_min"]), int(record["memory_dynamic_max"]))
        record.update(memory_static_min=str(lo), memory_static_max=str(hi))
        self._mod("VM", vm)

    def api_VM__set_memory_dynamic_range(self, session, vm, dynamic_min, dynamic_max):
        record = self._assert_vm(vm, "changing_dynamic_range")
        lo, hi = as_int(dynamic_min), as_int(dynamic_max)
        self._check_memory(record, int(record["memory_static_min"]), int(record["memory_static_max"]), lo, hi)
        record.update(memory_dynamic_min=str(lo), memory_dynamic_max=str(hi))
        self._mod("VM", vm)

    def _set_one_memory(self, vm, field, value, op="changing_static_range"):
        record = self._assert_vm(vm, op)
        values = {f: int(record[f]) for f in ("memory_static_min", "memory_static_max",
                                              "memory_dynamic_min", "memory_dynamic_max")}
        values[field] = as_int(value, field)
        self._check_memory(record, values["memory_static_min"], values["memory_static_max"],
                           values["memory_dynamic_min"], values["memory_dynamic_max"])
        record[field] = str(values[field])
        self._mod("VM", vm)

    def api_VM__set_memory_static_max(self, session, vm, value):
        self._set_one_memory(vm, "memory_static_max", value)

    def api_VM__set_memory_static_min(self, session, vm, value):
        self._set_one_memory(vm, "memory_static_min", value)

    def api_VM__set_memory_dynamic_max(self, session, vm, value):
        self._set_one_memory(vm, "memory_dynamic_max", value, "changing_dynamic_range")

    def api_VM__set_memory_dynamic_min(self, session, vm, value):
        self._set_one_memory(vm, "memory_dynamic_min", value, "changing_dynamic_range")

    def api_VM__set_memory(self, session, vm, value):
        record = self._assert_vm(vm, "changing_memory_limits")
        size = as_int(value)
        self._check_memory(record, min(int(record["memory_static_min"]), size), size, size, size)
        record.update(memory_static_min=str(min(int(record["memory_static_min"]), size)), memory_static_max=str(size),
                      memory_dynamic_min=str(size), memory_dynamic_max=str(size))
        self._mod("VM", vm)

    def api_VM__set_VCPUs_max(self, session, vm, value):
        record = self._assert_vm(vm, "changing_VCPUs")
        count = as_int(value, "VCPUs_max")
        if count < 1 or count < int(record["VCPUs_at_startup"]):
            raise XapiError("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max",
                            str(count))
        record["VCPUs_max"] = str(count)
        self._mod("VM", vm)

    def api_VM__set_VCPUs_at_startup(self, session, vm, value):
        record = self._assert_vm(vm, "changing_VCPUs")
        self._check_vcpus(as_int(value, "VCPUs_at_startup"), int(record["VCPUs_max"]))
        record["VCPUs_at_startup"] = str(int(value))
        self._mod("VM", vm)

    def api_VM__set_VCPUs_number_live(self, session, vm, nvcpu):
        """A running VM's VCPU count within VCPUs_max (needs the guest's PV drivers: VM_LACKS_FEATURE without
        them); xapi keeps it as VCPUs_at_startup and in the VM's metrics."""
        record = self._assert_vm(vm, "changing_VCPUs_live")
        if record["guest_metrics"] == NULL:
            raise XapiError("VM_LACKS_FEATURE", vm)
        count = as_int(nvcpu, "nvcpu")
        if count < 1 or count > int(record["VCPUs_max"]):
            raise XapiError("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs ≤ VCPUs_max", str(count))
        record["VCPUs_at_startup"] = str(count)
        metrics = self.db["VM_metrics"][record["metrics"]]
        metrics.update(VCPUs_number=str(count), VCPUs_utilisation={str(i): 0.0 for i in range(count)},
                       last_updated=now())
        self._mod("VM_metrics", record["metrics"])
        self._mod("VM", vm)

    # -- VM data sources (RRDs, simulated) ---------------------------------------------
    def _data_sources(self, vm, at=None):
        """(name, description, units, min, max, value) of a running VM's data sources, their values at time
        ``at`` (epoch seconds; now by default): made up, but the same for the same 5-second step."""
        record = self._assert_vm(vm, "data_source_op")
        bucket = int((time.time() if at is None else at) // 5)

        def wobble(name, low, high):
            digest = hashlib.sha256(("%s/%s/%d" % (record["uuid"], name, bucket)).encode()).digest()
            return low + (high - low) * (int.from_bytes(digest[:4], "big") / 2 ** 32)

        memory = float(record["memory_dynamic_max"])
        sources = []
        for i in range(int(record["VCPUs_at_startup"])):
            sources.append(("cpu%d" % i, "CPU%d usage" % i, "(fraction)", 0.0, 1.0, wobble("cpu%d" % i, 0.02, 0.6)))
        sources.append(("memory", "Memory currently allocated to VM", "B", 0.0, memory, memory))
        sources.append(("memory_internal_free", "Memory used as reported by the guest agent", "KiB", 0.0,
                        memory / 1024, memory / 1024 * wobble("memfree", 0.3, 0.8)))
        for vbd in record["VBDs"]:
            device = self.db["VBD"][vbd]["device"] or "xvda"
            sources.append(("vbd_%s_read" % device, "Reads from device %s" % device, "B/s", 0.0, float("inf"),
                            wobble(device + "r", 0, 4e6)))
            sources.append(("vbd_%s_write" % device, "Writes to device %s" % device, "B/s", 0.0, float("inf"),
                            wobble(device + "w", 0, 2e6)))
        for vif in record["VIFs"]:
            device = self.db["VIF"][vif]["device"]
            sources.append(("vif_%s_rx" % device, "Bytes per second received on VIF %s" % device, "B/s", 0.0,
                            float("inf"), wobble("rx" + device, 0, 1e6)))
            sources.append(("vif_%s_tx" % device, "Bytes per second sent on VIF %s" % device, "B/s", 0.0,
                            float("inf"), wobble("tx" + device, 0, 1e6)))
        return sources

    def rrd_updates(self, start, interval, vm_uuid=None):
        """What xcp-rrdd's ``/rrd_updates`` gives for the running VMs (one, with ``vm_uuid``): (step, end, legend
        ``AVERAGE:vm:<uuid>:<source>``, rows newest first as (time, [values])) from the archive of the
        smallest step at least ``interval``, since ``start``, within what that archive keeps; NaN before the VM
        started (the stand-in keeps no history of earlier runs)."""
        with self.lock:
            step, kept = next((a for a in RRD_ARCHIVES if a[0] >= interval), RRD_ARCHIVES[-1])
            end = int(time.time()) // step * step
            first = max(-(-int(start) // step) * step, end - step * (kept - 1))
            legend, columns = [], []
            for ref, vm in sorted(self.db["VM"].items(), key=lambda item: item[1]["uuid"]):
                if vm["power_state"] != RUNNING or vm["is_control_domain"] or vm_uuid not in (None, vm["uuid"]):
                    continue
                started = self.db["VM_metrics"][vm["metrics"]]["start_time"]
                started = calendar.timegm(time.strptime(started.value, "%Y%m%dT%H:%M:%SZ"))
                names = [source[0] for source in self._data_sources(ref)]
                legend += ["AVERAGE:vm:%s:%s" % (vm["uuid"], name) for name in names]
                columns.append((ref, started, len(names)))
            rows = []
            for stamp in range(end, first - 1, -step):
                values = []
                for ref, started, count in columns:
                    values += ([source[5] for source in self._data_sources(ref, at=stamp)] if stamp >= started
                               else [float("nan")] * count)
                rows.append((stamp, values))
            return step, end, legend, rows

    def api_VM__get_data_sources(self, session, vm):
        self._rec("VM", vm)
        if self.db["VM"][vm]["power_state"] != RUNNING:
            return []
        return [{"name_label": n, "name_description": d, "enabled": True, "standard": True, "units": u,
                 "min": lo, "max": hi if hi != float("inf") else 1.7976931348623157e308, "value": v}
                for n, d, u, lo, hi, v in self._data_sources(vm)]

    def api_VM__query_data_source(self, session, vm, data_source):
        for name, _d, _u, _lo, _hi, value in self._data_sources(vm):
            if name == data_source:
                return value
        raise XapiError("INTERNAL_ERROR", "Data source %s not found" % data_source)

    # -- storage -------------------------------------------------------------------------
    def _create_vdi(self, sr, name, size, vdi_type, description="", other_config=None, sharable=False,
                    read_only=False):
        sr_rec = self._rec("SR", sr)
        if sr_rec["content_type"] == "iso":
            raise XapiError("SR_OPERATION_NOT_SUPPORTED", sr)
        if size < 0:
            raise XapiError("INVALID_VALUE", "virtual_size", str(size))
        free = int(sr_rec["physical_size"]) - int(sr_rec["virtual_allocation"])
        if size > free:
            raise XapiError("SR_FULL", str(size), str(free))
        record = self._vdi_record(sr, name, size, vdi_type, read_only=read_only, other_config=other_config,
                                  description=description)
        record["sharable"] = sharable
        ref = self._new("VDI", record)
        sr_rec["VDIs"].append(ref)
        self._recount_sr(sr)
        self._mod("SR", sr)
        return ref

    def api_VDI__create(self, session, args):
        if not isinstance(args, dict):
            raise XapiError("FIELD_TYPE_ERROR", "args")
        for field in ("name_label", "name_description", "SR", "virtual_size", "type", "sharable", "read_only",
                      "other_config"):
            if field not in args:
                raise XapiError("FIELD_TYPE_ERROR", field)
        if args["type"] not in VDI_TYPES:
            raise XapiError("FIELD_TYPE_ERROR", "type")
        other = args["other_config"]
        if not isinstance(other, dict):
            raise XapiError("FIELD_TYPE_ERROR", "other_config")
        ref = self._create_vdi(args["SR"], str(args["name_label"]), as_int(args["virtual_size"], "virtual_size"),
                               args["type"], description=str(args["name_description"]),
                               other_config={str(k): str(v) for k, v in other.items()},
                               sharable=as_bool(args["sharable"], "sharable"),
                               read_only=as_bool(args["read_only"], "read_only"))
        for field in ("sm_config", "xenstore_data"):
            if isinstance(args.get(field), dict):
                self.db["VDI"][ref][field] = {str(k): str(v) for k, v in args[field].items()}
        if isinstance(args.get("tags"), list):
            self.db["VDI"][ref]["tags"] = [str(t) for t in args["tags"]]
        return ref

    def _destroy_vdi(self, vdi):
        record = self.db["VDI"][vdi]
        for vbd in list(record["VBDs"]):
            self._destroy_vbd(vbd)
        sr = record["SR"]
        self.db["SR"][sr]["VDIs"].remove(vdi)
        if record["snapshot_of"] in self.db["VDI"]:
            self.db["VDI"][record["snapshot_of"]]["snapshots"].remove(vdi)
        self._del("VDI", vdi)
        self.contents.pop(vdi, None)
        self._recount_sr(sr)
        self._mod("SR", sr)

    def api_VDI__destroy(self, session, vdi):
        record = self._rec("VDI", vdi)
        for vbd in record["VBDs"]:
            if self.db["VBD"][vbd]["currently_attached"]:
                raise XapiError("VDI_IN_USE", vdi, "destroy")
        for vm_rec in self.db["VM"].values():
            if vm_rec["suspend_VDI"] == vdi:
                raise XapiError("VDI_IN_USE", vdi, "destroy")
        self._destroy_vdi(vdi)

    # -- disk contents: what the HTTP handlers (import_raw_vdi, export_raw_vdi) move ------------
    def write_content(self, vdi, offset, data):
        """Write ``data`` at byte ``offset`` of the VDI, as to its block device: DeviceError past its end."""
        with self.lock:
            size = int(self._rec("VDI", vdi)["virtual_size"])
            if offset < 0 or offset + len(data) > size:
                raise DeviceError("write of %d bytes at offset %d: past the end of the device (%d bytes)"
                                  % (len(data), offset, size))
            blocks = self.contents.setdefault(vdi, {})
            view = memoryview(data)
            while view:
                index, start = divmod(offset, CONTENT_BLOCK)
                take = min(len(view), CONTENT_BLOCK - start)
                piece = view[:take]
                if index in blocks or any(piece):
                    blocks.setdefault(index, bytearray(CONTENT_BLOCK))[start:start + take] = piece
                offset, view = offset + take, view[take:]

    def read_content(self, vdi, offset, length):
        """``length`` bytes of the VDI from ``offset``; never-written parts read as zeroes."""
        with self.lock:
            blocks = self.contents.get(vdi, {})
            out = bytearray()
            while length > 0:
                index, start = divmod(offset, CONTENT_BLOCK)
                take = min(length, CONTENT_BLOCK - start)
                block = blocks.get(index)
                out += block[start:start + take] if block is not None else bytes(take)
                offset, length = offset + take, length - take
            return bytes(out)

    def http_session(self, session=None, basic=None):
        """(session, made_here) an HTTP handler runs under: ``session_id`` (cookie or query), else Basic
        credentials (a session made for the request, to log out after it, as xapi's ``with_context`` does).
        None when neither authenticates."""
        with self.lock:
            if session is not None:
                if session not in self.db["session"]:
                    return None
                self.db["session"][session]["last_active"] = now()
                return session, False
            if basic and basic == (self.username, self.password):
                return self.login("session.login_with_password", [basic[0], basic[1], "2.21", "http"]), True
            return None

    def http_logout(self, session):
        with self.lock:
            if session in self.db["session"]:
                self._del("session", session)

    def http_lookup(self, cls, ref_or_uuid):
        """An object named by reference or else by uuid, as xapi's ``vdi_of_req`` takes a VDI; None if neither."""
        with self.lock:
            if ref_or_uuid in self.db[cls]:
                return ref_or_uuid
            return next((ref for ref, r in self.db[cls].items() if r["uuid"] == ref_or_uuid), None)

    def http_vdi_record(self, vdi):
        with self.lock:
            return dict(self._rec("VDI", vdi))

    def http_task(self, session, task, label):
        """The task a handler reports to: the caller's (``task_id``), else a new one."""
        with self.lock:
            if task and task in self.db["task"]:
                return task
            return self._new_task(session, label)

    def task_progress(self, task, progress):
        with self.lock:
            record = self.db["task"].get(task)
            if record is not None and record["status"] == "pending":
                record["progress"] = round(min(max(progress, 0.0), 0.99), 3)
                self._mod("task", task)

    def task_done(self, task, error=None, result=None, detail=None):
        """Finish a handler's task: success with ``result`` (a reference), or failure with ``error`` (an
        ErrorDescription). ``detail``, what xapi would write to its log, goes to the task's backtrace."""
        with self.lock:
            record = self.db["task"].get(task)
            if record is None or record["status"] != "pending":
                return
            if error is None:
                record.update(status="success", result=self._task_result(result))
            else:
                record.update(status="failure", error_info=[str(e) for e in error])
                if detail:
                    record["backtrace"] = "((error %s))" % detail
            record.update(progress=1.0, finished=now(), allowed_operations=[])
            self._mod("task", task)

    def vdi_busy(self, vdi):
        """Why a handler may not attach the VDI read-write (an ErrorDescription), or None."""
        with self.lock:
            record = self._rec("VDI", vdi)
            if record["read_only"]:
                return ["VDI_READONLY", vdi]
            for vbd in record["VBDs"]:
                if self.db["VBD"][vbd]["currently_attached"] and self.db["VBD"][vbd]["mode"] == "RW":
                    return ["VDI_IN_USE", vdi, "import"]
            return None

    def _sm_features(self, sr):
        sr_type = self.db["SR"][sr]["type"]
        return next((sm["features"] for sm in self.db["SM"].values() if sm["type"] == sr_type), {})

    def _vdi_error(self, vdi, op):
        """Why VDI operation ``op`` is not allowed now (an ErrorDescription), as xapi_vdi.check_operation_error
        decides it for the operations of VDI_OPERATIONS: the SR's driver must offer it, and only some run while
        the VDI is plugged."""
        record = self.db["VDI"][vdi]
        feature, live = VDI_OPERATIONS[op]
        if not live and any(self.db["VBD"][v]["currently_attached"] for v in record["VBDs"]):
            return ("VDI_IN_USE", vdi, op)
        if feature not in self._sm_features(record["SR"]):
            return ("SR_OPERATION_NOT_SUPPORTED", record["SR"])
        return None

    def _resize_vdi(self, vdi, size, op):
        record = self._rec("VDI", vdi)
        size = as_int(size, "size")
        error = self._vdi_error(vdi, op)
        if error:
            raise XapiError(*error)
        if size < int(record["virtual_size"]):  # what the sm drivers answer (xs_errors VDISize)
            raise XapiError("SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]", "")
        sr = self.db["SR"][record["SR"]]
        free = int(sr["physical_size"]) - int(sr["virtual_allocation"])
        if size - int(record["virtual_size"]) > free:
            raise XapiError("SR_FULL", str(size - int(record["virtual_size"])), str(free))
        record["virtual_size"] = str(size)
        self._recount_sr(record["SR"])
        self._mod("VDI", vdi)

    def api_VDI__resize(self, session, vdi, size):
        self._resize_vdi(vdi, size, "resize")

    def api_VDI__resize_online(self, session, vdi, size):
        """As xapi 26.x has it again (removed in 7.1): allowed on a plugged VDI when the SR's driver declares
        VDI_RESIZE_ONLINE."""
        self._resize_vdi(vdi, size, "resize_online")

    def _attach_new_vbd(self, vm, vdi, userdevice, bootable=False, mode="RW", vbd_type="Disk", empty=False,
                        other_config=None):
        vm_rec = self.db["VM"][vm]
        used = {self.db["VBD"][v]["userdevice"] for v in vm_rec["VBDs"]}
        if userdevice == "autodetect":
            userdevice = next(str(n) for n in itertools.count() if str(n) not in used)
        elif userdevice in used:
            raise XapiError("DEVICE_ALREADY_EXISTS", userdevice)
        ref = self._new("VBD", {
            "allowed_operations": [], "current_operations": {}, "VM": vm, "VDI": vdi, "device": "",
            "userdevice": userdevice, "bootable": bootable, "mode": mode, "type": vbd_type, "unpluggable": True,
            "storage_lock": False, "empty": empty, "other_config": dict(other_config or {}),
            "currently_attached": False, "status_code": "0", "status_detail": "", "runtime_properties": {},
            "qos_algorithm_type": "", "qos_algorithm_params": {}, "qos_supported_algorithms": [], "metrics": NULL})
        vm_rec["VBDs"].append(ref)
        if vdi != NULL:
            self.db["VDI"][vdi]["VBDs"].append(ref)
        return ref

    def api_VBD__create(self, session, args):
        if not isinstance(args, dict):
            raise XapiError("FIELD_TYPE_ERROR", "args")
        for field in ("VM", "VDI", "userdevice", "bootable", "mode", "type", "empty", "other_config",
                      "qos_algorithm_type", "qos_algorithm_params"):
            if field not in args:
                raise XapiError("FIELD_TYPE_ERROR", field)
        self._rec("VM", args["VM"])
        empty = as_bool(args["empty"], "empty")
        if args["VDI"] != NULL or not empty:
            self._rec("VDI", args["VDI"])
        if args["mode"] not in ("RO", "RW"):
            raise XapiError("FIELD_TYPE_ERROR", "mode")
        if args["type"] not in ("CD", "Disk", "Floppy"):
            raise XapiError("FIELD_TYPE_ERROR", "type")
        userdevice = str(args["userdevice"])
        if userdevice != "autodetect" and not userdevice.isdigit():
            raise XapiError("INVALID_DEVICE", userdevice)
        return self._attach_new_vbd(args["VM"], args["VDI"], userdevice, as_bool(args["bootable"], "bootable"),
                                    args["mode"], args["type"], empty, args["other_config"])

    def _destroy_vbd(self, vbd):
        record = self.db["VBD"][vbd]
        self.db["VM"][record["VM"]]["VBDs"].remove(vbd)
        if record["VDI"] in self.db["VDI"]:
            self.db["VDI"][record["VDI"]]["VBDs"].remove(vbd)
        self._del("VBD", vbd)

    def _vbd_check(self, vbd, op):
        record = self._rec("VBD", vbd)
        vm = self.db["VM"][record["VM"]]
        if vm["power_state"] != RUNNING:
            raise XapiError("VM_BAD_POWER_STATE", record["VM"], "running", vm["power_state"].lower())
        if op == "plug" and record["currently_attached"]:
            raise XapiError("DEVICE_ALREADY_ATTACHED", vbd)
        if op == "unplug" and not record["currently_attached"]:
            raise XapiError("DEVICE_ALREADY_DETACHED", vbd)
        if op == "plug" and record["VDI"] in self.db["VDI"]:
            vdi = self.db["VDI"][record["VDI"]]
            others = [self.db["VBD"][v] for v in vdi["VBDs"] if v != vbd]
            busy = [o for o in others if o["currently_attached"]
                    and self.db["VM"][o["VM"]]["power_state"] != SUSPENDED]
            if not vdi["sharable"] and (any(o["mode"] == "RW" for o in busy) or (record["mode"] == "RW" and busy)):
                raise XapiError("VDI_IN_USE", record["VDI"])
        return record

    def api_VBD__plug(self, session, vbd):
        record = self._vbd_check(vbd, "plug")
        record.update(currently_attached=True, device=self._device(record))
        self._mod("VBD", vbd)

    def api_VBD__unplug(self, session, vbd):
        self._vbd_check(vbd, "unplug")["currently_attached"] = False
        self._mod("VBD", vbd)

    def api_VBD__unplug_force(self, session, vbd):
        self.api_VBD__unplug(session, vbd)

    def api_VBD__destroy(self, session, vbd):
        record = self._rec("VBD", vbd)
        if record["currently_attached"]:
            raise XapiError("OPERATION_NOT_ALLOWED", "VBD '%s' still attached to '%s'"
                            % (record["uuid"], self.db["VM"][record["VM"]]["uuid"]))
        self._destroy_vbd(vbd)

    # -- networks ----------------------------------------------------------------------------
    def _new_vif(self, vm, network, device, mac, mtu="1500", other_config=None):
        vm_rec = self.db["VM"][vm]
        if any(self.db["VIF"][v]["device"] == device for v in vm_rec["VIFs"]):
            raise XapiError("DEVICE_ALREADY_EXISTS", device)
        ref = new_ref()
        self._new("VIF", {
            "allowed_operations": [], "current_operations": {}, "device": device, "network": network, "VM": vm,
            "MAC": mac or mac_address(ref), "MTU": str(mtu), "other_config": dict(other_config or {}),
            "currently_attached": False, "status_code": "0", "status_detail": "", "runtime_properties": {},
            "qos_algorithm_type": "", "qos_algorithm_params": {}, "qos_supported_algorithms": [], "metrics": NULL,
            "MAC_autogenerated": not mac, "locking_mode": "network_default", "ipv4_allowed": [],
            "ipv6_allowed": []}, ref=ref)
        vm_rec["VIFs"].append(ref)
        self.db["network"][network]["VIFs"].append(ref)
        return ref

    def api_VIF__create(self, session, args):
        if not isinstance(args, dict):
            raise XapiError("FIELD_TYPE_ERROR", "args")
        for field in ("device", "network", "VM", "MAC", "MTU", "other_config", "qos_algorithm_type",
                      "qos_algorithm_params"):
            if field not in args:
                raise XapiError("FIELD_TYPE_ERROR", field)
        self._rec("VM", args["VM"])
        self._rec("network", args["network"])
        if not str(args["device"]).isdigit():
            raise XapiError("INVALID_DEVICE", args["device"])
        return self._new_vif(args["VM"], args["network"], str(args["device"]), str(args["MAC"]), args["MTU"],
                             args["other_config"])

    def _destroy_vif(self, vif):
        record = self.db["VIF"][vif]
        self.db["VM"][record["VM"]]["VIFs"].remove(vif)
        self.db["network"][record["network"]]["VIFs"].remove(vif)
        self._del("VIF", vif)

    def api_VIF__destroy(self, session, vif):
        record = self._rec("VIF", vif)
        if record["currently_attached"]:
            raise XapiError("OPERATION_NOT_ALLOWED", "VIF '%s' still attached" % record["uuid"])
        self._destroy_vif(vif)

    def api_VIF__plug(self, session, vif):
        record = self._rec("VIF", vif)
        vm = self.db["VM"][record["VM"]]
        if vm["power_state"] != RUNNING:
            raise XapiError("VM_BAD_POWER_STATE", record["VM"], "running", vm["power_state"].lower())
        if record["currently_attached"]:
            raise XapiError("DEVICE_ALREADY_ATTACHED", vif)
        record["currently_attached"] = True
        self._mod("VIF", vif)

    def api_VIF__unplug(self, session, vif):
        record = self._rec("VIF", vif)
        vm = self.db["VM"][record["VM"]]
        if vm["power_state"] != RUNNING:
            raise XapiError("VM_BAD_POWER_STATE", record["VM"], "running", vm["power_state"].lower())
        if not record["currently_attached"]:
            raise XapiError("DEVICE_ALREADY_DETACHED", vif)
        record["currently_attached"] = False
        self._mod("VIF", vif)

    def api_network__create(self, session, args):
        if not isinstance(args, dict):
            raise XapiError("FIELD_TYPE_ERROR", "args")
        for field in ("name_label", "name_description", "other_config"):
            if field not in args:
                raise XapiError("FIELD_TYPE_ERROR", field)
        count = len(self.db["network"])
        return self._new("network", {
            "name_label": str(args["name_label"]), "name_description": str(args["name_description"]),
            "MTU": str(as_int(args.get("MTU", 1500), "MTU")), "bridge": "xapi%d" % count,
            "other_config": {str(k): str(v) for k, v in args["other_config"].items()}, "VIFs": [], "PIFs": [],
            "managed": as_bool(args.get("managed", True), "managed"), "tags": [str(t) for t in args.get("tags", [])],
            "blobs": {}, "default_locking_mode": "unlocked", "assigned_ips": {}, "purpose": [],
            "allowed_operations": [], "current_operations": {}})

    def api_network__destroy(self, session, network):
        record = self._rec("network", network)
        if record["VIFs"]:
            raise XapiError("NETWORK_CONTAINS_VIF", *record["VIFs"])
        if record["PIFs"]:
            raise XapiError("NETWORK_CONTAINS_PIF", *record["PIFs"])
        self._del("network", network)


# -- the HTTP side --------------------------------------------------------------------------------

class HandlerFailure(Exception):
    """A failed HTTP handler: ``description`` is the ErrorDescription its task gets, ``status`` the HTTP answer
    when the failure comes before the 200 (after it, as in xapi, only the task tells), ``detail`` what xapi
    would write to its log (kept in the task's backtrace)."""

    def __init__(self, description, status=None, detail=None):
        super().__init__(description[0])
        self.description = [str(d) for d in description]
        self.status = status
        self.detail = detail


def _refused(text, status):
    """One of import_raw_vdi's refusals before the 200 (xapi's HandleError): INTERNAL_ERROR and a status."""
    return HandlerFailure(["INTERNAL_ERROR", text], status)


def _io_error(detail):
    """vhd-tool failed (a stream it cannot read, a write past the VDI's end, a client gone): whatever the cause,
    xapi's vhd_tool_wrapper fails the task with VDI_IO_ERROR and logs vhd-tool's own words."""
    return HandlerFailure(["VDI_IO_ERROR", "Device I/O errors"], detail=detail)


class _Body:
    """A request body read forward only, as vhd-tool reads the socket: ``length`` bytes, or up to EOF."""

    def __init__(self, rfile, length):
        self.rfile, self.left, self.pos = rfile, length, 0

    def read(self, size, exact=True):
        wanted = size if self.left is None else min(size, self.left)
        data = self.rfile.read(wanted) if wanted > 0 else b""
        self.pos += len(data)
        if self.left is not None:
            self.left -= len(data)
        if exact and len(data) < size:
            raise _io_error("unexpected end of the stream at byte %d" % self.pos)
        return data

    def skip_to(self, offset):
        if offset < self.pos:
            raise _io_error("the stream cannot go back to byte %d (at %d)" % (offset, self.pos))
        while self.pos < offset:
            self.read(min(offset - self.pos, MIB))

    def drain(self):
        """Read what is left of a body of known length (one sent up to EOF cannot be told apart from a client
        waiting for the answer)."""
        while self.left:
            if not self.read(MIB, exact=False):
                return


VHD_FOOTER, VHD_HEADER, SECTOR = 512, 1024, 512
VHD_DYNAMIC, VHD_DIFFERENCING = 3, 4
BAT_UNUSED = 0xFFFFFFFF


def _vhd_checksum(raw, at):
    """The VHD checksum: one's complement of the byte sum, the checksum field counted as zero."""
    return ~(sum(raw) - sum(raw[at:at + 4])) & 0xFFFFFFFF


def vhd_footer(raw):
    """(data_offset, current_size, disk_type) of a VHD footer, else the error ocaml-vhd reports."""
    if raw[:8] != b"conectix":
        raise _io_error("Unsupported footer cookie: expected conectix, got %r" % bytes(raw[:8]))
    version, data_offset = struct.unpack_from(">IQ", raw, 12)
    if version != 0x00010000:
        raise _io_error("Unsupported footer version: expected 10000, got %x" % version)
    current_size, = struct.unpack_from(">Q", raw, 48)
    disk_type, checksum = struct.unpack_from(">II", raw, 60)
    if checksum != _vhd_checksum(raw, 64):
        raise _io_error("Invalid footer checksum %08x" % checksum)
    return data_offset, current_size, disk_type


def vhd_header(raw):
    """(table_offset, max_table_entries, block_size) of a dynamic VHD header, else ocaml-vhd's error."""
    if raw[:8] != b"cxsparse":
        raise _io_error("Expected header cookie cxsparse, got %r" % bytes(raw[:8]))
    table_offset, = struct.unpack_from(">Q", raw, 16)
    entries, block_size, checksum = struct.unpack_from(">III", raw, 28)
    if checksum != _vhd_checksum(raw, 36):
        raise _io_error("Invalid header checksum %08x" % checksum)
    if block_size < SECTOR or block_size % SECTOR:
        raise _io_error("Invalid VHD block size %d" % block_size)
    return table_offset, entries, block_size


def _sectors(count):
    return -(-count // SECTOR) * SECTOR


def _write(xapi, vdi, offset, data):
    try:
        xapi.write_content(vdi, offset, data)
    except DeviceError as exc:  # xapi does not check sizes first: it fails on the write (its own FIXME)
        raise _io_error(str(exc)) from None


def receive_raw(xapi, vdi, body, progress):
    """format=raw: the body is the disk from byte 0."""
    offset, total = 0, body.left
    while True:
        data = body.read(MIB, exact=False)
        if not data:
            return
        _write(xapi, vdi, offset, data)
        offset += len(data)
        if total:
            progress(offset / total)


def receive_chunked(xapi, vdi, body, progress):
    """format=raw with ``chunked``: xapi's sparse protocol, chunks of (offset u64, length u32, little-endian,
    then the data), ended by a chunk of offset 0 and length 0."""
    while True:
        offset, length = struct.unpack("<QI", body.read(12))
        if offset == 0 and length == 0:
            return
        while length:
            data = body.read(min(length, MIB))
            _write(xapi, vdi, offset, data)
            offset, length = offset + len(data), length - len(data)
        if body.left:
            progress(body.pos / (body.pos + body.left))


def receive_vhd(xapi, vdi, body, progress):
    """format=vhd, read as vhd-tool reads a stream (ocaml-vhd's ``openstream``): a footer copy first, the header
    at its data offset, the BAT, then every allocated block in the order it lies in the file (its sector
    bitmap, its data), then the footer; each run of present sectors written as it comes, so a disk larger
    than the VDI fails on its first write past the end. A fixed VHD (raw data, footer at the end) fails at its
    first sector, as in xapi."""
    data_offset, current_size, disk_type = vhd_footer(body.read(VHD_FOOTER))
    if disk_type not in (VHD_DYNAMIC, VHD_DIFFERENCING):
        raise _io_error("a VHD stream must be a dynamic or differencing disk (disk type %d)" % disk_type)
    body.skip_to(data_offset)
    table_offset, entries, block_size = vhd_header(body.read(VHD_HEADER))
    body.skip_to(table_offset)
    bat = struct.unpack(">%dI" % entries, body.read(_sectors(entries * 4))[:entries * 4])
    blocks = sorted((sector, index) for index, sector in enumerate(bat) if sector != BAT_UNUSED)
    per_block = block_size // SECTOR
    bitmap_size = _sectors(-(-per_block // 8))
    for done, (sector, index) in enumerate(blocks, 1):
        body.skip_to(sector * SECTOR)
        bitmap = body.read(bitmap_size)
        data = body.read(block_size)
        base = index * per_block
        run = None
        for i in range(per_block + 1):  # write each run of sectors whose bitmap bit is set
            present = (i < per_block and (base + i) * SECTOR < current_size
                       and bitmap[i // 8] & (0x80 >> (i % 8)))
            if present and run is None:
                run = i
            elif not present and run is not None:
                _write(xapi, vdi, (base + run) * SECTOR, data[run * SECTOR:i * SECTOR])
                run = None
        progress(done / len(blocks))
    vhd_footer(body.read(VHD_FOOTER))


# xcp-rrdd's archives of a VM's RRD: (step in seconds, rows kept): 5 s for 10 minutes, a minute for 2 hours,
# an hour for a week, a day for a year.
RRD_ARCHIVES = ((5, 120), (60, 120), (3600, 168), (86400, 366))

RECEIVERS = {"raw": receive_raw, "vhd": receive_vhd}
FORMATS = ("raw", "vhd", "tar", "qcow2")  # what xapi's Importexport.Format knows (case-insensitive)
CONTENT_TYPES = {"raw": "application/octet-stream", "vhd": "application/vhd", "tar": "application/x-tar",
                 "qcow2": "application/x-qemu-disk"}


class _Handler(SimpleXMLRPCRequestHandler):
    """XML-RPC on POST; XAPI's HTTP handlers ``PUT /import_raw_vdi`` and ``GET /export_raw_vdi``."""

    rpc_paths = ("/", "/RPC2")

    def log_message(self, fmt, *args):  # quiet: tests read stdout for the ready line only
        pass

    # -- what every handler reads: query and cookie parameters, credentials ----------------------------
    def _param(self, name, cookie_first=False):
        """A parameter as xapi looks it up: ``query @ cookie`` (vdi, format, chunked: the query wins), or the
        cookie first (session_id and task_id through ``Xapi_http.lookup_param_of_req``, and sr_id/sr_uuid)."""
        query = {}
        for key, values in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items():
            query[key] = values[0]
        cookie = {}
        try:
            for morsel in SimpleCookie(self.headers.get("Cookie", "")).values():
                cookie[morsel.key] = morsel.value
        except CookieError:
            pass
        first, then = (cookie, query) if cookie_first else (query, cookie)
        return first[name] if name in first else then.get(name)

    def _basic(self):
        scheme, _sep, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def _answer(self, status, headers=(), body=b""):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.close_connection = True

    def _length(self):
        try:
            return int(self.headers["Content-Length"]) if self.headers.get("Content-Length") else None
        except ValueError:
            return None

    def _refuse(self, status, description=None, task=None, body=None):
        """An answer before any 200: the status, the caller's task failed when xapi fails it, the body read and
        dropped (xapi closes the connection at once; the stand-in reads the body first so that the client
        gets the answer rather than a reset)."""
        if task is not None and description is not None:
            self.server.xapi.task_done(task, description)
        text = " ".join(description) if description else self.responses.get(status, ("",))[0]
        self._answer(status, [("WWW-Authenticate", 'Basic realm="xapi"')] if status == 401 else [],
                     (text + "\n").encode())
        if body is not None:
            body.drain()

    def _serve(self, handler, label):
        """xapi's ``assert_credentials_ok`` then ``with_context``: a session (logged out afterwards when made
        from Basic credentials) and the caller's task (``task_id``) or none; 401 without credentials."""
        xapi = self.server.xapi
        body = _Body(self.rfile, self._length() or 0) if self.command == "GET" else \
            _Body(self.rfile, self._length())
        session = self._param("session_id", cookie_first=True)
        found = xapi.http_session(session, None if session is not None else self._basic())
        if found is None:  # Http.Unauthorised in assert_credentials_ok: no task is failed
            self._refuse(401, body=body)
            return
        session, made = found
        try:
            task = self._param("task_id", cookie_first=True)
            handler(xapi, session, xapi.http_task(session, task, label) if task else None, body)
        finally:
            if made:
                xapi.http_logout(session)

    def do_PUT(self):  # noqa: N802 - the name http.server dispatches to
        if urlsplit(self.path).path != "/import_raw_vdi":
            self._answer(404, body=b"no handler for this path\n")
            return
        self._serve(self._import_raw_vdi, "VDI.import")

    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        path = urlsplit(self.path).path
        if path == "/rrd_updates":
            self._rrd_updates()
            return
        if path != "/export_raw_vdi":
            self._answer(404, body=b"no handler for this path\n")
            return
        self._serve(self._export_raw_vdi, "VDI.export_raw_vdi")

    # -- GET /rrd_updates ------------------------------------------------------------------------------
    def _rrd_updates(self):
        """``?session_id=&start=&interval=&cf=AVERAGE[&vm_uuid=][&host=]``: the rows of the running VMs' RRDs
        since ``start`` (epoch seconds) as an ``xport`` XML document (rows newest first, NaN where there is no
        data). Only the AVERAGE consolidation is kept here (MIN and MAX: 400), host rows are not simulated."""
        xapi = self.server.xapi
        found = xapi.http_session(self._param("session_id", cookie_first=True), None)
        if found is None:
            self._answer(401, body=b"unauthorised\n")
            return
        try:
            start, interval = int(self._param("start") or 0), int(self._param("interval") or 5)
        except ValueError:
            self._answer(400, body=b"start and interval are integers\n")
            return
        if (self._param("cf") or "AVERAGE").upper() != "AVERAGE":
            self._answer(400, body=b"the XAPI stand-in keeps the AVERAGE consolidation only\n")
            return
        step, end, legend, rows = xapi.rrd_updates(start, interval, self._param("vm_uuid"))
        root = ET.Element("xport")
        meta = ET.SubElement(root, "meta")
        for tag, value in (("start", rows[-1][0] if rows else end), ("step", step), ("end", end),
                           ("rows", len(rows)), ("columns", len(legend))):
            ET.SubElement(meta, tag).text = str(value)
        entries = ET.SubElement(meta, "legend")
        for name in legend:
            ET.SubElement(entries, "entry").text = name
        data = ET.SubElement(root, "data")
        for stamp, values in rows:
            row = ET.SubElement(data, "row")
            ET.SubElement(row, "t").text = str(stamp)
            for value in values:
                ET.SubElement(row, "v").text = "NaN" if math.isnan(value) else "%.4f" % value
        self._answer(200, [("Content-Type", "text/xml")], ET.tostring(root))

    # -- PUT /import_raw_vdi --------------------------------------------------------------------------
    def _import_raw_vdi(self, xapi, session, task, body):
        """xapi's order (import_raw_vdi.ml): the VDI (``vdi``, a reference or a uuid; an unknown one is an
        exception outside every handler: 500, the caller's task untouched) or else an SR (``sr_id``,
        ``sr_uuid``: 400 and the task failed when neither); the format, ``chunked`` and the transfer encoding
        (404); a VDI made in the SR for a raw body of known length (400 otherwise); then 200 with the task,
        then the VDI attached read-write and the body written into it by vhd-tool."""
        vdi = self._param("vdi")
        if vdi is not None:
            vdi = xapi.http_lookup("VDI", vdi)
            if vdi is None:
                self._refuse(500, ["INTERNAL_ERROR", "Db_exn.Read_missing_uuid(VDI, , %s)" % self._param("vdi")],
                             body=body)
                return
        try:
            fmt = self._format()
            chunked = self._param("chunked") is not None
            if chunked and fmt != "raw":
                raise _refused("Cannot handle chunked VHD", 404)
            if self.headers.get("Transfer-Encoding"):
                # xapi reads no HTTP transfer encoding here ("chunked" is its own protocol, a query parameter)
                raise _refused("Cannot handle encoding: " + self.headers["Transfer-Encoding"], 404)
            if fmt in ("tar", "qcow2"):
                raise _refused("the XAPI stand-in does not implement import format " + fmt, 501)
            if vdi is None:
                vdi = self._new_vdi(xapi, session, fmt, body.left)
        except HandlerFailure as failure:
            self._refuse(failure.status, failure.description, task, body)
            return
        task = task or xapi.http_task(session, None, "Importing raw VDI")
        self._answer_streaming(200, [("task-id", task), ("Content-Type", "application/octet-stream")])
        try:
            busy = xapi.vdi_busy(vdi)
            if busy:  # attaching the VDI read-write to dom0 fails with its own error
                raise HandlerFailure(busy)
            receive = receive_chunked if chunked else RECEIVERS[fmt]
            receive(xapi, vdi, body, lambda done: xapi.task_progress(task, done))
        except HandlerFailure as failure:
            # the task fails, then the connection closes with the rest of the body unread, as in xapi
            xapi.task_done(task, failure.description, detail=failure.detail)
            return
        except OSError as exc:  # the client went away: vhd-tool fails reading the socket
            xapi.task_done(task, _io_error(str(exc)).description, detail=str(exc))
            return
        xapi.task_done(task, result=vdi)

    def _format(self):
        fmt = self._param("format")
        if fmt is None:
            return "raw"
        if fmt.lower() not in FORMATS:
            raise _refused("Unknown format " + fmt, 404)
        return fmt.lower()

    def _new_vdi(self, xapi, session, fmt, length):
        """No ``vdi``: a raw upload of known length into the SR makes its own VDI, as xapi does."""
        sr_id, sr_uuid = self._param("sr_id", cookie_first=True), self._param("sr_uuid", cookie_first=True)
        if sr_id is None and sr_uuid is None:
            raise HandlerFailure(["VDI_MISSING"], 400)  # "Require an SR or VDI to import"
        with xapi.lock:
            if sr_id is not None:
                sr = sr_id if sr_id in xapi.db["SR"] else None
                missing = ["HANDLE_INVALID", "SR", sr_id]
            else:
                sr = next((r for r, v in xapi.db["SR"].items() if v["uuid"] == sr_uuid), None)
                missing = ["UUID_INVALID", "SR", sr_uuid]
        if sr is None:
            raise HandlerFailure(missing, 400)
        if fmt == "vhd":
            raise _refused("Importing a VHD directly into an SR not yet supported", 400)
        if length is None:
            raise _refused("Not enough info supplied to import", 400)
        try:
            with xapi.lock:
                return xapi.api_VDI__create(session, {
                    "name_label": "Imported VDI", "name_description": "", "SR": sr, "virtual_size": str(length),
                    "type": "user", "sharable": False, "read_only": False, "other_config": {}})
        except XapiError as failure:
            raise HandlerFailure(failure.description, 500) from None

    def _answer_streaming(self, status, headers):
        """The status and headers, sent before the body is read (xapi answers 200 first, then receives);
        no Content-Length: the connection closes at the end."""
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

    # -- GET /export_raw_vdi --------------------------------------------------------------------------
    def _export_raw_vdi(self, xapi, session, task, body):
        """export_raw_vdi.ml: the VDI (no ``vdi`` or an unknown one: an exception outside every handler, 500);
        an unknown format 404 and the task failed; then 200 with the task, Content-Type and
        Content-Disposition, and the VDI's bytes up to the end of the connection (no Content-Length).
        format=raw only here: its virtual size, never-written parts as zeroes."""
        wanted = self._param("vdi")
        vdi = xapi.http_lookup("VDI", wanted) if wanted is not None else None
        if vdi is None:
            self._refuse(500, ["INTERNAL_ERROR", "Missing vdi query parameter" if wanted is None
                               else "Db_exn.Read_missing_uuid(VDI, , %s)" % wanted])
            return
        try:
            fmt = self._format()
            if fmt != "raw":
                raise _refused("the XAPI stand-in does not implement export format " + fmt, 501)
        except HandlerFailure as failure:
            self._refuse(failure.status, failure.description, task)
            return
        task = task or xapi.http_task(session, None, "Exporting raw VDI")
        record = xapi.http_vdi_record(vdi)
        size = int(record["virtual_size"])
        self._answer_streaming(200, [("task-id", task), ("Content-Type", CONTENT_TYPES[fmt]),
                                     ("Content-Disposition", 'attachment; filename="%s.%s"' % (record["uuid"], fmt))])
        try:
            for offset in range(0, size, MIB):
                self.wfile.write(xapi.read_content(vdi, offset, min(MIB, size - offset)))
                xapi.task_progress(task, (offset + MIB) / size)
        except OSError as exc:
            xapi.task_done(task, _io_error(str(exc)).description, detail=str(exc))
            return
        xapi.task_done(task, result=vdi)


class _Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(xapi, host="127.0.0.1", port=0):
    server = _Server((host, port), requestHandler=_Handler, allow_none=False, logRequests=False)
    server.register_instance(_Dispatcher(xapi))
    server.xapi = xapi  # for the HTTP handlers
    return server


class _Dispatcher:
    def __init__(self, xapi):
        self.xapi = xapi

    def _dispatch(self, method, params):
        return self.xapi.dispatch(method, params)


def main(argv=None):
    parser = argparse.ArgumentParser(description="XAPI (XenServer/XCP-ng) wire-protocol STAND-IN for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", required=True)
    parser.add_argument("--hosts", type=int, default=2, help="hypervisor hosts in the simulated pool")
    parser.add_argument("--seed-vms", type=int, default=0, help="ordinary VMs created at start")
    parser.add_argument("--async-delay", type=float, default=0.0, help="seconds an Async.* task stays pending")
    args = parser.parse_args(argv)
    xapi = Xapi(args.user, args.password, hosts=args.hosts, seed_vms=args.seed_vms, async_delay=args.async_delay)
    server = make_server(xapi, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print("XAPI stand-in listening on http://%s:%d/" % server.server_address[:2], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
