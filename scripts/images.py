# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image factory from the command line (run with the dev venv's python, as root for builds).

    python scripts/images.py build SPEC.json [--rebuild] [--max-age-days N] [--cache-dir DIR]
    python scripts/images.py plan SPEC.json            cached | build | stale
    python scripts/images.py list                      the cache's entries
    python scripts/images.py clean [--all] [--older-than-days N]

The cache is $SIROCCO_IMAGE_CACHE (default ~/.cache/sirocco/images), bounded by
$SIROCCO_IMAGE_CACHE_MAX_GIB (default 20). `make images-clean` runs `clean --all`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec


def _spec(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        import yaml  # a YAML spec, as in a playbook

        data = yaml.safe_load(text)
    return parse_spec(data)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="images", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cache-dir", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("spec")
    b.add_argument("--rebuild", action="store_true")
    b.add_argument("--max-age-days", type=float, default=None)
    p = sub.add_parser("plan")
    p.add_argument("spec")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--max-age-days", type=float, default=None)
    sub.add_parser("list")
    c = sub.add_parser("clean")
    c.add_argument("--all", action="store_true", help="remove every entry and the package-index cache")
    c.add_argument("--older-than-days", type=float, default=None)
    args = parser.parse_args(argv)
    cache = ImageCache(args.cache_dir)
    try:
        if args.command == "build":
            started = time.monotonic()
            result = factory.build(_spec(args.spec), cache_dir=cache, rebuild=args.rebuild,
                                   max_age_days=args.max_age_days,
                                   log=lambda line: print("  " + line, file=sys.stderr, flush=True))
            print(json.dumps({"cached": result.cached, "stale": result.stale, "files": result.image.files,
                              "virtual_size": result.image.virtual_size,
                              "seconds": round(time.monotonic() - started, 1),
                              "spec_hash": result.provenance["spec_hash"]}, indent=2))
        elif args.command == "plan":
            print(factory.plan(_spec(args.spec), cache_dir=cache, rebuild=args.rebuild,
                               max_age_days=args.max_age_days))
        elif args.command == "list":
            for row in cache.listing():
                print("%s  %-24s %-20s %8.1f MiB  built %s" % (
                    row["spec_hash"][:16], row["name"], ",".join(row["formats"]), row["bytes"] / 2**20,
                    time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["built_at"] or 0))))
            print("cache %s: %.1f MiB of %.1f GiB" % (cache.directory, cache.size() / 2**20, cache.max_bytes / 2**30))
        elif args.command == "clean":
            for path in cache.clean(older_than_days=args.older_than_days, everything=args.all):
                print("removed " + path)
    except SiroccoError as exc:
        print("images: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
