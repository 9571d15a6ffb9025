"""playbooks/meters.yml, as its header says to run it: a machine's meters into a CSV file.

On the real libvirtd (its default: a machine of its own, the current samples) and on a ``siroccod serve``
that samples every 2 s (its stored history: several rows per aspect over the window). The CSV file is read
back with the csv module: its header, one row per sample, numbers, times in order.
"""

import csv
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "meters.yml"
HEADER = ["machine", "aspect", "units", "timestamp", "value"]


def run_playbook(collections_path, tmp_path, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), PWD=str(tmp_path))
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), *extra],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "meters.csv", newline="") as handle:
        return list(csv.reader(handle))


def _machines(uri, prefix):
    conn = libvirt.open(uri)
    try:
        return [d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
    finally:
        conn.close()


def test_meters_of_a_libvirt_machine_into_csv(libvirtd, collections_path, tmp_path):
    rows = run_playbook(collections_path, tmp_path)
    assert rows[0] == HEADER
    body = rows[1:]
    assert sorted(r[1] for r in body) == sorted(["cpu", "memory", "disk", "inputBandwidth", "outputBandwidth"])
    assert len({r[0] for r in body}) == 1 and body[0][0].startswith("sirocco-meters-")
    for row in body:
        float(row[4])
        datetime.fromisoformat(row[3].replace("Z", "+00:00"))
    assert _machines(libvirtd, "sirocco-meters-") == []  # its own machine is removed


def test_meters_history_from_siroccod_into_csv(siroccod, collections_path, tmp_path):
    connection = {"provider": "cimi", "uri": siroccod["sirocco_it_cimi_uri"],
                  "username": siroccod["sirocco_it_cimi_username"], "password": siroccod["sirocco_it_cimi_password"]}
    rows = run_playbook(collections_path, tmp_path, "-e", json.dumps(
        {"meters_connection": connection, "meters_wait": 7, "meters_aspects": ["cpu", "memory"]}))
    assert rows[0] == HEADER
    cpu = [r for r in rows[1:] if r[1] == "cpu"]
    assert len(cpu) >= 3, rows  # the daemon's stored samples, not only the latest
    stamps = [r[3] for r in cpu]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert {r[2] for r in rows[1:] if r[1] == "memory"} == {"KiB"}
