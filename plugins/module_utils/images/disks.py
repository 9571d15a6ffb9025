# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disk image file someone gave (the machine_image module's ``file:``/``url:``, the daemon's imageLocation):
what it is, by ``qemu-img info``, and the same disk in the format a provider takes.

Only self-contained images pass: a backing file, an external data file or a vmdk's extent elsewhere would make
qemu-img read other files (any file of this machine) into the image. A fixed VHD has no header, so qemu-img
probes it as raw: its footer (cookie ``conectix`` in the last 512 bytes) tells it apart.

Messages name the image as ``shown`` (the module: the path the user gave; the daemon: ``imageLocation``, never
its own paths).
"""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import IMAGE_FORMATS
from ansible_collections.sirocco.cimi.plugins.module_utils.images.convert import FORMATS

FORMAT_OF_DRIVER = {driver: fmt for fmt, (_ext, driver, _options) in FORMATS.items()}


def _qemu_img(args, path, shown, option, timeout=3600):
    try:
        proc = subprocess.run(["qemu-img"] + args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ProviderUnavailable("reading disk images needs qemu-img (Debian package qemu-utils), which is not "
                                  "installed") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-500:].replace(path, shown)
        raise InvalidInput("%s: qemu-img %s failed: %s" % (shown, args[0], detail), attribute=option)
    return proc.stdout


def vhd_footer(path: str) -> bool:
    """Whether the file ends with a VHD footer, as a fixed VHD does."""
    size = os.path.getsize(path)
    if size < 512:
        return False
    with open(path, "rb") as handle:
        handle.seek(size - 512)
        return handle.read(8) == b"conectix"


def disk_facts(path: str, option: str = "file", shown: str | None = None) -> tuple[str, int]:
    """(format, virtual size in bytes) of the disk image at ``path``; InvalidInput naming ``option`` when it is
    missing, unreadable, not in IMAGE_FORMATS, or not self-contained."""
    shown = shown or path
    if not os.path.isfile(path):
        raise InvalidInput("%s: %s is not a file" % (option, shown), attribute=option)
    if not os.access(path, os.R_OK):
        raise InvalidInput("%s: %s is not readable" % (option, shown), attribute=option)
    info = json.loads(_qemu_img(["info", "--output=json", path], path, shown, option))
    if info.get("format") == "raw" and vhd_footer(path):
        info = json.loads(_qemu_img(["info", "--output=json", "-f", "vpc", path], path, shown, option))
    fmt = FORMAT_OF_DRIVER.get(info.get("format"))
    if fmt is None:
        raise InvalidInput("%s: %s is a %s image; Sirocco registers %s"
                           % (option, shown, info.get("format"), ", ".join(IMAGE_FORMATS)), attribute=option)
    specific = (info.get("format-specific") or {}).get("data") or {}
    if info.get("backing-filename") or info.get("full-backing-filename") or specific.get("data-file"):
        raise InvalidInput("%s: %s is not self-contained (it has a backing or data file); flatten it with "
                           "qemu-img convert first" % (option, shown), attribute=option)
    extents = specific.get("extents") or []
    if fmt == "vmdk" and (len(extents) > 1 or any(os.path.realpath(e.get("filename", path)) != os.path.realpath(path)
                                                  for e in extents)):
        raise InvalidInput("%s: %s is a vmdk whose extents are other files; give a single-file (streamOptimized) "
                           "vmdk" % (option, shown), attribute=option)
    size = info.get("virtual-size")
    if not isinstance(size, int) or size <= 0:
        raise InvalidInput("%s: %s has no virtual size" % (option, shown), attribute=option)
    return fmt, size


def convert_disk(path: str, src_fmt: str, fmt: str, dest: str, option: str = "file",
                 shown: str | None = None) -> str:
    """``dest`` written in ``fmt`` (the factory's options: qcow2 compressed, vmdk streamOptimized, vhd fixed)
    from ``path``, a ``src_fmt`` image, and compared with it by qemu-img; returns ``dest``."""
    shown = shown or path
    src = FORMATS[src_fmt][1]
    _ext, driver, options = FORMATS[fmt]
    _qemu_img(["convert", "-f", src, "-O", driver] + options + [path, dest], path, shown, option)
    _qemu_img(["compare", "-q", "-f", src, "-F", driver, path, dest], path, shown, option)
    return dest
