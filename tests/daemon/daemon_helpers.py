"""Helpers of the daemon tests: a CIMI client over Flask's test client, app factory, error checks."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon"))

from siroccod.app import create_app  # noqa: E402

CIMI = "http://schemas.dmtf.org/cimi/2/"
ADMIN_PASSWORD = "admin-secret-pw"
PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw", "carol": "carol-secret-pw"}
TENANTS = {"alice": "tenant-a", "bob": "tenant-b", "carol": "tenant-a"}


def basic(name, password):
    return "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()


def action(verb, **params):
    return {"resourceURI": CIMI + "Action", "action": CIMI + "action/" + verb, **params}


class JobDoc(dict):
    """A job document whose repr says what matters when an assertion fails."""

    def __repr__(self):
        return "Job(%s, %s: %s)" % (self.get("action", "").rsplit("/", 1)[-1], self.get("state"),
                                    self.get("statusMessage"))


class Api:
    """A CIMI client over a Flask test client, as one user."""

    def __init__(self, client, name, password):
        self.client = client
        self.name = name
        self.headers = {"Authorization": basic(name, password)}

    def _go(self, method, url, **kwargs):
        headers = dict(self.headers, **kwargs.pop("headers", {}))
        return getattr(self.client, method)(url, headers=headers, **kwargs)

    def get(self, url, **kw):
        return self._go("get", url, **kw)

    def post(self, url, body=None, **kw):
        if body is not None:
            kw["json"] = body
        return self._go("post", url, **kw)

    def put(self, url, body=None, **kw):
        if body is not None:
            kw["json"] = body
        return self._go("put", url, **kw)

    def delete(self, url, **kw):
        return self._go("delete", url, **kw)

    def patch(self, url, body=None, **kw):
        if body is not None:
            kw["json"] = body
        return self._go("patch", url, **kw)

    # -- CIMI helpers -------------------------------------------------------------------
    def cep(self):
        return self.get("/cimi/cloudEntryPoint").json

    def collection(self, key):
        return self.cep()[key]["href"]

    def items(self, key, query=""):
        doc = self.get(self.collection(key) + query).json
        return doc.get(key, [])

    def wait(self, job_uri, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_uri).json
            if job["state"] in ("SUCCESS", "FAILED"):
                return JobDoc(job)
            assert time.monotonic() < deadline, "job still %s: %s" % (job["state"], job)
            time.sleep(0.02)

    def config_href(self, name="tiny"):
        for cfg in self.items("machineConfigs"):
            if cfg["name"] == name:
                return cfg["id"]
        raise AssertionError("no machine config %s" % name)

    def create_machine(self, name="m", state="STOPPED", config="tiny", ok=True, properties=None, **template):
        template = dict({"machineConfig": {"href": self.config_href(config)}, "initialState": state}, **template)
        body = {"resourceURI": CIMI + "MachineCreate", "name": name, "machineTemplate": template}
        if properties:
            body["properties"] = properties
        r = self.post(self.collection("machines"), body)
        assert r.status_code == 202, r.json
        job = self.wait(r.headers["CIMI-Job-URI"])
        if ok:
            assert job["state"] == "SUCCESS", job
        return self.get(r.headers["Location"]).json

    def members(self, doc, attr):
        """The items of a resource's collection (5.5.12: a Machine's disks, interfaces, volumes, meters, a
        Meter's samples, a System's machines, ...), read from its href."""
        coll = self.get(doc[attr]["href"]).json
        assert coll["resourceURI"].endswith("Collection"), coll
        lists = [v for k, v in coll.items() if isinstance(v, list) and k != "operations"]
        assert len(lists) <= 1 and coll["count"] == (len(lists[0]) if lists else 0), coll
        return lists[0] if lists else []

    def ops(self, doc):
        return {op["rel"].rsplit("/", 1)[-1]: op["href"] for op in doc.get("operations", [])}

    def act(self, machine, verb, expect="SUCCESS", **params):
        href = self.ops(machine)[verb]
        r = self.post(href, action(verb, **params))
        assert r.status_code == 202, r.json
        job = self.wait(r.headers["CIMI-Job-URI"])
        assert job["state"] == expect, job
        return self.get(machine["id"]).json

    def remove(self, doc):
        r = self.delete(doc["id"])
        assert r.status_code in (200, 202, 204), r.json
        if r.status_code == 202:
            job = self.wait(r.headers["CIMI-Job-URI"])
            assert job["state"] == "SUCCESS", job


def make_app(data_dir, **overrides):
    settings = dict(data_dir=str(data_dir), admin_password=ADMIN_PASSWORD, job_poll_interval=0.05,
                    log_level="WARNING")
    settings.update(overrides)
    return create_app(**settings)


def add_users(admin, names=("alice", "bob", "carol")):
    for name in names:
        r = admin.post("/admin/users", {"name": name, "tenant": TENANTS[name], "password": PASSWORDS[name]})
        assert r.status_code in (201, 409), r.json


def assert_cimi_error(response, status):
    """A 4xx reply with a CIMI error body and no traceback."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json"
    body = response.json
    assert body["resourceURI"] == CIMI + "Job"
    assert body["state"] == "FAILED"
    assert body["returnCode"] == status
    assert isinstance(body["statusMessage"], str) and body["statusMessage"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body
