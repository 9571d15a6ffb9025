"""``siroccod place [FILE|-]``: JSON in, JSON out, exit 0 / 2 / 1, never a traceback."""

import io
import json
import subprocess
import sys

import pytest
from placement_helpers import host, vm

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import cli

GOOD = {"hosts": [host("a"), host("b", on=False)], "vms": [vm("x", 2, host="a"), vm("y", 2)],
        "constraints": [{"type": "spread", "vms": ["x", "y"]}], "time_limit": 2}


def run(argv, text=""):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, io.StringIO(text), out, err)
    return code, out.getvalue(), err.getvalue()


def test_plan_from_stdin():
    code, out, err = run(["-"], json.dumps(GOOD))
    assert code == 0 and err == ""
    plan = json.loads(out)
    assert set(plan) >= {"placement", "active_hosts", "power_watts", "migrations", "lower_bound_hosts", "status",
                         "solve_seconds"}
    assert plan["placement"]["x"] != plan["placement"]["y"] and plan["active_hosts"] == 2
    assert plan["status"] in ("optimal", "feasible", "heuristic") and plan["switch_on"] == ["b"]


def test_plan_from_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(GOOD))
    code, out, _err = run([str(path)])
    assert code == 0 and json.loads(out)["migrations"] == 0


def test_no_argument_reads_stdin():
    code, out, _err = run([], json.dumps(GOOD))
    assert code == 0 and json.loads(out)["lower_bound_hosts"] == 2


def test_infeasible_exit_2_with_reason():
    data = dict(GOOD, vms=[vm("x", 99)], constraints=[])
    code, out, _err = run(["-"], json.dumps(data))
    plan = json.loads(out)
    assert code == 2 and plan["status"] == "infeasible"
    assert "needs cpu 99" in plan["reason"] and plan["explanations"][0]["resource"] == "cpu"


@pytest.mark.parametrize("argv, text, words", [
    (["-"], "{not json", "invalid JSON"),
    (["-"], json.dumps({"hosts": [], "vms": [{"name": "x"}]}), "vms[0].cpu: is required"),
    (["-"], json.dumps(dict(GOOD, time_limit="soon")), "time_limit: expected a number"),
    (["/nonexistent/problem.json"], "", "cannot read /nonexistent/problem.json"),
    (["a.json", "b.json"], "", "at most one argument"),
])
def test_malformed_input_exit_1(argv, text, words):
    code, out, err = run(argv, text)
    assert code == 1
    assert words in json.loads(out)["error"] and words in err
    assert "Traceback" not in out + err


def test_help():
    code, out, _err = run(["--help"])
    assert code == 0 and "siroccod place" in out


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.sirocco.cimi.plugins.module_utils.placement.cli",
                           "-"], input="[]", capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "expected an object" in proc.stderr and "Traceback" not in proc.stderr
