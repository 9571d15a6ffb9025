# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What cloud-init reads in a guest, made once for every connector that feeds it itself.

* ``guest_user_data``: the user-data a guest gets for a caller's userData and credential: the caller's
  userData as it is, or, when Sirocco has something to add (a credential's user other than the image's
  default user, the guest's SSH host keys), a MIME multipart of Sirocco's ``#cloud-config`` part then the
  caller's userData as a part of its own (cloud-init's documented multipart format, as its ``make-mime``
  tool writes it).
* ``nocloud_meta_data``: the NoCloud datasource's meta-data (instance-id, local-hostname, public-keys).
* ``nocloud_iso``: the NoCloud seed as an ISO 9660 image labelled ``cidata`` with Rock Ridge and Joliet
  names ``meta-data``, ``user-data`` and ``network-config`` (what ``cloud-localds`` writes with
  genisoimage), made with pycdlib (pure Python): cloud-init finds it by its label on any block device or
  CD-ROM.

YAML is written as JSON (JSON is valid YAML): no YAML library is needed in the guest's provider path.
"""

from __future__ import annotations

import io
import json
import re
from email import message_from_string
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DEFAULT_GUEST_USER, missing_sdk

try:
    import pycdlib
    PYCDLIB_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    pycdlib = None
    PYCDLIB_IMPORT_ERROR = exc

# The sudo rule of the user a credential names: what cloud images give their default user.
SUDO_ALL = "ALL=(ALL) NOPASSWD:ALL"
# cloud-init's user-data formats, by the first line of a part (cloudinit/handlers: type_from_starts_with);
# the longer prefixes first. Anything else goes as text/plain, which cloud-init classifies itself.
PART_TYPES = (
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("#cloud-config", "text/cloud-config"),
    ("#include-once", "text/x-include-once-url"),
    ("#include", "text/x-include-url"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", "text/jinja2"),
    ("#!", "text/x-shellscript"),
)
# cloud-init merges cloud-config parts in order, each by its own rules, and by default a later part's key
# replaces an earlier one's: the caller's own ``users`` would drop the credential's user. The caller's
# cloud-config part is merged with the rule cloud-init documents for appending lists instead; Sirocco's
# part sets nothing but ``users`` and ``ssh_keys``, so no other key of the caller's changes meaning.
APPEND_MERGE = "list(append)+dict(no_replace,recurse_list)+str()"
_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")


def credential_user(credential: dict | None) -> str | None:
    """The user a credential logs in as: its ``username``, else the image's default user; None without one."""
    if not credential:
        return None
    return credential.get("username") or DEFAULT_GUEST_USER


def host_name(name: str) -> str:
    """A host name (RFC 1123 label) for a machine's name: lower case, other characters as '-', 63 at most."""
    label = _HOSTNAME_BAD.sub("-", (name or "").lower()).strip("-")[:63].rstrip("-")
    return label or "sirocco"


def _part_type(text: str) -> str:
    for prefix, ctype in PART_TYPES:
        if text.startswith(prefix):
            return ctype
    return "text/plain"


def _text_part(text: str, ctype: str, filename: str) -> MIMEText:
    part = MIMEText(text, ctype.split("/", 1)[1], "us-ascii" if text.isascii() else "utf-8")
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def guest_user_data(user_data: str | None, credential: dict | None, host_keys: dict | None = None) -> str | None:
    """The user-data for a guest: ``user_data`` unchanged when Sirocco adds nothing to it, else a MIME
    multipart (``multipart/mixed``) of Sirocco's ``#cloud-config`` part then the caller's ``user_data`` as
    its own part (its type from its first line; a caller's MIME multipart is nested as it is).

    Sirocco's part holds ``users: [default, {name, ssh_authorized_keys, sudo, shell}]`` when ``credential``
    (``{"username", "key"}``) names a user other than the image's default one (whose key the datasource's
    metadata carries), and ``ssh_keys`` when ``host_keys`` (cloud-init's ``ssh_keys`` names, e.g.
    ``ed25519_private``/``ed25519_public``) are given."""
    config = {}
    credential = credential or {}
    user, key = credential.get("username"), credential.get("key")
    if key and user and user != DEFAULT_GUEST_USER:
        config["users"] = ["default", {"name": user, "ssh_authorized_keys": [key], "sudo": SUDO_ALL,
                                       "shell": "/bin/bash"}]
    if host_keys:
        config["ssh_keys"] = dict(host_keys)
    if not config:
        return user_data
    message = MIMEMultipart()
    message.attach(_text_part("#cloud-config\n" + json.dumps(config, indent=2, sort_keys=True) + "\n",
                              "text/cloud-config", "sirocco-credential.cfg"))
    if user_data:
        if user_data.lstrip().lower().startswith("content-type:"):
            message.attach(message_from_string(user_data.lstrip()))
        else:
            ctype = _part_type(user_data)
            part = _text_part(user_data, ctype, "user-data")
            if ctype == "text/cloud-config":
                part.add_header("Merge-Type", APPEND_MERGE)
            message.attach(part)
    return message.as_string()


def nocloud_meta_data(instance_id: str, hostname: str, keys: list | tuple | None = None) -> str:
    """The NoCloud datasource's meta-data (YAML, written as JSON values): ``instance-id``, ``local-hostname``
    (made a valid host name) and ``public-keys`` (the default user's authorized keys) when ``keys``."""
    lines = ["instance-id: %s" % json.dumps(str(instance_id)), "local-hostname: %s" % json.dumps(host_name(hostname))]
    if keys:
        lines.append("public-keys: %s" % json.dumps([str(k) for k in keys]))
    return "\n".join(lines) + "\n"


def nocloud_iso(meta_data: str, user_data: str | None, network_config: str | None = None,
                provider: str = "libvirt") -> bytes:
    """The NoCloud seed: an ISO 9660 image labelled ``cidata`` holding ``meta-data``, ``user-data`` (empty
    without userData: NoCloud needs the file) and, when given, ``network-config``, under Rock Ridge and
    Joliet names (ISO 9660 names ``METADATA.;1``...). ``provider`` names who needs pycdlib when it is
    missing (ProviderUnavailable)."""
    if pycdlib is None:
        raise missing_sdk(provider, "pycdlib", PYCDLIB_IMPORT_ERROR)
    files = [("METADATA.;1", "meta-data", meta_data), ("USERDATA.;1", "user-data", user_data or "")]
    if network_config is not None:
        files.append(("NETCONF.;1", "network-config", network_config))
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="cidata", joliet=3, rock_ridge="1.09")
    try:
        for iso_name, name, text in files:
            data = text.encode("utf-8")
            iso.add_fp(io.BytesIO(data), len(data), "/" + iso_name, rr_name=name, joliet_path="/" + name)
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()
