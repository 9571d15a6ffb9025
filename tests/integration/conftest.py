"""What the integration suites share: their peers, each started once per session, and the collection path.

Peers (session fixtures giving a playbook's variables): real libvirtd (``libvirtd``), a ``siroccod serve`` on
libvirt's test driver (``siroccod``), one over real QEMU with a pool of its own (``siroccod_qemu``), moto's
EC2 + CloudWatch (``moto_ec2``) and the OpenStack stand-in (``openstack``). See test_targets.py for the
variables each gives.
"""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
URI = os.environ.get("SIROCCO_IT_URI", "qemu:///system")
# seconds between the test-driver daemon's samplings: meter_info_siroccod reads a history of several
METER_INTERVAL = 2
sys.path.insert(0, str(REPO / "tests" / "contract"))  # the contract suite's stand-ins start the peers
# `make integration` runs two pytest-xdist workers. The playbooks that boot guests under QEMU (CPU-bound, minutes
# each) stay on one worker in file order (test_images registers the image test_demo built and imports
# test_multicloud's fixtures); each target is a unit of its own, since targets mostly wait on their peers; every
# other file stays on one worker: its tests share module fixtures, fixed names or, for the module examples, a
# check that no example left a machine behind. (xdist's loadgroup would say this with marks, but it renames test
# ids through an attribute pytest 9 no longer reads: the groups were silently ignored.)
GUEST_PLAYBOOKS = {"test_demo.py", "test_images.py", "test_multicloud.py"}
SHARED_OUT = {"test_targets.py"}


def work_unit(nodeid: str) -> str:
    """The unit of work (xdist's scope) a test belongs to: what one worker runs, in collection order."""
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if name in SHARED_OUT:
        return nodeid
    return "guests" if name in GUEST_PLAYBOOKS else path


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent when it is not installed
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class IntegrationScheduling(LoadScopeScheduling):
        """Units in collection order (the guests' one, the longest, starts first) rather than by size."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    return IntegrationScheduling(config, log)


@pytest.fixture(scope="session")
def libvirtd():
    """Fail, not skip, when libvirtd is unreachable: these tests exist to run against it."""
    try:
        import libvirt
    except ImportError:
        pytest.fail("libvirt-python is not installed in %s: run `make venv`" % sys.executable)
    libvirt.registerErrorHandler(lambda *args: None, None)  # no stderr noise; the exception says it all
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail("libvirtd is unreachable at %s (%s): run `make system` (as root) to install and start it"
                    % (URI, exc))
    conn.close()
    return URI


@pytest.fixture(scope="session")
def siroccod(tmp_path_factory):
    """A real `siroccod serve` for the *_siroccod targets: playbook variables to reach it as a normal user."""
    from standins.siroccod import Daemon  # the contract suite's stand-in starts it the same way

    images = tmp_path_factory.mktemp("siroccod-images")  # the one directory it imports images from
    daemon = Daemon(tmp_path_factory.mktemp("siroccod") / "data",
                    config={"image_sources": {"directories": [str(images)]},
                            "meter_interval": METER_INTERVAL}).start()
    try:
        yield _cimi_vars(daemon, images)
    finally:
        daemon.stop()


def _cimi_vars(daemon, image_dir):
    name, password = daemon.add_user("it", "it-tenant")
    return {"sirocco_it_cimi_uri": daemon.cep, "sirocco_it_cimi_username": name,
            "sirocco_it_cimi_password": password, "sirocco_it_cimi_token": daemon.token(name),
            "sirocco_it_cimi_image_dir": str(image_dir)}


@pytest.fixture(scope="session")
def siroccod_qemu(tmp_path_factory, libvirtd):
    """A real `siroccod serve` whose one host is QEMU behind libvirtd, in a transient storage pool of this run."""
    sys.path.insert(0, str(REPO / "tests" / "daemon"))
    from realhost_helpers import QemuHost
    from standins.siroccod import Daemon

    qemu = QemuHost()
    pool_name = qemu.prefix + "pool"
    target = tmp_path_factory.mktemp("siroccod-qemu-pool")
    target.chmod(0o755)
    pool = qemu.conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                          % (pool_name, target), 0)
    host = qemu.host_config("kvm")
    host["options"] = dict(host["options"], volume_pool=pool_name, image_pool=pool_name)
    images = tmp_path_factory.mktemp("siroccod-qemu-images")
    daemon = Daemon(tmp_path_factory.mktemp("siroccod-qemu") / "data",
                    config={"hosts": [host], "image_sources": {"directories": [str(images)]}}).start()
    try:
        yield _cimi_vars(daemon, images)
    finally:
        daemon.stop()
        qemu.close()
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()


@pytest.fixture(scope="session")
def moto_ec2():
    """moto's EC2 + CloudWatch server with the seed AMI, as the contract suite starts it."""
    from standins.ec2 import MotoEC2
    from standins.moto_ec2 import REGION

    standin = MotoEC2()
    standin.start(None)
    try:
        yield {"sirocco_it_ec2_uri": standin.server.url, "sirocco_it_ec2_access_key": standin.server.access_key,
               "sirocco_it_ec2_secret_key": standin.server.secret_key, "sirocco_it_ec2_region": REGION,
               "sirocco_it_ec2_options": standin.options()}
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def openstack():
    """The OpenStack stand-in (installed and started unless it runs: `make openstack`)."""
    from standins.openstack import CLOUD, IMAGE, STATE, OpenStackStandIn

    standin = OpenStackStandIn()
    standin.start(None)
    try:
        yield {"sirocco_it_openstack_options": {"cloud": CLOUD, "clouds_yaml": str(STATE / "clouds.yaml"),
                                                "image": IMAGE}}
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory):
    """A collections path whose ansible_collections/sirocco/cimi is this working tree."""
    root = tmp_path_factory.mktemp("collections")
    link = root / "ansible_collections" / "sirocco" / "cimi"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    return root
