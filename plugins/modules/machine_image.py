#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_image
short_description: Build, import, capture or delete a CIMI MachineImage on any provider
version_added: 0.1.0
description:
  - Makes a machine image exist or not on whichever provider O(provider) selects, under its native O(name).
  - With O(state=present) the image comes from exactly one of O(build) (the Sirocco image factory builds it from
    a spec), O(file) (a local disk image), O(url) (a disk image to download) or O(from_machine) (a capture).
  - The image is registered the way the provider takes images (a libvirt pool volume, a Glance image, an EBS
    snapshot and AMI, a vSphere template, a XenServer template, a CIMI endpoint's import), in a format it takes;
    O(file) and built images are converted with C(qemu-img) when needed.
  - Registration stores O(generic_name) with the image (its C(sirocco.image) property), so that
    M(sirocco.cimi.machine) finds the image by that one name on every provider.
  - Registration also stores a hash of what the image was made from (C(sirocco.spec), the factory spec hash or the
    file's content hash, with O(arch), O(boot) and O(generic_name)). An image of that O(name) with the same hash
    means nothing to do (C(changed=false); nothing is built or uploaded again). Another hash fails unless
    O(force=true), which replaces the image. A provider that keeps no properties with its images (libvirt keeps
    only the generic name and architecture, in its volume naming) cannot tell; the existing image is kept, with
    a warning, and O(force=true) replaces it at every run.
  - Every input (the spec, the file's format, the source options) is checked before anything is built, uploaded
    or deleted.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Native name of the image on the provider; unique there.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the image exists; V(absent) deletes the image of that name.
    type: str
    choices: [present, absent]
    default: present
  build:
    description:
      - A spec of the Sirocco image factory, which builds a bootable disk image from it (see the collection's
        README, section Image factory), with C(name), C(distribution), C(packages), C(files), C(run),
        C(size_gib), C(formats), C(cloud_init). The spec's C(name) (default C(sirocco-image)) names the built
        files only; the image is registered as O(name) and O(generic_name), so one spec is built once for any
        number of images.
      - A bad spec fails naming the field before anything is built. Built images are cached by spec hash in
        O(cache_dir); a cached image is used without building.
      - Building needs root (C(become=true)) and the factory's tools; without them the module fails naming what
        is missing, before anything changes. A cached image needs neither.
      - With provider C(cimi) the endpoint fetches the built file itself (a C(file://) URL); its administrator
        must allow O(cache_dir) in the endpoint's C(image_sources).
    type: dict
  file:
    description:
      - Path of a local disk image (qcow2, raw, vmdk or vhd, read by C(qemu-img info)), self-contained (no
        backing file). A fixed VHD, which has no header, is told from a raw disk by its footer.
      - With provider C(cimi) the endpoint fetches it itself (a C(file://) URL under a directory its
        administrator allowed).
    type: path
  url:
    description:
      - URL of a disk image. Provider C(cimi) is given it as the image's C(imageLocation) and fetches it itself
        (from the sources its administrator allows); other providers get it downloaded here first, then
        imported as a O(file).
      - Its hash is the URL's; a new file at the same URL is not noticed (use O(force)).
    type: str
  from_machine:
    description:
      - Name or id of a machine of the provider to capture into the image.
      - An image of that O(name) that exists already is left as it is.
    type: str
  generic_name:
    description:
      - The name the image has on every provider, which M(sirocco.cimi.machine) resolves (its C(sirocco.image)).
      - Defaults to O(name). A CIMI endpoint (siroccod) makes its image's name its generic name.
    type: str
  description:
    description:
      - Description of a new image.
    type: str
  properties:
    description:
      - Free-form string pairs (CIMI C(properties)) stored with a new image where the provider keeps them.
    type: dict
  arch:
    description:
      - CIMI architecture of the image (C(x86_64), C(aarch64)...). Default that of the factory's distribution,
        else C(x86_64).
    type: str
  boot:
    description:
      - Firmware the image boots with.
    type: str
    choices: [bios, uefi]
    default: bios
  rebuild:
    description:
      - With O(build), build again even when the factory's cache holds the image (the mirror moved on).
      - Only a new build with another spec hash changes a registered image.
    type: bool
    default: false
  max_age_days:
    description:
      - With O(build), a cached image older than this many days is stale and built again.
    type: int
  cache_dir:
    description:
      - With O(build), the factory's cache directory (default C($SIROCCO_IMAGE_CACHE), else
        C(~/.cache/sirocco/images)).
    type: path
  force:
    description:
      - Replace an image of that O(name) made from something else (another C(sirocco.spec)), or whose provider
        cannot tell; the new disk is made first, then the old image deleted and the new one registered.
    type: bool
    default: false
extends_documentation_fragment:
  - sirocco.cimi.provider
  - sirocco.cimi.wait
  - ansible.builtin.action_common_attributes
attributes:
  action_group:
    description: Use C(group/sirocco.cimi.cimi) in C(module_defaults) to set the provider options once.
    support: full
    membership: [sirocco.cimi.cimi]
  check_mode:
    support: full
    details: Nothing is built, downloaded, converted or uploaded; RV(factory.plan) says whether a build would run.
  diff_mode:
    support: full
    details: The diff shows the image's name, state, description and properties before and after.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_image_info
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
- name: Build a Debian 12 web image once and register it on the local libvirtd
  sirocco.cimi.machine_image:
    name: debian-12-web
    build:
      distribution: debian-12
      packages: [nginx]
      formats: [qcow2]
  become: true
  register: web_image

- name: The same image by its generic name on another provider
  sirocco.cimi.machine:
    name: web-1
    machine_config: small
    machine_image: debian-12-web
    state: started

- name: Import a disk image file into OpenStack (converted to what Glance takes when needed)
  sirocco.cimi.machine_image:
    name: alpine-3.20
    file: /srv/images/alpine-3.20.qcow2
    provider: openstack
    provider_options:
      cloud: lab

- name: Let a siroccod endpoint fetch an image itself
  sirocco.cimi.machine_image:
    name: debian-12-generic
    url: https://images.example.org/debian-12-generic-amd64.qcow2
    provider: cimi
    uri: https://cloud.example.org/cimi/cloudEntryPoint
    username: alice
    password: "{{ cimi_password }}"

- name: Capture a machine
  sirocco.cimi.machine_image:
    name: web-1-golden
    from_machine: web-1

- name: Delete an image
  sirocco.cimi.machine_image:
    name: alpine-3.20
    state: absent
"""

RETURN = r"""
machine_image:
  description:
    - The image as a CIMI MachineImage JSON document, after the change.
    - In check mode, the image as it would be (without C(id) when it would be registered).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The provider's identifier of the image.
      type: str
      sample: ami-0a1b2c3d4e5f67890
    name:
      description: Its native name.
      type: str
      sample: debian-12-web
    state:
      description: Its CIMI state.
      type: str
      sample: AVAILABLE
    properties:
      description:
        - What the provider keeps with it, among which C(sirocco.image) (the generic name), C(sirocco.format),
          C(sirocco.size) (virtual bytes), C(sirocco.arch) and C(sirocco.spec) (the hash of its source).
      type: dict
      sample: {"sirocco.image": "debian-12-web", "sirocco.format": "qcow2", "sirocco.size": "4294967296"}
actions:
  description: The operations performed (or, in check mode, that would be), in order.
  returned: always
  type: list
  elements: str
  sample: [build, import]
factory:
  description: With O(build), what the image factory did (or, in check mode, would do).
  returned: when O(build) is given
  type: dict
  contains:
    plan:
      description: C(cached) (the cache holds the image), C(build) or C(stale) (cached but older than O(max_age_days)).
      type: str
      sample: build
    cached:
      description: Whether the image came from the cache (not in check mode, nor when nothing was registered).
      type: bool
      sample: false
    log:
      description: The build's steps.
      type: list
      elements: str
provenance:
  description:
    - With O(build), when an image was registered, the factory's provenance record of the disk image
      (spec hash, builder and versions, packages with their versions, build time, per-format checksums).
  returned: when O(build) registered an image
  type: dict
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            build=dict(type="dict"),
            file=dict(type="path"),
            url=dict(type="str"),
            from_machine=dict(type="str"),
            generic_name=dict(type="str"),
            description=dict(type="str"),
            properties=dict(type="dict"),
            arch=dict(type="str"),
            boot=dict(type="str", default="bios", choices=["bios", "uefi"]),
            rebuild=dict(type="bool", default=False),
            max_age_days=dict(type="int"),
            cache_dir=dict(type="path"),
            force=dict(type="bool", default=False),
        ),
        wait=True,
        mutually_exclusive=[machine_images.SOURCES],
        required_if=[("state", "present", machine_images.SOURCES, True)],
    )
    module.run(machine_images.run)


if __name__ == "__main__":
    main()
