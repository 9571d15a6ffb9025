# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connector overhead: Sirocco's openstack connector beside bare openstacksdk, against the OpenStack stand-in.

    make openstack                                                       # the stand-in, once
    python tests/bench/connectors/openstack_case.py                      # 60 listed, 10 created and deleted, 3 runs

The same shape as run.py: median seconds over ``--runs`` runs, connector and SDK alternating,
a ratio column, nothing asserted. The stand-in is real Nova with the fake virt driver: a server
costs the whole API -> conductor -> scheduler -> compute path, so servers are few by default
(how long populating took is printed). The stand-in's two compute hosts are Nova's
MediumFakeDriver (10 vCPUs each; at the default cpu_allocation_ratio of 4.0, 80 one-vCPU servers
in all, fewer when other tests hold some): more than ~70 servers end in NoValidHost, so 1,000 is
out of reach without changing the stand-in. The admin project's instance quota (10) is raised for
the run and put back at the end.

* list: in pages of ``PAGE`` servers: the stand-in's Neutron (gunicorn) refuses request lines over
  4094 bytes, and Nova's GET /servers/detail asks Neutron for the ports of every server of a page in
  one URL, so a page of ~85 servers or more fails with a 500. The connector's paged listing
  (iter_machines, list_machines with limit and marker) beside the same calls
  (``compute.servers(details=True, limit=PAGE + 1, marker=...)``, cut after PAGE + 1 as the
  connector does; the servers have no network, so no Neutron call of ours) and the minimum (raw
  GET /servers/detail?limit=PAGE&marker=..., no SDK resource objects).
* create->delete: the connector's calls made directly (name check, image, create, poll until
  ACTIVE, read back; read, delete, poll until gone), and the minimum (create, poll; delete, poll).
  Every column polls every 0.25 s, the connector's POLL.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import statistics
import sys
import time

import openstack.exceptions

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import openstack as openstack_connector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec

STATE = "/var/tmp/sirocco-openstack"
IMAGE = "sirocco-tiny"
CONFIG = MachineConfiguration(cpu=1, memory=64 * 1024)  # the tiny flavor
POLL = openstack_connector.POLL
PAGE = 50


def connector():
    return openstack_connector.OpenStackConnector(
        options={"cloud": "sirocco-standin", "clouds_yaml": STATE + "/clouds.yaml", "image": IMAGE}, timeout=300)


def wait_active(sdk, server_id):
    while True:
        server = sdk.compute.get_server(server_id)
        if server.status == "ACTIVE" and server.task_state is None:
            return server
        if server.status == "ERROR":
            raise RuntimeError("server %s went to ERROR: %s" % (server_id, server.fault))
        time.sleep(POLL)


def wait_gone(sdk, server_id):
    while True:
        try:
            server = sdk.compute.get_server(server_id)
        except openstack.exceptions.NotFoundException:
            return
        if server.status == "DELETED":
            return
        time.sleep(POLL)


def populate(sdk, flavor, image, count, prefix):
    """``count`` servers in requests of up to 10 (Nova min/max_count), waited for until ACTIVE."""
    made = 0
    while made < count:
        batch = min(10, count - made)  # bigger multi-creates met NoValidHost on the stand-in
        sdk.compute.create_server(name="%s%d" % (prefix, made), flavor_id=flavor, image_id=image, networks="none",
                                  min_count=batch, max_count=batch)
        made += batch
    while True:
        found = [s for s in list_pages(sdk) if (s["name"] or "").startswith(prefix)]
        if any(s["status"] == "ERROR" for s in found):
            raise RuntimeError("a server went to ERROR while populating")
        if len(found) >= count and all(s["status"] == "ACTIVE" for s in found):
            return found
        time.sleep(1)


def list_pages(sdk):
    """Every server as Nova's JSON, page by page."""
    out, marker = [], None
    while True:
        page = sdk.compute.get("/servers/detail?limit=%d%s" % (PAGE, "&marker=" + marker if marker else "")
                               ).json()["servers"]
        out += page
        if len(page) < PAGE:
            return out
        marker = page[-1]["id"]


def list_sirocco(conn):
    return len(list(conn.iter_machines(page_size=PAGE)))


def list_same(sdk):
    count, marker = 0, None
    while True:
        query = {"details": True, "limit": PAGE + 1}
        if marker:
            query["marker"] = marker
        servers = list(itertools.islice(sdk.compute.servers(**query), PAGE + 1))
        count += len(servers[:PAGE])
        if len(servers) <= PAGE:
            return count
        marker = servers[PAGE - 1].id


def list_min(sdk):
    return len(list_pages(sdk))


def cycle_sirocco(conn, count, flavor, image):
    made = [conn.create_machine(MachineSpec(name="bench-c%d" % i, config=CONFIG, image=image,
                                            initial_state=states.STARTED)) for i in range(count)]
    for machine in made:
        conn.delete_machine(machine.id)


def cycle_same(sdk, count, flavor, image):
    made = []
    for i in range(count):
        name = "bench-b%d" % i
        [s for s in sdk.compute.servers(details=False, name="^%s$" % name) if s.name == name]
        sdk.image.get_image(image)
        server = sdk.compute.create_server(name=name, flavor_id=flavor, image_id=image, metadata={}, networks="none")
        wait_active(sdk, server.id)
        sdk.compute.get_server(server.id)
        made.append(server.id)
    for server_id in made:
        server = sdk.compute.get_server(server_id)
        sdk.compute.delete_server(server, ignore_missing=False)
        wait_gone(sdk, server_id)


def cycle_min(sdk, count, flavor, image):
    made = []
    for i in range(count):
        server = sdk.compute.create_server(name="bench-m%d" % i, flavor_id=flavor, image_id=image, networks="none")
        wait_active(sdk, server.id)
        made.append(server.id)
    for server_id in made:
        sdk.compute.delete_server(server_id)
        wait_gone(sdk, server_id)


def timed(call, *args):
    """(wall seconds, this process's CPU seconds) of one call (the CPU part excludes the services' time)."""
    start, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=60, help="servers to list (default 60; ~70 at most, see above)")
    parser.add_argument("--cycle", type=int, default=10, help="servers to create then delete (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; medians are printed (default 3)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # put the quota back on the way out
    conn = connector()
    sdk = conn.conn
    project = sdk.current_project_id
    before = sdk.get_compute_quotas(project)
    wanted = args.machines + args.cycle + 20
    sdk.set_compute_quotas(project, instances=wanted, cores=wanted * 2, ram=wanted * 2048)
    results = {}
    populated = []
    try:
        flavor = conn._pick_flavor(CONFIG).id
        image = sdk.image.find_image(IMAGE).id
        start = time.perf_counter()
        populated = populate(sdk, flavor, image, args.machines, "bench-l")
        fill = time.perf_counter() - start
        print("populated %d servers in %.1f s" % (args.machines, fill), file=sys.stderr, flush=True)
        contenders = [("sirocco", list_sirocco, conn), ("same", list_same, sdk), ("min", list_min, sdk)]
        for who, call, target in contenders:  # warm-up
            counted = call(target)
            assert counted >= args.machines, (who, counted)
        for run in range(args.runs):
            for who, call, target in (contenders if run % 2 == 0 else list(reversed(contenders))):
                results.setdefault(("list", who), []).append(timed(call, target))
            print("list run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)
        for server in populated:
            sdk.compute.delete_server(server["id"])
        for server in populated:
            wait_gone(sdk, server["id"])
        populated = []
        conn.capabilities()  # warm the flavor cache, as any earlier call would
        cycles = [("sirocco", cycle_sirocco, conn), ("same", cycle_same, sdk), ("min", cycle_min, sdk)]
        for run in range(args.runs):
            for who, call, target in (cycles if run % 2 == 0 else list(reversed(cycles))):
                results.setdefault(("cycle", who), []).append(timed(call, target, args.cycle, flavor, image))
            print("create/delete run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)
    finally:  # whatever of ours is left (a run stopped halfway)
        for server in sdk.compute.servers(details=False):
            if (server.name or "").startswith("bench-"):
                sdk.compute.delete_server(server.id, ignore_missing=True)
        sdk.set_compute_quotas(project, instances=before["instances"], cores=before["cores"], ram=before["ram"])

    titles = ((0, "wall-clock seconds"), (1, "CPU seconds of the client process (the services' time excluded)"))
    for index, title in titles:
        print()
        print("%s, medians of %d runs, OpenStack stand-in (Nova fake driver); populating %d servers took %.0f s"
              % (title, args.runs, args.machines, fill))
        print()
        head = ("connector", "task", "Sirocco", "bare SDK, same calls", "ratio", "bare SDK, minimum calls", "ratio")
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _h in head) + "|")
        for task, label in (("list", "list %d machines (pages of %d)" % (args.machines, PAGE)),
                            ("cycle", "create->delete %d machines" % args.cycle)):
            ours, same, least = (statistics.median(r[index] for r in results[(task, who)])
                                 for who in ("sirocco", "same", "min"))
            print("| openstack (vs openstacksdk) | %s | %.3f | %.3f | %.2f | %.3f | %.2f |"
                  % (label, ours, same, ours / same, least, ours / least))
    print()
    print("ratio = Sirocco / bare SDK (target: at most 1.10 against the same calls)")


if __name__ == "__main__":
    main()
