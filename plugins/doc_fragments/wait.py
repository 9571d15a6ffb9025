# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wait options of modules that change a resource's state.

Paired with ``WAIT_ARGUMENT_SPEC`` in ``plugins/module_utils/module.py``.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Whether to wait until the resource reaches the requested state before returning.
      - When a change takes several operations (for example create, then start, then pause),
        the module always waits between them; O(wait) only decides whether it waits after the last one.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait in all, when O(wait=true).
      - The module fails naming O(wait_timeout) if the resource has not reached the state by then.
    type: int
    default: 300
"""
