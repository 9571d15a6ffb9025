"""What the contract suite needs to know about a stand-in."""

from __future__ import annotations

import itertools


class StandIn:
    """One provider stand-in: starts once per session, opens a fresh connector per test.

    Subclasses set the class attributes and implement ``start``, ``connect``,
    ``clean`` and ``stop``. Every name a test creates comes from ``name()`` so that
    cleanup can find it by prefix even when the test failed half-way.
    """

    id = "base"
    image = None  # ref (id or name) of a seed MachineImage to create machines from
    size = "tiny"  # name of a MachineConfiguration small enough to start many of
    live_attach = True  # volumes can be attached to a running machine
    network_keeps = ("description", "properties")  # what a created network keeps of its request
    prefix = "sirocco-ct-"

    def __init__(self):
        self._counter = itertools.count(1)

    def name(self, kind="m"):
        return "%s%s%d" % (self.prefix, kind, next(self._counter))

    def start(self, tmpdir):
        """Prepare the provider once per session; raise or pytest.fail with a fix when it cannot run."""

    def connect(self):
        """A fresh connector to the stand-in."""
        raise NotImplementedError

    def clean(self):
        """Remove every resource the current test created, whatever state it left them in."""

    def stop(self):
        """Remove what ``start`` made."""
