#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: job_info
short_description: Follow the CIMI Jobs of an endpoint, nested ones included
version_added: 0.2.0
description:
  - Returns the CIMI Jobs (DSP0263 5.17.1) an endpoint such as C(siroccod) keeps for the user, oldest first; each
    says what an operation did, on which resource, and how it ended (C(state), C(returnCode), C(statusMessage)).
  - With O(id), the job and every job nested under it (a system's members, a migration's steps), parents first.
  - Only providers that keep jobs offer this (C(cimi)); on the others the module fails, naming the provider and
    the operation C(job.list).
  - The module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  id:
    description:
      - One job, by its id (the C(CIMI-Job-URI) of an operation); its nested jobs come with it.
    type: str
  target:
    description:
      - Only the jobs whose C(targetResource) or C(affectedResources) is this resource id.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) over each Job document, for example C(state='FAILED').
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
  - module: sirocco.cimi.system
"""

EXAMPLES = r"""
# The provider options (provider: cimi, uri, username, password) come from module_defaults
# (group/sirocco.cimi.cimi) or the SIROCCO_* environment.
- name: A machine, made through a job
  sirocco.cimi.machine:
    name: sirocco-doc-jobs
    machine_config: tiny
    state: stopped
  register: made

- name: The jobs about it
  sirocco.cimi.job_info:
    target: "{{ made.machine.id }}"
  register: about

- name: The first one and the jobs nested under it
  sirocco.cimi.job_info:
    id: "{{ about.jobs[0].id }}"

- name: Every job that failed
  sirocco.cimi.job_info:
    filter: state='FAILED'

- name: Remove the machine
  sirocco.cimi.machine:
    name: sirocco-doc-jobs
    state: absent
"""

RETURN = r"""
jobs:
  description: The jobs, as CIMI Job JSON documents, oldest first (with O(id), the job then its nested jobs).
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Job
      id: http://127.0.0.1:8080/cimi/jobs/5d1f0c2e
      action: http://schemas.dmtf.org/cimi/2/action/start
      state: SUCCESS
      returnCode: 0
      targetResource: {"href": "http://127.0.0.1:8080/cimi/machines/7a0e"}
provider:
  description: The provider used.
  returned: always
  type: str
  sample: cimi
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import jobs
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def run(module):
    p = module.params
    return dict(changed=False, **jobs.read(module.connector, p["id"], p["filter"], p["target"]))


def main():
    module = SiroccoModule(
        argument_spec=dict(id=dict(type="str"), target=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(run)


if __name__ == "__main__":
    main()
