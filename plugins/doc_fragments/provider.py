# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider connection options every sirocco.cimi module takes.

Paired with ``provider_argument_spec()`` in ``plugins/module_utils/module.py``:
change both together (ansible-test's validate-modules compares them).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  provider:
    description:
      - The provider (connector) to talk to.
      - If not set, the value of the E(SIROCCO_PROVIDER) environment variable is used,
        else C(libvirt).
      - Set it once for every module of the collection with
        C(module_defaults) and the action group C(group/sirocco.cimi.cimi); the group should carry only
        the options of this fragment, which every module of the group takes (set
        O(sirocco.cimi.machine#module:wait_timeout) under C(sirocco.cimi.machine) instead).
    type: str
    choices: [cimi, ec2, libcloud, libvirt, openstack, vsphere, xenserver]
    default: libvirt
  uri:
    description:
      - Where the provider is, in the provider's own form.
      - For C(libvirt) a libvirt connection URI; the connector's default is C(qemu:///system).
      - For C(vsphere) the SDK URL of a vCenter or ESX host, C(https://HOST[:PORT]/sdk).
      - For C(xenserver) the URL of the pool master, like C(https://xenserver.example.org).
      - For C(cimi) the URL of a CIMI endpoint's Cloud Entry Point, like
        C(https://cimi.example.org/cimi/cloudEntryPoint) (a C(siroccod) daemon serves it at
        C(http://HOST:8080/cimi/cloudEntryPoint)); every other URL is found by following its links.
      - For C(ec2) the endpoint URL of an EC2-compatible cloud or stand-in (EC2 and CloudWatch are both asked
        there), like C(http://127.0.0.1:5000); unset, AWS's own endpoints.
      - For C(openstack) Keystone's URL, like C(https://keystone.example.org:5000/v3); or leave it unset and
        name a cloud of C(clouds.yaml) with the C(cloud) provider option.
      - For C(libcloud) the provider's URL, given to the driver as C(host), C(port) and C(secure) (for
        C(openstack), as C(ex_force_auth_url)); unset, the driver's default.
      - If not set, the value of the E(SIROCCO_URI) environment variable is used.
    type: str
  username:
    description:
      - User name to authenticate with, for providers that need one.
      - If not set, the value of the E(SIROCCO_USERNAME) environment variable is used.
    type: str
  password:
    description:
      - Password or secret key to authenticate with, for providers that need one.
      - It never appears in results, messages or logs.
      - If not set, the value of the E(SIROCCO_PASSWORD) environment variable is used.
    type: str
  region:
    description:
      - Region or location of the provider account, for providers that have regions.
      - If not set, the value of the E(SIROCCO_REGION) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the provider's TLS certificate, for providers reached over HTTPS.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the provider to answer one request.
    type: int
    default: 60
  provider_options:
    description:
      - Options only one connector understands, as a dictionary.
      - An option the selected provider does not know is an error that lists the ones it knows.
      - Every connector takes C(sizes), the named sizes O(sirocco.cimi.machine#module:machine_config) accepts, as a
        list of dictionaries with C(name), C(cpu), C(memory_mib) and C(disk_gib) (default C(tiny), C(small),
        C(medium), C(large), C(xlarge)).
      - C(libvirt) also takes C(image_pool) (storage pool of images and of new machines' disks, default C(default)),
        C(volume_pool), C(network), C(domain_type) (C(qemu), C(kvm), C(xen) or C(test)) and
        C(migration_address) (where its QEMU receives live migrations).
      - C(cimi) takes C(token) (a bearer token used instead of O(username) and O(password); a O(password)
        given without O(username) is sent as a bearer token too, and stays out of the results) and
        C(job_timeout) (seconds to wait for the endpoint's Jobs, default 300); its sizes are the
        endpoint's MachineConfigurations, so it takes no C(sizes).
      - C(vsphere) also takes C(datacenter), C(cluster), C(host), C(resource_pool), C(folder), C(datastore),
        C(network) and more; C(xenserver) takes C(sr) and C(network).
      - C(ec2) sizes are instance types, so it takes no C(sizes); it takes C(regions) (several regions; ids become
        C(REGION:ID)), C(image) (AMI of requests naming none), C(image_owners) (default C([self])),
        C(instance_types) (names or patterns offered), C(subnet), C(key_name), C(security_groups),
        C(max_attempts) (of each API call, retried with backoff; default 5) and C(list_disks) (listings, such as
        the inventory's, also report each machine's root disk size, at one more request per 200 machines; default
        false; a single machine's C(disks) are always reported). O(username) and O(password) are an access key id
        and its secret key.
      - C(openstack) sizes are flavors, so it takes no C(sizes); it takes C(cloud) (a cloud of C(clouds.yaml),
        instead of O(uri), O(username) and O(password), which override its values when set), C(clouds_yaml) (that
        file's path), C(project), C(domain) (of the user and the project, default C(Default)), C(image) (image of
        requests naming none), C(network) (network of requests naming none; else no interface), C(key_name),
        C(shelve) (stop shelves the server, start unshelves it) and C(interface) (of the catalog's endpoints).
      - C(libcloud) takes C(driver) (required; a libcloud compute driver such as C(ec2), C(openstack),
        C(cloudstack), C(vcloud)), C(driver_kwargs), C(create_kwargs), C(list_images_kwargs), C(image) and
        C(size_filter); its sizes are the driver's, so it takes no C(sizes). Each connector's file under
        C(plugins/module_utils/connectors) documents its options.
    type: dict
"""
