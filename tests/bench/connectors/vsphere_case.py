# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connector overhead: Sirocco's vsphere connector beside bare pyvmomi, against vcsim (a vCenter).

    python tests/bench/connectors/vsphere_case.py                 # 1,000 VMs listed, 50 cloned and deleted, 5 runs
    python tests/bench/connectors/vsphere_case.py --machines 200 --cycle 10 --runs 3   # quicker

The same shape as run.py (the ec2 and libcloud cases on moto): median seconds over ``--runs``
runs, connector and SDK alternating, a ratio column, nothing asserted.

* list: one vcsim (tests/standins/vcsim, ``-vms``) holding ``--machines`` VMs; the connector's
  list_machines beside pyvmomi making the same calls (a container view for ids and template
  flags, then one PropertyCollector retrieval of the 14 properties a Machine needs, in pages
  of 500) and beside the minimum (one retrieval of those properties through a container view).
* create->delete: ``--cycle`` machines cloned from template0, powered on, then each powered off
  and destroyed. A fresh stock vcsim (4 VMs, one template) serves every such run, as moto is reset
  in run.py. The "same calls" column replays the SOAP calls the connector makes (traced once:
  name check, image lookup, placement, clone, reconfigure, power on, read back; look up, power
  off, destroy); the minimum is Clone, PowerOn, PowerOff, Destroy and their task waits.
Tasks are waited for the connector's way (polling info.state, 0.01 s doubling to 0.5 s) in
every column, so waiting costs the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import statistics
import sys
import time
from pathlib import Path

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import VM_PROPS, VSphereConnector

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("sirocco_vcsim_standin", ROOT / "standins" / "vcsim" / "standin.py")
vcsim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vcsim)

CONFIG = MachineConfiguration(cpu=1, memory=1024 * 1024)
PC = vmodl.query.PropertyCollector
KEY_PROPS = ["config.template", "config.instanceUuid", "config.uuid", "runtime.host"]


# -- bare pyvmomi helpers --------------------------------------------------------------------------
def connect(sim):
    si = SmartConnect(protocol="https", host=sim.url.split("//")[1].split(":")[0],
                      port=int(sim.url.rsplit(":", 1)[1].split("/")[0]), path="/sdk", user=sim.username,
                      pwd=sim.password, disableSslCertValidation=True, httpConnectionTimeout=60)
    return si.RetrieveContent()


def retrieve(content, vimtype, props, objs=None, root=None):
    """[(ref, {prop: value})], through a container view (or of ``objs``), in pages of 500."""
    view = None
    if objs is None:
        view = content.viewManager.CreateContainerView(root or content.rootFolder, [vimtype], True)
        traversal = PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
        object_set = [PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])]
    else:
        object_set = [PC.ObjectSpec(obj=obj, skip=False) for obj in objs]
    spec = PC.FilterSpec(objectSet=object_set, propSet=[PC.PropertySpec(type=vimtype, pathSet=list(props))])
    out = []
    result = content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=500))
    while result is not None:
        out += [(o.obj, {p.name: p.val for p in o.propSet}) for o in result.objects]
        if not result.token:
            break
        result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
    if view is not None:
        view.Destroy()
    return out


def wait(content, task):
    delay = 0.01
    while True:
        info = retrieve(content, vim.Task, ["info.state", "info.result", "info.error"], objs=[task])[0][1]
        if info.get("info.state") == "success":
            return info.get("info.result")
        if info.get("info.state") == "error":
            raise info["info.error"]
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def vm_id(props):
    return props.get("config.instanceUuid") or props.get("config.uuid")


# -- listing ---------------------------------------------------------------------------------------
def list_sirocco(conn):
    return len(conn.list_machines().items)


def list_same(content):
    keys = sorted((vm_id(p), ref) for ref, p in retrieve(content, vim.VirtualMachine, KEY_PROPS)
                  if not p.get("config.template"))
    found = retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[ref for _key, ref in keys])
    return len([1 for _ref, p in found if not p.get("config.template")])


def list_min(content):
    return len([1 for _ref, p in retrieve(content, vim.VirtualMachine, VM_PROPS) if not p.get("config.template")])


# -- create -> delete ------------------------------------------------------------------------------
def cycle_sirocco(conn, count, image_id):
    made = [conn.create_machine(MachineSpec(name="bench-c%d" % i, config=CONFIG, image=image_id,
                                            initial_state=states.STARTED)) for i in range(count)]
    for machine in made:
        conn.delete_machine(machine.id)


def _template(content):
    return next(ref for ref, p in retrieve(content, vim.VirtualMachine, ["name", "config.template"])
                if p.get("config.template") and p["name"] == "template0")


def cycle_same(content, count, image_id):
    """The connector's SOAP calls for one clone from a template and one delete, made directly."""
    index = content.searchIndex
    dc = retrieve(content, vim.Datacenter, ["name", "vmFolder", "hostFolder", "datastoreFolder"])[0][1]
    made = []
    for i in range(count):
        name = "bench-b%d" % i
        if name in {p.get("name") for _r, p in retrieve(content, vim.VirtualMachine, ["name"])}:
            raise RuntimeError("name taken")
        templates = [ref for ref, p in retrieve(content, vim.VirtualMachine, KEY_PROPS) if p.get("config.template")]
        retrieve(content, vim.VirtualMachine, VM_PROPS, objs=templates)
        template = index.FindByUuid(uuid=image_id, vmSearch=True, instanceUuid=True)
        template_props = retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[template])[0][1]
        compute = retrieve(content, vim.ComputeResource, ["name", "resourcePool", "host", "datastore"],
                           root=dc["hostFolder"])
        compute = sorted(compute, key=lambda item: item[1]["name"])[0][1]
        props = ["name", "browser", "summary.accessible", "summary.freeSpace"]
        retrieve(content, vim.Datastore, props, root=dc["datastoreFolder"])
        datastores = retrieve(content, vim.Datastore, props, root=dc["datastoreFolder"])
        datastore = next(ref for ref, _p in datastores if ref in compute["datastore"])
        config = vim.vm.ConfigSpec(numCPUs=1, memoryMB=1024, annotation="", deviceChange=[],
                                   extraConfig=[vim.option.OptionValue(key="sirocco-origin.image", value=image_id)])
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=compute["resourcePool"], datastore=datastore),
                                powerOn=False, template=False, config=config)
        ref = wait(content, template.CloneVM_Task(folder=dc["vmFolder"], name=name, spec=spec))
        got = retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[ref])[0][1]
        fix = vim.vm.ConfigSpec(numCPUs=1, memoryMB=1024, extraConfig=config.extraConfig)
        if got.get("config.hardware.numCPU") != 1 or got.get("config.hardware.memoryMB") != 1024:
            wait(content, ref.ReconfigVM_Task(spec=fix))
        machine_id = vm_id(retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[ref])[0][1])
        wait(content, ref.PowerOnVM_Task())
        found = index.FindByUuid(uuid=machine_id, vmSearch=True, instanceUuid=True)
        retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[found])
        made.append(machine_id)
        del template_props
    for machine_id in made:
        ref = index.FindByUuid(uuid=machine_id, vmSearch=True, instanceUuid=True)
        retrieve(content, vim.VirtualMachine, VM_PROPS, objs=[ref])
        wait(content, ref.PowerOffVM_Task())
        wait(content, ref.Destroy_Task())


def cycle_min(content, count, image_id):
    """Clone (the size in the clone spec), power on; power off, destroy: nothing looked up in between."""
    template = content.searchIndex.FindByUuid(uuid=image_id, vmSearch=True, instanceUuid=True)
    dc = retrieve(content, vim.Datacenter, ["vmFolder", "hostFolder"])[0][1]
    pool = sorted(retrieve(content, vim.ComputeResource, ["name", "resourcePool"], root=dc["hostFolder"]),
                  key=lambda item: item[1]["name"])[0][1]["resourcePool"]
    made = []
    for i in range(count):
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool), powerOn=False, template=False,
                                config=vim.vm.ConfigSpec(numCPUs=1, memoryMB=1024))
        ref = wait(content, template.CloneVM_Task(folder=dc["vmFolder"], name="bench-m%d" % i, spec=spec))
        wait(content, ref.PowerOnVM_Task())
        made.append(ref)
    for ref in made:
        wait(content, ref.PowerOffVM_Task())
        wait(content, ref.Destroy_Task())


def timed(call, *args):
    """(wall seconds, this process's CPU seconds) of one call (the CPU part excludes vcsim's own time)."""
    start, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000, help="VMs to list (default 1000; even)")
    parser.add_argument("--cycle", type=int, default=50, help="machines to create then delete (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; medians are printed (default 5)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop vcsim on the way out
    results = {}

    def record(key, seconds):
        results.setdefault(key, []).append(seconds)

    # -- listing: a vCenter model has two resource pools (a cluster's, a standalone host's)
    with vcsim.Vcsim("vc", vms=max(1, args.machines // 2)) as sim:
        conn, content = VSphereConnector(**sim.params, timeout=120), connect(sim)
        contenders = [("sirocco", list_sirocco, conn), ("same", list_same, content), ("min", list_min, content)]
        for who, call, target in contenders:  # warm-up: sessions, type maps
            counted = call(target)
            assert counted >= args.machines, (who, counted)
        for run in range(args.runs):
            for who, call, target in (contenders if run % 2 == 0 else list(reversed(contenders))):
                record(("list", who), timed(call, target))
            print("list run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)
        conn.close()

    cycles = [("sirocco", cycle_sirocco), ("same", cycle_same), ("min", cycle_min)]
    for run in range(args.runs):
        for who, call in (cycles if run % 2 == 0 else list(reversed(cycles))):
            with vcsim.Vcsim("vc") as sim:  # a fresh stock vCenter, as run.py resets moto
                conn = VSphereConnector(**sim.params, timeout=120)
                image_id = conn.list_machine_images()[0].id  # warms the caches as any earlier call would
                conn.capabilities()
                target = conn if who == "sirocco" else connect(sim)
                record(("cycle", who), timed(call, target, args.cycle, image_id))
                conn.close()
        print("create/delete run %d/%d done" % (run + 1, args.runs), file=sys.stderr, flush=True)

    for index, title in ((0, "wall-clock seconds"), (1, "CPU seconds of the client process (vcsim's time excluded)")):
        print()
        print("%s, medians of %d runs, vcsim (vCenter model)" % (title, args.runs))
        print()
        head = ("connector", "task", "Sirocco", "bare SDK, same calls", "ratio", "bare SDK, minimum calls", "ratio")
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _h in head) + "|")
        for task, label in (("list", "list %d machines" % args.machines),
                            ("cycle", "create->delete %d machines" % args.cycle)):
            ours, same, least = (statistics.median(r[index] for r in results[(task, who)])
                                 for who in ("sirocco", "same", "min"))
            print("| vsphere (vs pyvmomi) | %s | %.3f | %.3f | %.2f | %.3f | %.2f |"
                  % (label, ours, same, ours / same, least, ours / least))
    print()
    print("ratio = Sirocco / bare SDK (target: at most 1.10 against the same calls)")


if __name__ == "__main__":
    main()
