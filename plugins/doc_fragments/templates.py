# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options naming client-side machine templates and configurations.

Paired with ``templates_argument_spec()`` in ``plugins/module_utils/templates.py``:
change both together (ansible-test's validate-modules compares them).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  templates:
    description:
      - Client-side machine templates and configurations given inline, in the layout of O(templates_file).
      - Its entries win over the templates file's entries of the same name.
    type: dict
    version_added: 0.2.0
  templates_file:
    description:
      - A YAML file of client-side machine templates and configurations, for providers that store none (every
        provider but a CIMI endpoint), in the style of the inventory's C(clouds_file).
      - 'It holds a C(machine_templates) dictionary, name -> template, a template holding any of
        C(machine_config) (a size name of the provider, a name of C(machine_configs), or a dictionary of
        C(cpu), C(memory_mib), C(disk_gib), C(cpu_arch)), C(machine_image), C(credential) (C(name), or
        C(public_key) and C(user_name)), C(user_data), C(properties), C(networks) and C(description), as the
        options of the same names of M(sirocco.cimi.machine); a C(machine_configs) dictionary,
        name -> C(cpu), C(memory_mib), C(disk_gib), C(cpu_arch); and a C(system_templates) dictionary,
        name -> a template as the O(sirocco.cimi.system#module:template) option takes it.'
      - It is read on the host the module runs on, only when a task names a template or configuration the
        provider does not store. A malformed file is an error naming this option, the file and the entry.
      - If not set, the value of the E(SIROCCO_TEMPLATES_FILE) environment variable is used, else the first of
        C(~/.config/sirocco/templates.yaml) and C(/etc/sirocco/templates.yaml) that exists.
    type: path
    version_added: 0.2.0
"""
