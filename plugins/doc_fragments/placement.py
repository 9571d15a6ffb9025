# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of ``provider: auto`` (a module that chooses its provider).

Paired with ``placement_argument_spec()`` in ``plugins/module_utils/module.py``:
change both together (ansible-test's validate-modules compares them).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  providers:
    description:
      - The providers O(provider=auto) chooses among, in order of preference.
      - Required when O(provider=auto), ignored otherwise.
      - Every listed provider is surveyed, concurrently, for its capabilities, sizes and machines. When one of
        them already has a machine called O(name), that provider is used, whatever the policy; a provider that
        cannot be reached makes the module fail rather than risk a second machine of that name elsewhere
        (remove it from the list to go on without it).
      - Otherwise a provider is a candidate when it supports every operation the request needs, its ranges
        (vCPUs, MHz, memory), architectures and locations admit the request, it has the image asked for, if any,
        and it offers a size that fits; the smallest fitting size is used. O(placement_policy) picks one candidate.
      - Wishes are given in the machine's CIMI properties, C(sirocco.provider) (labels or provider names,
        comma-separated, that the machine may go to, in order of preference), C(sirocco.location)
        (a location the provider must advertise, such as a host or cluster name) and C(sirocco.operations)
        (further operations the machine will need, comma-separated, for example C(machine.capture)).
    type: list
    elements: dict
    suboptions:
      label:
        description:
          - A name for this provider, unique in the list; results and wishes use it.
        type: str
        required: true
      provider:
        description:
          - The connector, one of the values of the top-level option of that name but V(auto).
        type: str
        default: libvirt
      uri:
        description:
          - Where the provider is, as the top-level option of that name.
        type: str
      username:
        description:
          - User name to authenticate with.
        type: str
      password:
        description:
          - Password or secret key to authenticate with; it never appears in results, messages or logs.
        type: str
      region:
        description:
          - Region or location of the provider account.
        type: str
      validate_certs:
        description:
          - Whether to verify the provider's TLS certificate.
        type: bool
        default: true
      timeout:
        description:
          - Seconds to wait for the provider to answer one request.
        type: int
        default: 60
      provider_options:
        description:
          - Options of this provider's connector, as the top-level option of that name.
          - An item of its C(sizes) may also carry C(price_per_hour), which policy V(cheapest) uses.
        type: dict
      prices:
        description:
          - Price per hour of this provider's sizes, by size name or id, for policy V(cheapest).
          - Sizes that carry the property C(sirocco.pricePerHour) need no entry here.
        type: dict
  placement_policy:
    description:
      - How O(provider=auto) picks one of the candidate providers.
      - V(first) takes the first candidate in the order of O(providers).
      - V(explicit) takes the first candidate the property C(sirocco.provider) names, which it requires.
      - V(smallest) takes the candidate whose fitting size is smallest (vCPUs, then memory, then disk).
      - V(cheapest) takes the lowest known price per hour (see O(providers[].prices)); without any, V(smallest).
      - V(least-loaded) takes the candidate with the most free capacity when every candidate advertises it,
        else the one with the fewest machines.
      - V(lowest-energy) takes the candidate where the machine adds the fewest watts, from the power figures a
        provider advertises (daemon-backed providers do); without any, V(first), and the result says so.
    type: str
    choices: [first, explicit, smallest, cheapest, least-loaded, lowest-energy]
    default: first
"""
