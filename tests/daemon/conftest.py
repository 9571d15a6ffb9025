"""siroccod under test: the embedded default (three simulated hosts on libvirt's REAL test
driver, SQLite CMDB in a temporary data directory) driven through app.test_client()."""

from __future__ import annotations

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, make_app


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
