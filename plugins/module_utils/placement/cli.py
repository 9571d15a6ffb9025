# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``siroccod place [FILE|-]``: the optimizer on its own, JSON in, JSON out.

Exit status: 0 a plan was found (and passed the independent checker), 2 no
plan (``"status": "infeasible"`` with a ``reason``), 1 malformed input (a JSON
``{"error": ..., "field": ...}`` on stdout, the message on stderr). The daemon's
CLI calls ``main``; ``python -m ...placement.cli`` works too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import check, energy
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import PlacementInputError, parse_problem

USAGE = """usage: siroccod place [FILE|-]

Read a placement problem as JSON from FILE (or standard input) and print the plan as JSON.
Input: {"hosts": [{"name", "cpu", "memory", "power_idle", "power_max", "on"?}],
        "vms": [{"name", "cpu", "memory", "host"?}],
        "constraints"?: [{"type": "spread|gather|ban|fence|among|max_online|preserve",
                          "vms"?, "hosts"?, "groups"?, "amount"?}],
        "migration_cost"?: watts, "time_limit"?: seconds, "max_migrations"?: N}
Exit: 0 plan found, 2 infeasible (with a reason), 1 malformed input.
"""


def _error(stdout, stderr, message, field=None):
    json.dump({"error": message, "field": field}, stdout)
    stdout.write("\n")
    stderr.write("siroccod place: %s\n" % message)
    return 1


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:

    """Run ``siroccod place``; ``argv`` excludes the program and sub-command names. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if argv and argv[0] in ("-h", "--help"):
        stdout.write(USAGE)
        return 0
    if len(argv) > 1:
        return _error(stdout, stderr, "expected at most one argument (FILE or -), got %d" % len(argv))
    source = argv[0] if argv else "-"
    try:
        if source == "-":
            text = stdin.read()
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        return _error(stdout, stderr, "cannot read %s: %s" % (source, exc.strerror or exc))
    except UnicodeDecodeError:
        return _error(stdout, stderr, "%s is not UTF-8 text" % source)
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _error(stdout, stderr, "invalid JSON: %s" % exc)
    try:
        problem = parse_problem(data)
    except PlacementInputError as exc:
        return _error(stdout, stderr, str(exc), exc.attribute)
    result = energy.solve(problem)
    if result.found:
        violations = check.check(problem, result.placement)
        if violations:  # never print a plan the checker rejects
            result.status = "infeasible"
            result.reason = "internal error: the plan failed the checker: " + "; ".join(violations[:3])
    json.dump(result.to_json(), stdout, indent=2, sort_keys=True)
    stdout.write("\n")
    return 0 if result.found else 2


if __name__ == "__main__":
    raise SystemExit(main())
