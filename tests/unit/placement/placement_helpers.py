"""Helpers for the placement tests: problems written as the JSON of ``siroccod place``."""

from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import parse_problem


def host(name, cpu=8, memory=16384, idle=100.0, peak=200.0, on=True, **extra):
    return {"name": name, "cpu": cpu, "memory": memory, "power_idle": idle, "power_max": peak, "on": on, **extra}


def vm(name, cpu=1, memory=1024, host=None):
    d = {"name": name, "cpu": cpu, "memory": memory}
    if host is not None:
        d["host"] = host
    return d


def problem(hosts, vms, constraints=(), **top):
    return parse_problem({"hosts": list(hosts), "vms": list(vms), "constraints": list(constraints),
                          "time_limit": top.pop("time_limit", 3), **top})
