"""Fill the OpenStack stand-in once its services run (called by start.sh, in the OpenStack venv).

  bootstrap.py catalog --endpoint TYPE=URL ...    services and endpoints in Keystone
  bootstrap.py content --hypervisors N
      create the flavors and the image, then wait until N nova-compute services
      are up and their hypervisors are in Nova and Placement, and until a
      cinder-volume service is up.

Uses openstacksdk with the cloud named by OS_CLOUD / OS_CLIENT_CONFIG_FILE.
"""

import argparse
import sys
import time

import openstack

SERVICE_NAMES = {"image": "glance", "placement": "placement", "compute": "nova", "network": "neutron",
                 "volumev3": "cinderv3"}
# (name, vCPUs, RAM MiB, root disk GiB): small on purpose, the fake driver runs nothing
FLAVORS = (("tiny", 1, 64, 1), ("small", 1, 128, 1), ("medium", 2, 256, 2), ("large", 4, 512, 4))
IMAGE = "sirocco-tiny"


def log(message):
    print("bootstrap: %s" % message, flush=True)


def catalog(conn, endpoints):
    for spec in endpoints:
        kind, url = spec.split("=", 1)
        service = conn.identity.create_service(name=SERVICE_NAMES[kind], type=kind, enabled=True)
        for interface in ("public", "internal", "admin"):
            conn.identity.create_endpoint(service_id=service.id, interface=interface, url=url,
                                          region_id="RegionOne", enabled=True)
        log("%s (%s) at %s" % (SERVICE_NAMES[kind], kind, url))
    # The services log in as admin; a token they send on a user's behalf (Nova's to Cinder's
    # attachment calls) is a service token only with the role "service" (Keystone's bootstrap
    # made it), and Cinder rejects the request otherwise.
    role = conn.identity.find_role("service", ignore_missing=False)
    user = conn.identity.find_user("admin", ignore_missing=False)
    project = conn.identity.find_project("admin", ignore_missing=False)
    conn.identity.assign_project_role_to_user(project, user, role)
    log("admin has the role service")


def poll(what, check, timeout=120, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except openstack.exceptions.SDKException as exc:
            last = exc
        time.sleep(interval)
    sys.exit("bootstrap: %s: gave up after %ss (last error: %s)" % (what, timeout, last))


def content(conn, hypervisors):
    for name, vcpus, ram, disk in FLAVORS:
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    log("flavors %s" % ", ".join(f[0] for f in FLAVORS))
    image = conn.image.create_image(name=IMAGE, disk_format="raw", container_format="bare",
                                    visibility="public", data=b"sirocco tiny image\n",
                                    architecture="x86_64", os_distro="none")
    poll("image %s active" % IMAGE, lambda: conn.image.get_image(image.id).status == "active")
    log("image %s (%s) active" % (IMAGE, image.id))

    def computes_up():
        return len([s for s in conn.compute.services(binary="nova-compute") if s.state == "up"]) >= hypervisors
    poll("%d nova-compute services up" % hypervisors, computes_up)
    log("%d nova-compute services up" % hypervisors)
    poll("%d hypervisors listed" % hypervisors, lambda: len(list(conn.compute.hypervisors())) >= hypervisors)

    def providers_ready():
        providers = list(conn.placement.resource_providers())
        return len(providers) >= hypervisors and all(
            list(conn.placement.resource_provider_inventories(p)) for p in providers)
    poll("%d resource providers with inventories" % hypervisors, providers_ready)
    log("%d hypervisors with their inventories in Placement" % hypervisors)

    def volume_service_up():
        return [s for s in conn.block_storage.services(binary="cinder-volume") if s.state == "up"]
    poll("cinder-volume up", volume_service_up)
    log("cinder-volume up")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=("catalog", "content"))
    parser.add_argument("--endpoint", action="append", default=[])
    parser.add_argument("--hypervisors", type=int, default=2)
    args = parser.parse_args()
    conn = openstack.connect()
    if args.step == "catalog":
        catalog(conn, args.endpoint)
    else:
        content(conn, args.hypervisors)


if __name__ == "__main__":
    main()
