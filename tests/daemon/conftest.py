"""siroccod under test: the embedded default (three simulated hosts on libvirt's REAL test
driver, SQLite CMDB in a temporary data directory) driven through app.test_client(); and the real
peers some tests need: a new database on the PostgreSQL stand-in, this run's QEMU domains."""

from __future__ import annotations

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, make_app
from realhost_helpers import fresh_database, qemu_host


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    application = make_app(tmp_path_factory.mktemp("siroccod"))
    yield application
    application.extensions["siroccod"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def admin(client):
    api = Api(client, "admin", ADMIN_PASSWORD)
    add_users(api)
    return api


@pytest.fixture(scope="module")
def alice(client, admin):
    return Api(client, "alice", PASSWORDS["alice"])


@pytest.fixture(scope="module")
def bob(client, admin):
    return Api(client, "bob", PASSWORDS["bob"])


@pytest.fixture(scope="module")
def carol(client, admin):
    return Api(client, "carol", PASSWORDS["carol"])


@pytest.fixture
def pg_database():
    """The URL of a new, empty database on the PostgreSQL stand-in (dropped afterwards)."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A CMDB URL of each kind: a new SQLite file, a new PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite:///%s" % (tmp_path / "cmdb.sqlite")
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def qemu():
    """This run's QEMU domains behind the running libvirtd (removed afterwards)."""
    with qemu_host() as host:
        yield host
