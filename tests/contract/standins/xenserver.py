"""XenServer stand-in: the XAPI wire-protocol stand-in of tests/standins/xapi, driven by the real XenAPI package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import XenAPI

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.xenserver import XenServerConnector

from .base import StandIn

_CONTROL = Path(__file__).resolve().parents[2] / "standins" / "xapi" / "control.py"


def _load_control():
    spec = importlib.util.spec_from_file_location("sirocco_xapi_standin_control", _CONTROL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class XapiStandIn(StandIn):
    """A two-host pool served by server.py in its own process, started once per session."""

    id = "xenserver-xapi"
    image = "tiny-linux"  # seed template with a 1 GiB system disk
    size = "tiny"
    live_attach = True

    def __init__(self):
        super().__init__()
        self.server = None

    def start(self, tmpdir):
        self.server = _load_control().start(hosts=2)

    def connect(self):
        return XenServerConnector(uri=self.server.url, username=self.server.username,
                                  password=self.server.password, timeout=30)

    def clean(self):
        """Remove every VM (machine, snapshot, template), VDI and network whose name has the test prefix."""
        session = XenAPI.Session(self.server.url)
        session.xenapi.login_with_password(self.server.username, self.server.password, "2.21", "contract-clean")
        api = session.xenapi
        try:
            for ref, vm in api.VM.get_all_records().items():
                if not vm["name_label"].startswith(self.prefix) or vm["is_control_domain"]:
                    continue
                if vm["power_state"] != "Halted":
                    api.VM.hard_shutdown(ref)
                vdis = [api.VBD.get_VDI(vbd) for vbd in vm["VBDs"]]
                api.VM.destroy(ref)
                for vdi in vdis:
                    if vdi != "OpaqueRef:NULL" and api.VDI.get_type(vdi) != "user" and not api.VDI.get_VBDs(vdi):
                        api.VDI.destroy(vdi)
            for ref, vdi in api.VDI.get_all_records().items():
                if vdi["name_label"].startswith(self.prefix):
                    for vbd in vdi["VBDs"]:
                        if api.VBD.get_currently_attached(vbd):
                            api.VBD.unplug(vbd)
                    api.VDI.destroy(ref)
            for ref, net in api.network.get_all_records().items():
                if net["name_label"].startswith(self.prefix):
                    for vif in net["VIFs"]:
                        api.VIF.destroy(vif)
                    api.network.destroy(ref)
        finally:
            session.xenapi.session.logout()

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None


STANDINS = [XapiStandIn()]
