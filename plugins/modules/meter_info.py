#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: meter_info
short_description: Read a machine's CPU, memory, disk and network samples over a time window
version_added: 0.2.0
description:
  - Returns the CIMI Meters of one machine (DSP0263 5.17.6) with the samples its provider keeps inside a time
    window, and the same samples as flat rows (machine, aspect, units, timestamp, value) ready for a CSV file.
  - Each provider reads its own source. C(libvirt), C(xenserver) and C(openstack) keep no history here, so a
    window gives the current sample when now is inside it. C(ec2) reads CloudWatch statistics over the window.
    C(vsphere) reads the performance manager's counters. C(cimi) reads what the endpoint stores; C(siroccod)
    keeps the newest 60 samples of each meter, taken every C(meter_interval) seconds.
  - Without O(start), O(end) or O(last), each meter comes with its latest sample.
  - The module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  machine:
    description:
      - The machine, by native id or by name (a name must be unique on the provider).
    type: str
    required: true
  aspects:
    description:
      - The aspects to read; all of them when omitted.
    type: list
    elements: str
    choices: [cpu, memory, disk, inputBandwidth, outputBandwidth]
  start:
    description:
      - The window's start, an ISO 8601 date and time (UTC when it names no time zone), for example
        C(2026-12-07T10:00:00Z).
      - Mutually exclusive with O(last).
    type: str
  end:
    description:
      - The window's end, an ISO 8601 date and time; now when omitted.
    type: str
  last:
    description:
      - The window as a duration ending at O(end) (or now), such as C(90s), C(30m), C(2h) or C(1d).
    type: str
extends_documentation_fragment:
  - sirocco.cimi.provider
  - ansible.builtin.action_common_attributes
attributes:
  action_group:
    description: Use C(group/sirocco.cimi.cimi) in C(module_defaults) to set the provider options once.
    support: full
    membership: [sirocco.cimi.cimi]
  check_mode:
    support: full
  diff_mode:
    support: N/A
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_info
  - module: sirocco.cimi.provider_info
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment.
- name: A machine to measure
  sirocco.cimi.machine:
    name: sirocco-doc-metered
    machine_config: tiny
    state: started

- name: Its latest sample of every aspect
  sirocco.cimi.meter_info:
    machine: sirocco-doc-metered
  register: latest

- name: Its CPU and memory over the last hour
  sirocco.cimi.meter_info:
    machine: sirocco-doc-metered
    aspects: [cpu, memory]
    last: 1h
  register: hour

- name: The samples as CSV
  ansible.builtin.copy:
    dest: /tmp/sirocco-doc-metered.csv
    mode: "0644"
    content: |
      machine,aspect,units,timestamp,value
      {% for row in hour.samples %}
      {{ row.machine }},{{ row.aspect }},{{ row.units }},{{ row.timestamp }},{{ row.value }}
      {% endfor %}

- name: Remove the machine
  sirocco.cimi.machine:
    name: sirocco-doc-metered
    state: absent
"""

RETURN = r"""
machine:
  description: The machine measured.
  returned: always
  type: dict
  sample: {"id": "6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b", "name": "web-1"}
window:
  description:
    - The window read, as ISO 8601 dates and times; a null C(end) leaves it open up to now, and both are null
      when the latest sample was asked for.
  returned: always
  type: dict
  sample: {"start": "2026-12-07T09:00:00+00:00", "end": null}
meters:
  description: The CIMI Meters of the aspects asked for, each with its samples inside the window (oldest first).
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Meter
      aspect: http://schemas.dmtf.org/cimi/2/aspect/cpu
      units: percent
      samples: [{"timestamp": "2026-12-07T09:59:00.000Z", "value": "3.5"}]
samples:
  description:
    - Every sample as one row, sorted by time then aspect; C(value) is a number when the sample is one.
  returned: always
  type: list
  elements: dict
  sample:
    - {"machine": "web-1", "aspect": "cpu", "units": "percent", "timestamp": "2026-12-07T09:59:00Z", "value": 3.5}
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import meters
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def run(module):
    p = module.params
    found = meters.read(module.connector, p["machine"], p["aspects"], p["start"], p["end"], p["last"])
    return dict(changed=False, **found)


def main():
    module = SiroccoModule(
        argument_spec=dict(
            machine=dict(type="str", required=True),
            aspects=dict(type="list", elements="str", choices=list(meters.ASPECTS)),
            start=dict(type="str"),
            end=dict(type="str"),
            last=dict(type="str"),
        ),
        mutually_exclusive=[("start", "last")],
    )
    module.run(run)


if __name__ == "__main__":
    main()
