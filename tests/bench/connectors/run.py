# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connector overhead: Sirocco's ec2 and libcloud connectors beside their bare SDKs, against moto.

    python tests/bench/connectors/run.py                 # 1,000 machines listed, 50 created and deleted, 5 runs
    python tests/bench/connectors/run.py --machines 200 --cycle 10 --runs 3   # quicker

One moto server (tests/standins/moto) serves every run. For each connector it prints
the median seconds, over ``--runs`` runs, to

* list ``--machines`` machines (one full listing), and
* create then delete ``--cycle`` machines (each created running, then each deleted and
  waited for until gone),

beside the bare SDK doing the same API calls directly in the same run (boto3 for ec2,
libcloud's EC2 driver for libcloud), and the ratio (the target is 1.10 at most). A last
row per connector shows the bare SDK doing only the minimum (list: DescribeInstances;
create: RunInstances and a wait; delete: TerminateInstances and a wait), to show
what the connector's extra calls (instance types, the name-conflict check, reading
the machine back with its root disk size) cost on top. Runs alternate connector and SDK so that a slow
moment hits both; moto is reset before every create/delete run. Nothing here asserts
on time.

The vsphere connector (vs pyvmomi, on vcsim) and the openstack connector (vs openstacksdk, on
the OpenStack stand-in) have cases of their own in the same shape: vsphere_case.py and
openstack_case.py next to this file; README.md there holds the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import statistics
import sys
import time
from pathlib import Path

import boto3
from libcloud.compute.providers import get_driver

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import ec2 as ec2_connector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libcloud import LibcloudConnector

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("sirocco_moto_standin", ROOT / "standins" / "moto" / "standin.py")
moto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(moto)

REGION = "us-east-1"
TYPE = "t2.micro"
CONFIG = MachineConfiguration(cpu=1, memory=1024 * 1024)


class Bench:
    def __init__(self, server):
        self.server = server
        self.seed = None

    # -- set-up ----------------------------------------------------------------------------------
    def client(self, service="ec2"):
        return boto3.client(service, endpoint_url=self.server.url, region_name=REGION, **self.server.credentials)

    def reset(self):
        """An empty moto (every backend rebuilt, then warmed up) with one AMI of our own."""
        self.server.reset()
        ec2 = self.client()
        public = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=public, InstanceType=TYPE, MinCount=1, MaxCount=1)["Instances"][0]
        self.seed = ec2.create_image(InstanceId=instance["InstanceId"], Name="bench-seed")["ImageId"]
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        ec2.describe_instance_types(InstanceTypes=[TYPE])

    def populate(self, count):
        ec2 = self.client()
        made = 0
        while made < count:
            batch = min(250, count - made)
            ec2.run_instances(ImageId=self.seed, InstanceType=TYPE, MinCount=batch, MaxCount=batch,
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "Name", "Value": "bench-%d" % made}]}])
            made += batch

    def ec2(self):
        return ec2_connector.EC2Connector(uri=self.server.url, username=self.server.access_key,
                                          password=self.server.secret_key, region=REGION, timeout=120,
                                          options={"instance_types": ["t2.*"], "image": self.seed})

    def libcloud(self):
        return LibcloudConnector(uri=self.server.url, username=self.server.access_key,
                                 password=self.server.secret_key, region=REGION, timeout=120,
                                 options={"driver": "ec2", "driver_kwargs": {"signature_version": "4"},
                                          "image": self.seed, "size_filter": ["t2.*"]})

    def driver(self):
        return get_driver("ec2")(self.server.access_key, self.server.secret_key, host="127.0.0.1",
                                 port=self.server.port, secure=False, region=REGION, signature_version="4",
                                 timeout=120)

    # -- listing ---------------------------------------------------------------------------------
    @staticmethod
    def list_ec2(conn):
        return len(conn.list_machines().items)

    @staticmethod
    def list_boto3_same(ec2):
        """What the connector asks: DescribeInstances pages, then the instance types they use, by name
        (a listing leaves root disk sizes, DescribeVolumes, to get_machine)."""
        instances = [i for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1000})
                     for r in page["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        ec2.describe_instance_types(InstanceTypes=sorted({i["InstanceType"] for i in instances}))
        return len(instances)

    @staticmethod
    def list_boto3_min(ec2):
        return sum(len(r["Instances"]) for page in ec2.get_paginator("describe_instances").paginate()
                   for r in page["Reservations"])

    @staticmethod
    def list_libcloud(conn):
        return len(conn.list_machines().items)

    @staticmethod
    def list_driver_same(driver):
        """What the connector asks: every node, then every volume (attachments and root disks)."""
        nodes = [n for n in driver.list_nodes() if n.extra.get("status") != "terminated"]
        driver.list_volumes()
        return len(nodes)

    @staticmethod
    def list_driver_min(driver):
        return len(driver.list_nodes())

    # -- create -> delete ------------------------------------------------------------------------
    def cycle_ec2(self, conn, count):
        made = [conn.create_machine(MachineSpec(name="bench-c%d" % i, config=CONFIG, image=self.seed,
                                                initial_state=states.STARTED)) for i in range(count)]
        for machine in made:
            conn.delete_machine(machine.id)

    def cycle_boto3_same(self, ec2, count):
        """The connector's calls, made directly: name check, image, run, wait, read back; look up, terminate, wait."""
        made = []
        for i in range(count):
            name = "bench-b%d" % i
            ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
            ec2.describe_images(ImageIds=[self.seed])
            instance = ec2.run_instances(
                ImageId=self.seed, InstanceType=TYPE, MinCount=1, MaxCount=1,
                ClientToken="bench-%d-%f" % (i, time.time()), Placement={"AvailabilityZone": REGION + "a"},
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}])
            instance_id = instance["Instances"][0]["InstanceId"]
            ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 2})
            found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            root = found["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [root]}])
            made.append(instance_id)
        for instance_id in made:
            ec2.describe_instances(InstanceIds=[instance_id])
            ec2.terminate_instances(InstanceIds=[instance_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 2})

    def cycle_boto3_min(self, ec2, count):
        made = []
        for i in range(count):
            instance = ec2.run_instances(ImageId=self.seed, InstanceType=TYPE, MinCount=1, MaxCount=1,
                                         TagSpecifications=[{"ResourceType": "instance",
                                                             "Tags": [{"Key": "Name", "Value": "bench-m%d" % i}]}])
            instance_id = instance["Instances"][0]["InstanceId"]
            ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 2})
            made.append(instance_id)
        for instance_id in made:
            ec2.terminate_instances(InstanceIds=[instance_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 2})

    def cycle_libcloud(self, conn, count):
        self.cycle_ec2(conn, count)

    def cycle_driver_same(self, driver, count):
        """The libcloud connector's driver calls, made directly."""
        size = next(s for s in driver.list_sizes() if s.id == TYPE)
        location = driver.list_locations()[0]
        made = []
        for i in range(count):
            name = "bench-d%d" % i
            driver.list_nodes()
            image = driver.get_image(self.seed)
            node = driver.create_node(name=name, size=size, image=image, location=location,
                                      ex_clienttoken="bench-%d-%f" % (i, time.time()))
            while driver.list_nodes(ex_node_ids=[node.id])[0].extra["status"] != "running":
                time.sleep(0.1)
            driver.list_nodes(ex_node_ids=[node.id])
            driver.list_volumes()
            made.append(node)
        for node in made:
            driver.list_nodes(ex_node_ids=[node.id])
            driver.destroy_node(node)
            while driver.list_nodes(ex_node_ids=[node.id])[0].extra["status"] != "terminated":
                time.sleep(0.1)

    def cycle_driver_min(self, driver, count):
        size = next(s for s in driver.list_sizes() if s.id == TYPE)
        image = driver.get_image(self.seed)
        made = []
        for i in range(count):
            node = driver.create_node(name="bench-n%d" % i, size=size, image=image)
            while driver.list_nodes(ex_node_ids=[node.id])[0].extra["status"] != "running":
                time.sleep(0.1)
            made.append(node)
        for node in made:
            driver.destroy_node(node)
            while driver.list_nodes(ex_node_ids=[node.id])[0].extra["status"] != "terminated":
                time.sleep(0.1)


def timed(call, *args):
    """(wall seconds, this process's CPU seconds) of one call: the CPU part is the client's own work,
    which the load of a shared machine (or moto's own slowness) does not blur."""
    start, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000, help="machines to list (default 1000)")
    parser.add_argument("--cycle", type=int, default=50, help="machines to create then delete (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; medians are printed (default 5)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop moto on the way out

    with moto.MotoServer() as server:
        bench = Bench(server)
        results = {}  # (connector, task, who) -> [seconds]

        def record(key, seconds):
            results.setdefault(key, []).append(seconds)

        # -- listing: one populated moto, every run lists it with each contender
        bench.reset()
        bench.populate(args.machines)
        ec2, lc, boto, driver = bench.ec2(), bench.libcloud(), bench.client(), bench.driver()
        contenders = [
            ("ec2", "sirocco", bench.list_ec2, ec2), ("ec2", "same", bench.list_boto3_same, boto),
            ("ec2", "min", bench.list_boto3_min, boto),
            ("libcloud", "sirocco", bench.list_libcloud, lc), ("libcloud", "same", bench.list_driver_same, driver),
            ("libcloud", "min", bench.list_driver_min, driver),
        ]
        for name, who, call, target in contenders:  # warm-up: connections, models, caches
            counted = call(target)
            assert counted >= args.machines, (name, who, counted)
        for run in range(args.runs):
            order = contenders if run % 2 == 0 else list(reversed(contenders))
            for name, who, call, target in order:
                record((name, "list", who), timed(call, target))
            print("list run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)

        # -- create -> delete: moto reset before each contender's run
        cycles = [
            ("ec2", "sirocco", bench.cycle_ec2, bench.ec2), ("ec2", "same", bench.cycle_boto3_same, bench.client),
            ("ec2", "min", bench.cycle_boto3_min, bench.client),
            ("libcloud", "sirocco", bench.cycle_libcloud, bench.libcloud),
            ("libcloud", "same", bench.cycle_driver_same, bench.driver),
            ("libcloud", "min", bench.cycle_driver_min, bench.driver),
        ]
        for run in range(args.runs):
            order = cycles if run % 2 == 0 else list(reversed(cycles))
            for name, who, call, make in order:
                bench.reset()
                target = make()
                if name in ("ec2", "libcloud") and who == "sirocco":
                    target.capabilities()  # warm the type/size and zone caches, as any earlier call would
                record((name, "cycle", who), timed(call, target, args.cycle))
            print("create/delete run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)

    sdk = {"ec2": "boto3", "libcloud": "libcloud EC2 driver"}
    for index, title in ((0, "wall-clock seconds"), (1, "CPU seconds of the client process (moto's time excluded)")):
        print()
        print("%s, medians of %d runs, moto at %s" % (title, args.runs, server.url))
        print()
        head = ("connector", "task", "Sirocco", "bare SDK, same calls", "ratio", "bare SDK, minimum calls", "ratio")
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _h in head) + "|")
        for name in ("ec2", "libcloud"):
            for task, label in (("list", "list %d machines" % args.machines),
                                ("cycle", "create->delete %d machines" % args.cycle)):
                ours, same, least = (statistics.median(r[index] for r in results[(name, task, who)])
                                     for who in ("sirocco", "same", "min"))
                print("| %s (vs %s) | %s | %.3f | %.3f | %.2f | %.3f | %.2f |"
                      % (name, sdk[name], label, ours, same, ours / same, least, ours / least))
    print()
    print("ratio = Sirocco / bare SDK (target: at most 1.10 against the same calls)")


if __name__ == "__main__":
    main()
