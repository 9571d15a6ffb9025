# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk-format conversions with qemu-img, each one checked against the raw original.

raw -> qcow2 (compressed), vmdk (streamOptimized: what an OVA carries to vSphere), vhd (qemu's ``vpc``,
``subformat=fixed``: what XenServer and Azure take). Every output is checked with ``qemu-img info`` (format and
virtual size) and ``qemu-img compare`` against the raw file (``qemu-img check`` does not support vpc).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import ProviderUnavailable

# format -> (file extension, qemu-img driver, creation options)
FORMATS = {
    "raw": ("raw", "raw", []),
    "qcow2": ("qcow2", "qcow2", ["-c", "-o", "compression_type=zlib"]),
    "vmdk": ("vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
    "vhd": ("vhd", "vpc", ["-o", "subformat=fixed,force_size=on"]),
}


class ConversionError(ProviderUnavailable):
    """qemu-img failed, or its output does not match the original."""


def _run(args, timeout=3600):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise ConversionError("%s failed (exit %d): %s" % (" ".join(args[:2]), proc.returncode, detail))
    return proc.stdout


def info(path, fmt=None):
    """``qemu-img info --output=json`` of ``path`` as a dict."""
    args = ["qemu-img", "info", "--output=json"]
    if fmt:
        args += ["-f", FORMATS[fmt][1]]
    return json.loads(_run(args + [path]))


def convert(raw, fmt, dest, threads=2):
    """Write ``dest`` in ``fmt`` from the raw image ``raw`` and check it; returns ``dest``."""
    _ext, driver, options = FORMATS[fmt]
    if fmt == "raw":
        _run(["cp", "--sparse=always", raw, dest])
    else:
        _run(["qemu-img", "convert", "-m", str(threads), "-f", "raw", "-O", driver] + options + [raw, dest])
    check(raw, fmt, dest)
    return dest


def check(raw, fmt, path):
    """``ConversionError`` unless ``path`` is a ``fmt`` image of the raw file's virtual size and content."""
    driver = FORMATS[fmt][1]
    expected = os.path.getsize(raw)
    got = info(path, fmt)
    if got.get("format") != driver:
        raise ConversionError("%s: qemu-img reads format %r, expected %r" % (path, got.get("format"), driver))
    if got.get("virtual-size") != expected:
        raise ConversionError("%s: virtual size %s, expected %d" % (path, got.get("virtual-size"), expected))
    proc = subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", driver, raw, path],
                          capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise ConversionError("%s: qemu-img compare against the raw original: %s (exit %d)"
                              % (path, (proc.stderr or proc.stdout).strip() or "images differ", proc.returncode))
    return got


def sha256(path, chunk=4 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def qemu_img_version():
    out = _run(["qemu-img", "--version"])
    return out.splitlines()[0].replace("qemu-img version", "").strip()
