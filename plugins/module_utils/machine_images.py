# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Machine images for the modules: one name for all clouds, and the machine_image module's plan and execution.

``resolve_image(connector, ref)`` turns what a user wrote in ``machine_image:`` (a native id, a native name,
or a generic name that registration wrote as ``sirocco.image``) into one image of the provider, or an
InvalidInput listing what exists. The provider is the source of truth: nothing is remembered here.

``run(module)`` is the ``sirocco.cimi.machine_image`` module: its source (``build``, ``file``, ``url``,
``from_machine``) is checked, then planned (what exists under ``name``, what the spec hash stored with it
says), then, outside check mode, built or converted and registered. Every input is checked before anything is
built, uploaded or deleted. ``module`` is a ``module.SiroccoModule``: like module.py, this file serves the
modules only (the daemon registers images through the connectors and the factory directly).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.request
from urllib.parse import urlsplit

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import CPU_ARCHS, MachineImage
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMATS,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
    DiskImage,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.images import builder, factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.convert import sha256 as sha256_file
from ansible_collections.sirocco.cimi.plugins.module_utils.images.disks import convert_disk, disk_facts
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec
from ansible_collections.sirocco.cimi.plugins.module_utils.module import diff_view, string_map

# Stored with every image the module registers (where the provider keeps properties): the hash of what the
# image was made from. The same hash on the next run means nothing to do.
SPEC_PROPERTY = "sirocco.spec"
SOURCES = ("build", "file", "url", "from_machine")
IMPORT = "import"
CAPTURE = "capture"
DELETE = "delete"
BUILD = "build"
DIFF_FIELDS = ("name", "state", "description", "properties")
DOWNLOAD_CHUNK = 1 << 20
# The factory spec's name when ``build`` gives none: it names the built files only (the image's names are the
# module's name and generic_name), so that one spec is built once whatever the images made from it are called.
DEFAULT_SPEC_NAME = "sirocco-image"


# -- one name for all clouds ---------------------------------------------------------------------------
def describe(image):
    """``name (id)``, with the generic name when it is another one."""
    generic = (image.properties or {}).get(IMAGE_NAME_PROPERTY)
    text = "%s (%s)" % (image.name or image.id, image.id)
    if generic and generic != image.name:
        text += " as '%s'" % generic
    return text


def resolve_image(connector, ref, option="machine_image", attribute="machineImage"):
    """The MachineImage ``ref`` names on the provider: a native id, else a native name, else a generic name
    (``sirocco.image``, as registration wrote it). None found or several: InvalidInput naming ``option`` and
    listing the images that exist (or the candidates)."""
    try:
        return connector.get_machine_image(ref)
    except Unsupported:
        raise InvalidInput("%s: provider '%s' does not list images" % (option, connector.name),
                           attribute=attribute) from None
    except Conflict:  # several images have that native name
        found = [i for i in connector.list_machine_images() if i.name == ref]
        raise InvalidInput("%s: '%s' is ambiguous on provider '%s': %d images are named so: %s; use an id"
                           % (option, ref, connector.name, len(found), ", ".join(map(describe, found))),
                           attribute=attribute) from None
    except NotFound as exc:
        missing = exc
    try:
        images = connector.list_machine_images()
    except SiroccoError:  # the listing itself fails (e.g. no image store): that is the message
        raise InvalidInput("%s: cannot look up image '%s': %s" % (option, ref, missing.message),
                           attribute=attribute) from None
    found = [i for i in images if (i.properties or {}).get(IMAGE_NAME_PROPERTY) == ref]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidInput("%s: '%s' is ambiguous on provider '%s': %d images are registered under that generic "
                           "name: %s; use an id or a native name"
                           % (option, ref, connector.name, len(found), ", ".join(map(describe, found))),
                           attribute=attribute)
    raise InvalidInput("%s: no image '%s' on provider '%s' by id, name or generic name (images: %s)"
                       % (option, ref, connector.name, ", ".join(map(describe, images)) or "none"),
                       attribute=attribute)


# -- files ---------------------------------------------------------------------------------------------------
def download(url, dest, timeout):
    """The bytes at ``url`` (http or https) into ``dest``."""
    try:
        # an opener honours http_proxy & co. like urllib's default one (check_url let http and https through)
        with urllib.request.build_opener().open(url, timeout=timeout) as reply, open(dest, "wb") as out:
            shutil.copyfileobj(reply, out, DOWNLOAD_CHUNK)
    except (OSError, ValueError) as exc:
        raise InvalidInput("url: cannot download %s: %s" % (url, exc), attribute="url") from None
    return dest


# -- the module ----------------------------------------------------------------------------------------------
def check_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.hostname):
        raise InvalidInput("url: %r is not an http, https or file URL" % url, attribute="url")
    return url


def spec_hash(kind, digest, params):
    """The hash stored as ``sirocco.spec``: what the image is made from and what registration writes into it."""
    body = {"source": kind, "digest": digest, "arch": params.get("arch"), "boot": params.get("boot"),
            "generic_name": params.get("generic_name") or params["name"]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Source:
    """A checked ``state: present`` request: which source, its spec hash and what planning learnt."""

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value
        self.hash = None  # None: from_machine (a capture has nothing to compare)
        self.spec = None  # the factory's ImageSpec (build)
        self.file_format = None
        self.virtual_size = None
        self.machine = None
        self.build_plan = None  # cached | build | stale


def check_source(module):
    """The Source the options ask for, every input checked (nothing built, uploaded or captured)."""
    p = module.params
    kinds = [k for k in SOURCES if p.get(k) is not None and p.get(k) != ""]
    if len(kinds) != 1:
        raise InvalidInput("state=present needs exactly one of %s (got %s)"
                           % (", ".join(SOURCES), ", ".join(kinds) or "none"),
                           attribute=kinds[-1] if kinds else "build")
    kind = kinds[0]
    if p.get("arch") is not None and p["arch"] not in CPU_ARCHS:
        raise InvalidInput("arch: '%s' is not one of %s" % (p["arch"], ", ".join(CPU_ARCHS)), attribute="arch")
    source = Source(kind, p[kind])
    if kind == "build":
        data = dict(p["build"])
        data.setdefault("name", DEFAULT_SPEC_NAME)  # not the image's names: one spec, one build, any image name
        try:
            source.spec = parse_spec(data)
        except InvalidInput as exc:
            message = exc.message.replace("image spec: ", "", 1)
            raise InvalidInput("build: %s" % message, attribute="build") from None
        source.hash = spec_hash("build", source.spec.spec_hash(), p)
        source.build_plan = factory.plan(source.spec, cache_dir=p.get("cache_dir"), rebuild=p.get("rebuild"),
                                         max_age_days=p.get("max_age_days"))
    elif kind == "file":
        path = os.path.abspath(os.path.expanduser(p["file"]))
        source.value = path
        source.file_format, source.virtual_size = disk_facts(path)
        source.hash = spec_hash("file", sha256_file(path), p)
    elif kind == "url":
        source.hash = spec_hash("url", check_url(p["url"]), p)
    else:
        machine = module.connector.find_machine(p["from_machine"])
        if machine is None:
            try:
                machine = module.connector.get_machine(p["from_machine"])
            except NotFound:
                raise InvalidInput("from_machine: no machine '%s' on provider '%s'"
                                   % (p["from_machine"], module.connector.name), attribute="from_machine") from None
        source.machine = machine
    return source


def existing(connector, name):
    """The one image whose native name is ``name`` (None), Conflict when several are."""
    found = [i for i in connector.list_machine_images() if i.name == name]
    if len(found) > 1:
        raise Conflict("%d machine images are named '%s' on provider '%s': %s; delete all but one"
                       % (len(found), name, connector.name, ", ".join(map(describe, found))))
    return found[0] if found else None


def kept_differences(image, source, params):
    """What a provider that keeps no ``sirocco.spec`` does keep (generic name, architecture, virtual size) and
    that differs from the request: human-readable lines."""
    props = image.properties or {}
    wanted = {IMAGE_NAME_PROPERTY: params.get("generic_name") or params["name"],
              IMAGE_ARCH_PROPERTY: arch_of(params, source)}
    if source.virtual_size:
        wanted[IMAGE_SIZE_PROPERTY] = str(source.virtual_size)
    return ["%s is %s, wanted %s" % (key, props[key], value) for key, value in sorted(wanted.items())
            if props.get(key) is not None and props[key] != value]


def plan(image, source, force, params=None):
    """(operations, why): what takes the provider from ``image`` (the one named so, or None) to ``source``."""
    if image is None:
        return (CAPTURE if source.kind == "from_machine" else IMPORT,), None
    if source.hash is None:  # a capture: present is present
        return (), None
    stored = (image.properties or {}).get(SPEC_PROPERTY)
    if stored == source.hash:
        return (), None
    differ = kept_differences(image, source, params) if stored is None and params is not None else []
    if differ and not force:
        raise Conflict("image '%s' exists and was made from something else (%s); force=true replaces it"
                       % (image.name, "; ".join(differ)))
    if stored is None and not differ:
        why = ("provider keeps no %s property with its images: image '%s' is taken as it is (force=true replaces it)"
               % (SPEC_PROPERTY, image.name))
        if not force:
            return (), why
    elif not force:
        raise Conflict("image '%s' exists with another %s (%s, wanted %s): it was made from something "
                       "else; force=true replaces it" % (image.name, SPEC_PROPERTY, stored[:12], source.hash[:12]))
    return (DELETE, IMPORT), None


def predicted(module, source, image, operations):
    """The MachineImage JSON check mode reports."""
    p = module.params
    if not operations:
        return image.to_json()
    props = dict(properties_of(p))
    if source.hash:
        props[SPEC_PROPERTY] = source.hash
    props[IMAGE_NAME_PROPERTY] = p.get("generic_name") or p["name"]
    props[IMAGE_ARCH_PROPERTY] = arch_of(p, source)
    if source.virtual_size:
        props[IMAGE_SIZE_PROPERTY] = str(source.virtual_size)
    return MachineImage(name=p["name"], description=p.get("description"), properties=props, state="AVAILABLE",
                        type="IMAGE").to_json()


def properties_of(params):
    return string_map(params.get("properties"), "properties") or {}


def arch_of(params, source):
    if params.get("arch"):
        return params["arch"]
    if source.spec is not None:
        return source.spec.distro["cpu_arch"]
    return "x86_64"


def differences(image, params):
    """What the existing image has other than the options ask, that only registration sets."""
    found = []
    if params.get("description") is not None and image.description != params["description"]:
        found.append("description differs")
    for key, value in sorted(properties_of(params).items()):
        if key in (image.properties or {}) and image.properties[key] != value:
            found.append("properties.%s differs" % key)
    return found


def run(module):
    """The machine_image module: present (build, file, url, from_machine) or absent, by native name."""
    p = module.params
    connector = module.connector
    capabilities = connector.capabilities()
    result = dict(changed=False, actions=[])
    source = None
    if p["state"] == "present":
        source = check_source(module)
        if source.kind == "from_machine":
            capabilities.require("machine.capture")
        else:
            capabilities.require("machine_image.import")
        if source.kind == "url" and connector.name != "cimi" and not urlsplit(source.value).scheme.startswith("http"):
            raise InvalidInput("url: a %s URL is only passed on to a CIMI endpoint; give file: for a local file"
                               % urlsplit(source.value).scheme, attribute="url")
        if source.build_plan is not None:
            result["factory"] = dict(plan=source.build_plan)
    image = existing(connector, p["name"])
    if p["state"] == "absent":
        operations = (DELETE,) if image is not None else ()
        if operations:
            capabilities.require("machine_image.delete")
    else:
        operations, why = plan(image, source, p["force"], p)
        if why:
            module.warn(why)
        if DELETE in operations:
            capabilities.require("machine_image.delete")
        if image is not None and not operations:
            for line in differences(image, p):
                module.warn("image '%s' left unchanged: %s (only registration sets these)" % (p["name"], line))
        if source.kind == "build" and IMPORT in operations and source.build_plan != "cached":
            operations = (BUILD,) + tuple(operations)
            if not module.check_mode:
                try:
                    builder.preflight()  # root and the tools, named, before anything changes
                except ProviderUnavailable as exc:
                    raise ProviderUnavailable("build: %s" % exc.message) from None
    before = image.to_json() if image is not None else {}
    result.update(changed=bool(operations), actions=list(operations))
    if module.check_mode:
        after = predicted(module, source, image, operations) if p["state"] == "present" else {}
    else:
        after = execute(module, source, image, operations, result)
    if p["state"] == "present":
        result["machine_image"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def execute(module, source, image, operations, result):
    """Run the planned operations; the image's JSON afterwards ({} once deleted)."""
    connector = module.connector
    p = module.params
    if not operations:
        return image.to_json() if image is not None else {}
    if operations == (DELETE,):
        connector.delete_machine_image(image.id)
        wait_gone(module, image.id)
        return {}
    if CAPTURE in operations:
        captured = connector.capture_machine(source.machine.id, p["name"], p.get("description"))
        return wait_available(module, captured).to_json()
    workdir = tempfile.mkdtemp(prefix="sirocco-image-")
    try:
        disk = disk_image(module, source, workdir, result)  # built, downloaded, converted: before any delete
        if DELETE in operations:
            connector.delete_machine_image(image.id)
            wait_gone(module, image.id)
        try:
            registered = connector.import_machine_image(disk)
        except InvalidInput as exc:  # a CIMI endpoint refusing the location: the source option is at fault
            if exc.attribute in (None, "imageLocation") or "imageLocation" in exc.message:
                raise InvalidInput("%s: %s" % (source.kind, exc.message), attribute=source.kind) from None
            raise
        return wait_available(module, registered).to_json()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def disk_image(module, source, workdir, result):
    """The DiskImage to register, in a format the provider takes (converted with qemu-img when needed)."""
    p = module.params
    connector = module.connector
    formats = tuple(connector.capabilities().image_formats)
    props = dict(properties_of(p))
    props[SPEC_PROPERTY] = source.hash
    image = DiskImage(name=p["name"], arch=arch_of(p, source), boot=p.get("boot") or "bios",
                      generic_name=p.get("generic_name") or p["name"], description=p.get("description"),
                      properties=props)
    if source.kind == "build":
        lines = []
        built = factory.build(source.spec, cache_dir=p.get("cache_dir"), rebuild=p.get("rebuild"),
                              max_age_days=p.get("max_age_days"), log=lines.append)
        result["provenance"] = built.provenance
        result["factory"] = dict(plan=source.build_plan, cached=built.cached, stale=built.stale, log=lines)
        image.files = dict(built.image.files)
        image.checksums = dict(built.image.checksums)
        image.virtual_size = built.image.virtual_size
        image.boot = p.get("boot") or built.image.boot
        image.description = p.get("description") or built.image.description
        image.properties = dict(built.image.properties or {}, **props)
    elif source.kind == "url":
        if connector.name == "cimi":  # the endpoint fetches it itself
            image.url = source.value
            return image
        path = download(source.value, os.path.join(workdir, "download"), p.get("timeout") or 60)
        image.files = {}
        fmt, image.virtual_size = disk_facts(path, "url")
        image.files[fmt] = path
    else:
        image.files = {source.file_format: source.value}
        image.virtual_size = source.virtual_size
    if not any(fmt in image.files for fmt in formats):
        fmt = formats[0]
        src_fmt = next(f for f in IMAGE_FORMATS if f in image.files)
        dest = os.path.join(workdir, "%s.%s" % (p["name"], fmt))
        image.files = {fmt: convert_disk(image.files[src_fmt], src_fmt, fmt, dest)}
        image.checksums = {}
    if image.checksums == {} and connector.name == "cimi":
        fmt = next(f for f in formats if f in image.files)
        image.checksums = {fmt: sha256_file(image.files[fmt])}
    return image


def wait_available(module, image):
    """The image once AVAILABLE (within wait_timeout), or as it is when wait=false."""
    if not module.params.get("wait") or image.state in ("AVAILABLE", None):
        return image
    deadline = module.deadline
    while True:
        image = module.connector.get_machine_image(image.id)
        if image.state == "AVAILABLE":
            return image
        if image.state == "ERROR":
            raise Conflict("machine image '%s' went to state ERROR" % image.name)
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: machine image '%s' still %s"
                                   % (module.params.get("wait_timeout"), image.name, image.state))
        time.sleep(0.5)


def wait_gone(module, image_id):
    """Wait (within wait_timeout, when wait=true) until the image is no longer listed."""
    if not module.params.get("wait"):
        return
    deadline = module.deadline
    while image_id in {i.id for i in module.connector.list_machine_images()}:
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: machine image %s is still there"
                                   % (module.params.get("wait_timeout"), image_id))
        time.sleep(0.5)


def run_info(module):
    """The machine_image_info module: images of the provider, by name, generic name and $filter."""
    p = module.params
    match = parse_filter(p["filter"]) if p["filter"] is not None else None  # checked before any call
    images = module.connector.list_machine_images()
    docs = [i.to_json() for i in images
            if (p["name"] is None or i.name == p["name"])
            and (p["generic_name"] is None or (i.properties or {}).get(IMAGE_NAME_PROPERTY) == p["generic_name"])]
    docs = [d for d in docs if match is None or match.matches(d)]
    return dict(changed=False, machine_images=sorted(docs, key=lambda d: (d.get("name") or "", d.get("id") or "")))
