#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine
short_description: Create, delete, start, stop, pause, suspend or restart a CIMI Machine on any provider
version_added: 0.1.0
description:
  - Makes a machine (a virtual machine, a cloud instance) exist or not, and brings it to a power state,
    on whichever provider O(provider) selects, through the provider's Sirocco connector.
  - The machine is found by its O(name); names must be unique on the provider.
  - O(state) keeps existence (V(present), V(absent)) apart from power states; a power state implies
    V(present), creating the machine when it does not exist.
  - The module is idempotent; only O(state=restarted) always reports a change.
  - When the existing machine has other cpu or memory than O(machine_config), it is resized where the provider
    offers C(machine.resize); a provider that resizes only stopped machines needs O(allow_restart=true) to stop
    a running one (else the module fails, saying so, before changing anything). A provider without
    C(machine.resize) fails naming the provider and the operation.
  - What no operation changes (the CPU architecture, disks, O(description), O(properties), O(networks) of an
    existing machine) is left as it is, with a warning.
  - O(machine_template) fills in the options the task does not give, from a template the provider stores (a
    CIMI endpoint) or one defined client-side (O(templates), O(templates_file)), on any provider.
  - Every input is checked before anything is changed; a bad size, image or option changes nothing.
  - With O(provider=auto) the module chooses the provider itself among O(providers) (see O(placement_policy)),
    and returns the one chosen in RV(provider) and why in RV(placement).
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the machine.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the machine exists; a new one is left V(stopped), as CIMI prescribes.
      - V(absent) deletes it (stopping it first, if the provider needs that).
      - V(started), V(stopped), V(paused) and V(suspended) bring it to that power state by the shortest
        path of CIMI operations, creating it first if needed (created started when the provider allows).
      - V(restarted) restarts a started machine, starts a stopped one, and stops then starts a paused
        or suspended one; it always reports a change.
    type: str
    choices: [present, absent, started, stopped, paused, suspended, restarted]
    default: present
  provider:
    description:
      - The provider (connector) to talk to, or V(auto) to choose one of O(providers) by O(placement_policy).
      - If not set, the value of the E(SIROCCO_PROVIDER) environment variable is used, else C(libvirt).
    choices: [auto, cimi, ec2, libcloud, libvirt, openstack, vsphere, xenserver]
  machine_config:
    description:
      - The hardware of a new machine, either the name of a size the provider offers
        (see M(sirocco.cimi.provider_info)), or a dictionary giving it by value.
      - Required to create a machine. Ignored when O(state=absent).
      - With O(provider=auto), a dictionary is what the machine needs at least; it gets the smallest fitting size
        of the chosen provider (exactly this hardware on a provider that lists no sizes). A size name limits the
        choice to providers offering a size of that name.
      - A name the provider does not offer may name a client-side configuration (C(machine_configs) of
        O(templates) or O(templates_file)). An unknown name is an error that lists both.
      - An existing machine with other cpu or memory is resized (see O(allow_restart)). A dictionary is
        satisfied by the provider's smallest size that fits it, on providers that round requests up to their
        sizes (EC2, OpenStack).
      - A dictionary may hold C(cpu) (number of virtual CPUs, required), C(memory_mib) (memory in MiB,
        required), C(disk_gib) (size of the first disk in GiB, default 0 for none) and C(cpu_arch)
        (a CIMI architecture such as C(x86_64)); it must fit the provider's advertised ranges.
    type: raw
  machine_image:
    description:
      - Name or id of the image a new machine boots from, or its generic name, the name
        M(sirocco.cimi.machine_image) registered it under on every provider
        (O(sirocco.cimi.machine_image#module:generic_name)), which the provider keeps with the image
        as its C(sirocco.image) property.
      - A native id or name wins over a generic name. An unknown name, or a generic name several images of the
        provider carry, is an error listing them.
      - Omit it for a diskless machine (useful for tests; such a machine has no guest OS).
      - Ignored when O(state=absent).
    type: str
  description:
    description:
      - Description of a new machine.
    type: str
  properties:
    description:
      - Free-form string pairs (CIMI C(properties)) of a new machine; values are turned into strings.
    type: dict
  user_data:
    description:
      - Data handed to the guest at its first boot, which cloud-init reads (a C(#cloud-config) document, a shell
        script, a MIME multipart document); each provider takes it its own way (a NoCloud seed on libvirt,
        C(guestinfo.userdata) on vSphere, a config drive on XenServer, C(UserData) on EC2, C(user_data) on
        OpenStack, the C(userData) of a CIMI endpoint).
      - Only used when the machine is created. A provider that cannot pass it, or userData over its limit
        (16 KiB on EC2), fails before anything is created.
      - Not logged, since userData often carries secrets.
    type: str
  credential:
    description:
      - The SSH public key a new machine's guest lets in, and the user it lets in as; give exactly one of
        O(credential.name) (a credential the provider keeps) and O(credential.public_key).
      - Only used when the machine is created. A provider that cannot put it into a guest fails before
        anything is created; so does a key that is not an OpenSSH public key.
      - Each provider takes it its own way (the cloud-init seed on libvirt, vSphere and XenServer, a key pair
        named C(sirocco-<digest of the key>) on EC2 and OpenStack, imported once and reused, a Credential on
        a CIMI endpoint); the user name is kept with the machine as its C(sirocco.user) property, where the
        inventory plugin reads C(ansible_user).
    type: dict
    suboptions:
      name:
        description:
          - Name or id of a credential the provider keeps (M(sirocco.cimi.credential) registers them as EC2 and
            OpenStack key pairs, a CIMI endpoint's Credentials); its public key and user name are used.
          - A provider that keeps no credentials fails naming this option.
        type: str
        version_added: 0.2.0
      public_key:
        description:
          - One OpenSSH public key line, for example C({{ lookup('file', '~/.ssh/id_ed25519.pub') }}).
        type: str
      user_name:
        description:
          - The user the key is installed for; created in the guest when the image has no such user, with
            password-less sudo.
          - On EC2 and OpenStack the key goes to the image's own default user, and this name is only recorded.
          - If not set, the image's default user (C(debian) on Debian's cloud images and on the images
            M(sirocco.cimi.machine_image) builds), which libvirt records as the machine's user; EC2 and
            OpenStack record none. With O(credential.name), the stored credential's user name.
        type: str
  networks:
    description:
      - Names or ids of networks (see M(sirocco.cimi.network)) a new machine gets an interface on, in order.
      - Only used when the machine is created; an existing machine plugged otherwise is left as it is, with a
        warning. An unknown network, or a provider that lists no networks, fails before anything changes.
    type: list
    elements: str
    version_added: 0.2.0
  machine_template:
    description:
      - Name of a machine template whose C(machine_config), C(machine_image), C(credential), C(user_data),
        C(properties), C(networks) and C(description) stand for the options of the same names the task does not
        give (O(properties) are merged key by key, the task's winning).
      - The provider's stored template of that name where the provider stores templates (a CIMI endpoint,
        see M(sirocco.cimi.machine_template)), else the client-side one of O(templates) or O(templates_file).
      - An unknown template is an error saying where it was looked for. Ignored when O(state=absent).
      - With O(provider=auto), only client-side templates.
    type: str
    version_added: 0.2.0
  allow_restart:
    description:
      - Whether the module may stop a running (or paused, suspended) machine to resize it, then bring it back to
        the state asked for, when the provider resizes only stopped machines.
      - If V(false), such a resize fails saying a stop is needed, and changes nothing. O(state=stopped) and
        O(state=restarted) need no consent. The stop is hard when O(force=true).
    type: bool
    default: false
    version_added: 0.2.0
  force:
    description:
      - Stop or restart the machine hard (power off, reset) rather than asking its guest OS.
      - A graceful stop is an ACPI request that only a running guest OS honours; a machine without one,
        such as a diskless machine, keeps running, and the wait for V(stopped) ends at O(wait_timeout).
    type: bool
    default: false
extends_documentation_fragment:
  - sirocco.cimi.provider
  - sirocco.cimi.wait
  - sirocco.cimi.placement
  - sirocco.cimi.templates
  - ansible.builtin.action_common_attributes
attributes:
  action_group:
    description: Use C(group/sirocco.cimi.cimi) in C(module_defaults) to set the provider options once.
    support: full
    membership: [sirocco.cimi.cimi]
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the machine's state, hardware (a resize included), description and properties before
      and after.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_info
  - module: sirocco.cimi.provider_info
  - module: sirocco.cimi.machine_template
  - module: sirocco.cimi.machine_config
"""

EXAMPLES = r"""
# The provider options (provider, uri, ...) come from module_defaults (group/sirocco.cimi.cimi) or the
# SIROCCO_* environment variables; these examples run as written on a local libvirtd.
- name: A running diskless machine of size tiny (a machine without a guest OS, for a quick try)
  sirocco.cimi.machine:
    name: sirocco-doc-web
    machine_config: tiny
    state: started

- name: Resized to size small; where the provider resizes only stopped machines, allow_restart lets the module
    stop it (hard here, as nothing runs in it to honour a graceful stop), resize it and start it again
  sirocco.cimi.machine:
    name: sirocco-doc-web
    machine_config: small
    allow_restart: true
    force: true
    state: started
  register: web

- name: What was done
  ansible.builtin.debug:
    msg: "{{ web.actions }}: {{ web.machine.cpu }} vCPU, {{ web.machine.memory // 1024 }} MiB"

- name: Hardware by value, with properties, left stopped
  sirocco.cimi.machine:
    name: sirocco-doc-db
    machine_config:
      cpu: 1
      memory_mib: 96
    properties:
      role: db
    state: stopped

- name: From a template defined client-side (the same task works on any provider; a templates file
    holds the same layout, see templates_file)
  sirocco.cimi.machine:
    name: sirocco-doc-worker
    machine_template: worker
    templates:
      machine_configs:
        half: {cpu: 1, memory_mib: 80}
      machine_templates:
        worker:
          machine_config: half
          properties: {role: worker}
          description: a worker
    properties:
      tier: back  # merged with the template's

- name: Whichever of two libvirt connections fits 1 vCPU and 64 MiB, the cheapest
  sirocco.cimi.machine:
    name: sirocco-doc-batch
    provider: auto
    providers:
      - label: lab
        uri: qemu:///system
        prices: {tiny: 0.01}
      - label: sandbox  # libvirt's test driver: it forgets its machines when the module exits
        uri: test:///default
        prices: {tiny: 0.02}
    placement_policy: cheapest
    machine_config: {cpu: 1, memory_mib: 64}
  register: batch

- name: Where it went, and why
  ansible.builtin.debug:
    msg: "{{ batch.provider }}: {{ batch.placement.why }}"

- name: Delete the batch machine wherever it is
  sirocco.cimi.machine:
    name: sirocco-doc-batch
    provider: auto
    providers:
      - label: lab
        uri: qemu:///system
      - label: sandbox
        uri: test:///default
    state: absent

- name: Delete the others (stopped first where the provider needs it)
  sirocco.cimi.machine:
    name: "{{ item }}"
    state: absent
  loop: [sirocco-doc-web, sirocco-doc-db, sirocco-doc-worker]
"""

RETURN = r"""
machine:
  description:
    - The machine as a CIMI Machine JSON document, after the change.
    - In check mode, the machine as it would be (without C(id) when it would be created).
  returned: when O(state) is not V(absent)
  type: dict
  contains:
    id:
      description: The provider's identifier of the machine.
      type: str
      sample: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b
    name:
      description: Its name.
      type: str
      sample: web-1
    state:
      description: Its CIMI state.
      type: str
      sample: STARTED
    cpu:
      description: Number of virtual CPUs.
      type: int
      sample: 1
    memory:
      description: Memory in KiB.
      type: int
      sample: 65536
  sample:
    resourceURI: http://schemas.dmtf.org/cimi/2/Machine
    id: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b
    name: web-1
    state: STARTED
    cpu: 1
    memory: 65536
    cpuArch: x86_64
actions:
  description:
    - The CIMI operations performed (or, in check mode, that would be), in order; C(resize) is a resize of the
      machine's cpu and memory, between a C(stop) and the way back when it needs one.
  returned: always
  type: list
  elements: str
  sample: [stop, resize, start]
template:
  description: With O(machine_template), the template used and where it was found.
  returned: when O(machine_template) is set and O(state) is not V(absent)
  type: dict
  version_added: 0.2.0
  contains:
    name:
      description: Its name.
      type: str
      sample: web
    source:
      description: C(provider) for a template the provider stores, else the templates file's path or C(templates).
      type: str
      sample: /home/me/.config/sirocco/templates.yaml
provider:
  description:
    - The provider used; with O(provider=auto), the label of the one chosen.
    - With O(provider=auto) and O(state=absent), null when the machine exists on none of O(providers).
  returned: always
  type: str
  sample: libvirt
placement:
  description:
    - With O(provider=auto), how the provider was chosen. Also returned on failure when no provider fits.
  returned: when O(provider=auto)
  type: dict
  contains:
    provider:
      description: Label of the chosen provider (null when none).
      type: str
      sample: lab
    connector:
      description: The chosen provider's connector.
      type: str
      sample: libvirt
    policy:
      description: The O(placement_policy) applied, or C(existing) when the machine existed already on that provider.
      type: str
      sample: first
    why:
      description: The choice in one sentence, with the reasons of every rejected provider.
      type: str
      sample: "lab chosen by policy first: the only provider that fits; size 'small' (1 vCPU, 128 MiB, 1 GiB disk).
        Rejected: box: no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"
    size:
      description: Name of the size the machine is (or would be) created with; null when by value.
      type: str
      sample: small
    candidates:
      description: Labels of the providers that could take the machine.
      type: list
      elements: str
      sample: [lab]
    rejected:
      description: The other providers, each with the reasons it was rejected.
      type: dict
      sample: {"box": ["no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"]}
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import templates
from ansible_collections.sirocco.cimi.plugins.module_utils.machines import ATTRIBUTE_OPTIONS, run
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present",
                       choices=["present", "absent", "started", "stopped", "paused", "suspended", "restarted"]),
            machine_config=dict(type="raw"),
            machine_image=dict(type="str"),
            description=dict(type="str"),
            properties=dict(type="dict"),
            force=dict(type="bool", default=False),
            user_data=dict(type="str", no_log=True),
            credential=dict(type="dict", options=dict(
                name=dict(type="str"),
                public_key=dict(type="str", no_log=False),
                user_name=dict(type="str"),
            ), mutually_exclusive=[("name", "public_key")], required_one_of=[("name", "public_key")]),
            networks=dict(type="list", elements="str"),
            machine_template=dict(type="str"),
            allow_restart=dict(type="bool", default=False),
            **templates.templates_argument_spec(),
        ),
        wait=True,
        placement=True,
        attribute_options=ATTRIBUTE_OPTIONS,
    )
    module.run(run)


if __name__ == "__main__":
    main()
