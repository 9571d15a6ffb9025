# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image factory benchmark: cold and cached build times, image sizes per format (a table, no asserts).

    python tests/bench/images/run.py                  # 1 cold build of each spec, 5 cached, baseline (~4 min)
    python tests/bench/images/run.py --cold 3         # the median of 3 cold builds
    python tests/bench/images/run.py --no-baseline    # skip the plain mmdebstrap baseline

The spec is the issue's target: a minimal bootable image with cloud-init and openssh-server (the factory's
defaults: qemu-guest-agent, open-vm-tools, dbus/logind), in every format. Builds go to a throwaway cache
(``--cache-dir``) so the cold build is cold; apt downloads come from this machine's mirror each time.
The baseline, in the same process, is mmdebstrap alone installing the same package list into a directory:
the floor any mmdebstrap-based builder pays; the ratio says what the disk, bootloader and conversions add.
Targets (issue 12): cold <= 5 min, qcow2 <= 400 MB. Needs root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory, mirror
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

SPEC = {"name": "bench-minimal", "formats": ["qcow2", "raw", "vmdk", "vhd"]}
TARGET_SECONDS = 300
TARGET_QCOW2 = 400 * 1000 * 1000


def table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = "| " + " | ".join("%-*s" % (w, h) for w, h in zip(widths, head, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join("%-*s" % (w, c) for w, c in zip(widths, row, strict=True)) + " |")
    print()


def baseline(spec, work):
    """Seconds for mmdebstrap alone: the same packages into a directory, same mirror, nothing else."""
    sources = os.path.join(work, "mirror.sources")
    with open(sources, "w", encoding="utf-8") as handle:
        handle.write(mirror.sources_for(spec.distro))
    root = os.path.join(work, "baseline-root")
    started = time.monotonic()
    subprocess.run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(spec.all_packages()),
                    "--aptopt=APT::Install-Recommends \"false\"", spec.distro["codename"], root, sources],
                   check=True, capture_output=True, env=dict(os.environ, TMPDIR=work))
    seconds = time.monotonic() - started
    du = subprocess.run(["du", "-sb", root], check=True, capture_output=True, text=True).stdout.split()[0]
    shutil.rmtree(root, ignore_errors=True)
    return seconds, int(du)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cold", type=int, default=1, help="cold builds (median)")
    parser.add_argument("--cached", type=int, default=5, help="cached builds (median)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-qcow2-only", action="store_true", help="skip the cold qcow2-only build")
    parser.add_argument("--cache-dir", default=None, help="default: a throwaway directory under /var/tmp")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench-images: building images needs root", file=sys.stderr)
        return 2
    work = args.cache_dir or tempfile.mkdtemp(prefix="sirocco-bench-images-", dir="/var/tmp")
    cache = ImageCache(work)
    try:
        started = time.monotonic()
        spec = parse_spec(SPEC)
        check_seconds = time.monotonic() - started
        colds, records = [], []
        for _attempt in range(args.cold):
            started = time.monotonic()
            result = factory.build(spec, cache_dir=cache, rebuild=True)
            colds.append(time.monotonic() - started)
            records.append(result.provenance)
        qcow2_only = None
        if not args.no_qcow2_only:
            started = time.monotonic()
            factory.build(parse_spec(dict(SPEC, name="bench-qcow2", formats=["qcow2"])), cache_dir=cache,
                          rebuild=True)
            qcow2_only = time.monotonic() - started
        cached = []
        for _attempt in range(args.cached):
            started = time.monotonic()
            hit = factory.build(parse_spec(SPEC), cache_dir=cache)
            cached.append(time.monotonic() - started)
            assert hit.cached
        base = None if args.no_baseline else baseline(spec, work)
        record = records[-1]
        cold = statistics.median(colds)
        steps = {k: statistics.median(r["steps_seconds"][k] for r in records) for k in record["steps_seconds"]}

        print("\nImage factory: spec %s, %d packages, %s (%d cold, %d cached runs)\n"
              % (record["spec_hash"][:12], len(record["packages"]), record["builder"]["name"], args.cold,
                 args.cached))
        rows = [["package check (parse_spec, mirror index)", "%.1f s" % check_seconds, ""],
                ["cold build, all 4 formats (median)", "%.1f s" % cold, "%.2f of the 5 min target" %
                 (cold / TARGET_SECONDS)]]
        for step, seconds in steps.items():
            rows.append(["  of which %s" % step, "%.1f s" % seconds, "%.0f %%" % (100 * seconds / cold)])
        if qcow2_only:
            rows.append(["cold build, qcow2 only (the issue's target)", "%.1f s" % qcow2_only,
                         "%.2f of the 5 min target" % (qcow2_only / TARGET_SECONDS)])
        rows.append(["cached build (median)", "%.2f ms" % (1000 * statistics.median(cached)),
                     "1/%.0f of cold" % (cold / max(statistics.median(cached), 1e-6))])
        if base:
            rows.append(["baseline: mmdebstrap alone, same packages", "%.1f s" % base[0],
                         "factory = %.2f x baseline" % (cold / base[0])])
        table(["step", "time", "ratio"], rows)

        rows = []
        for fmt, item in sorted(record["files"].items()):
            rows.append([fmt, "%.1f MB" % (item["bytes"] / 1e6), "%.1f MB" % (item["allocated"] / 1e6),
                         "%.2f of 400 MB" % (item["bytes"] / TARGET_QCOW2) if fmt == "qcow2" else ""])
        if base:
            rows.append(["(root tree, du)", "%.1f MB" % (base[1] / 1e6), "", ""])
        rows.append(["virtual size", "%.1f GB" % (record["virtual_size"] / 1e9), "", ""])
        table(["format", "file size", "allocated", "target"], rows)
    finally:
        if not args.cache_dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
