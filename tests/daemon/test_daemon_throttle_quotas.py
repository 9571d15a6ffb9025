"""Failed logins are throttled, tenants have quotas (issue 11, item 13).

* A user name that keeps failing, or an address that keeps failing under many names, is refused with
  429 and Retry-After, even with the right password, until the time is up; the right password then works.
* An administrator sets a tenant's quota (cpu, memory, machines, volumes) and reads what it holds; a
  request beyond it gets a CIMI error naming the quota and changes nothing, also when many come at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, Api, assert_cimi_error, basic, make_app


@pytest.fixture
def app(tmp_path):
    application = make_app(tmp_path / "data", workers=2)
    yield application
    application.extensions["siroccod"].close()


def _get(client, name, password, address):
    return client.get("/cimi/cloudEntryPoint", headers={"Authorization": basic(name, password)},
                      environ_base={"REMOTE_ADDR": address})


def test_a_user_name_that_keeps_failing_is_throttled(app):
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "victim", "tenant": "v", "password": "victim-right-pw"}
                      ).status_code == 201
    for i in range(6):  # five free failures, the sixth locks the name
        assert_cimi_error(_get(client, "victim", "wrong-%d" % i, "10.0.0.%d" % i), 401)
    locked = _get(client, "victim", "victim-right-pw", "10.0.1.1")  # the right password, another address
    error = assert_cimi_error(locked, 429)
    assert error["properties"]["error"] == "throttled"
    wait = int(locked.headers["Retry-After"])
    assert 1 <= wait <= 900
    for _attempt in range(20):  # attempts during the lock are refused without being counted as checked passwords
        assert _get(client, "victim", "victim-right-pw", "10.0.1.1").status_code == 429
    time.sleep(wait)
    assert _get(client, "victim", "victim-right-pw", "10.0.1.1").status_code == 200
    assert _get(client, "victim", "victim-right-pw", "10.0.1.1").status_code == 200  # failures were cleared


def test_an_address_that_keeps_failing_is_throttled(app):
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "bystander", "tenant": "b", "password": "bystander-pw"}
                      ).status_code == 201
    for i in range(21):  # twenty free failures for one address, under as many names
        assert _get(client, "nobody%d" % i, "guess", "10.9.9.9").status_code == 401
    assert_cimi_error(_get(client, "bystander", "bystander-pw", "10.9.9.9"), 429)
    assert _get(client, "bystander", "bystander-pw", "10.8.8.8").status_code == 200  # other addresses are not
    bad_token = client.get("/cimi/cloudEntryPoint", headers={"Authorization": "Bearer sct_nothing"},
                           environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert_cimi_error(bad_token, 429)


def _tiny(api, name):
    return api.post(api.collection("machines"), {
        "resourceURI": CIMI + "MachineCreate", "name": name,
        "machineTemplate": {"machineConfig": {"href": api.config_href("tiny")}, "initialState": "STOPPED"}})


def test_quotas_are_set_read_and_kept(app):
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "quoted", "tenant": "small", "password": "quoted-pw-1"}
                      ).status_code == 201
    user = Api(client, "quoted", "quoted-pw-1")
    tenant = admin.get("/admin/tenants/small").json
    assert tenant["quota"] == {"cpu": None, "memoryMiB": None, "machines": None, "volumes": None}
    r = admin.put("/admin/tenants/small/quota", {"cpu": 2, "machines": 2, "volumes": 1})
    assert r.status_code == 200 and r.json["quota"] == {"cpu": 2, "memoryMiB": None, "machines": 2, "volumes": 1}
    assert_cimi_error(admin.put("/admin/tenants/small/quota", {"cpu": -1}), 400)
    assert_cimi_error(admin.put("/admin/tenants/small/quota", {"disks": 3}), 400)
    assert_cimi_error(admin.put("/admin/tenants/nosuch/quota", {"cpu": 1}), 404)
    assert_cimi_error(user.put("/admin/tenants/small/quota", {"cpu": 99}), 403)  # administrators only

    first = user.create_machine("one", config="tiny")  # 1 cpu
    medium = user.post(user.collection("machines"), {
        "resourceURI": CIMI + "MachineCreate", "name": "two-cpu",
        "machineTemplate": {"machineConfig": {"href": user.config_href("medium")}, "initialState": "STOPPED"}})
    error = assert_cimi_error(medium, 403)  # 1 + 2 cpu > 2
    assert error["properties"] == {"error": "quota-exceeded", "attribute": "cpu"}
    assert "quota cpu is 2" in error["statusMessage"]
    user.create_machine("two", config="tiny")
    error = assert_cimi_error(_tiny(user, "three"), 403)
    assert error["properties"]["attribute"] in ("cpu", "machines")
    assert len(user.items("machines")) == 2
    volume = user.post(user.collection("volumes"), {"name": "v1",
                                                    "volumeTemplate": {"volumeConfig": {"capacity": 1024}}})
    assert volume.status_code == 202
    user.wait(volume.headers["CIMI-Job-URI"])
    error = assert_cimi_error(user.post(user.collection("volumes"), {
        "name": "v2", "volumeTemplate": {"volumeConfig": {"capacity": 1024}}}), 403)
    assert error["properties"]["attribute"] == "volumes"
    usage = admin.get("/admin/tenants/small").json["usage"]
    assert usage == {"cpu": 2, "memoryMiB": 128, "machines": 2, "volumes": 1}
    user.remove(first)  # what is deleted no longer counts
    assert _tiny(user, "three").status_code == 202


def test_many_creations_at_once_keep_the_quota(app):
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "burst", "tenant": "burst", "password": "burst-pw-1"}
                      ).status_code == 201
    assert admin.put("/admin/tenants/burst/quota", {"machines": 3}).status_code == 200
    local, start = threading.local(), threading.Barrier(12)

    def create(i):
        if not hasattr(local, "api"):
            local.api = Api(app.test_client(), "burst", "burst-pw-1")
            local.api.config_href("tiny")
            start.wait(30)
        return _tiny(local.api, "b%d" % i).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = Counter(pool.map(create, range(12)))
    assert statuses == Counter({202: 3, 403: 9}), statuses
    assert admin.get("/admin/tenants/burst").json["usage"]["machines"] == 3
    assert app.extensions["siroccod"].server_errors == 0
