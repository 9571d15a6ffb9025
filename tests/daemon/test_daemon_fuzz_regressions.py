"""Regression tests for what fuzzing the running daemon (tests/fuzz) found."""

from __future__ import annotations

import pytest
from daemon_helpers import assert_cimi_error

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict
from siroccod.auth import Users
from siroccod.store import Token, User


def test_token_label_longer_than_its_column_is_refused(admin, app):
    """A 65-character label passed on SQLite (no length check) and failed on PostgreSQL (500)."""
    store = app.extensions["siroccod"].store
    with store.read() as session:
        before = session.query(Token).count()
    assert_cimi_error(admin.post("/admin/users/alice/tokens", {"label": "x" * 65}), 400)
    assert_cimi_error(admin.post("/admin/users/alice/tokens", {"label": 7}), 400)
    with store.read() as session:
        assert session.query(Token).count() == before
    assert admin.post("/admin/users/alice/tokens", {"label": "x" * 64}).status_code == 201


def test_user_deleted_while_its_password_changes_is_a_conflict(app):
    """PUT /admin/users/<name>/password racing DELETE /admin/users/<name>: the UPDATE matched no
    row (StaleDataError) and the daemon answered 500; a concurrent change is a 409."""
    d = app.extensions["siroccod"]
    users = Users(d.store)
    with d.store.transaction() as session:
        users.add(session, "racer", "race", password="racer-password")
    with pytest.raises(Conflict):
        with d.store.transaction() as session:
            users.set_password(session, "racer", "another-password")  # loads the row, changes it
            with d.store.transaction() as other:  # meanwhile, another request removes the user
                users.remove(other, "racer")
    with d.store.read() as session:
        assert session.query(User).filter_by(name="racer").count() == 0


@pytest.mark.parametrize("method,url,allowed", [
    ("put", "/cimi/cloudEntryPoint", {"GET"}),
    ("delete", "/cimi/resourceMetadata", {"GET"}),
    ("put", "/cimi/machines", {"GET", "POST"}),
    ("delete", "/cimi/credentials", {"GET", "POST"}),
    ("post", "/cimi/jobs", {"GET"}),
    ("put", "/cimi/meters/x", {"GET"}),
    ("post", "/cimi/machines/x", {"GET", "PUT", "DELETE"}),
    ("get", "/cimi/machines/x/start", {"POST"}),
    ("put", "/cimi/systems/x/stop", {"POST"}),
    ("patch", "/cimi/machines/x/volumes", {"GET", "POST"}),
])
def test_methods_not_served_get_405_with_a_true_allow(alice, method, url, allowed):
    """Every collection URL used to accept every method (a catch-all answered 404, the generic
    rules advertised each other's methods in Allow); now each URL has exactly its own."""
    r = alice.patch(url, {}) if method == "patch" else getattr(alice, method)(url)
    assert_cimi_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) - {"HEAD", "OPTIONS"} == allowed
    r = alice._go("options", url)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) - {"HEAD", "OPTIONS"} == allowed


def test_unknown_paths_and_verbs_are_404(alice):
    for url in ("/cimi/nothing", "/cimi/a/b/c/d/e", "/cimi/machines/x/fly", "/cimi/jobs/x/start"):
        assert_cimi_error(alice.post(url, {}), 404)


def test_empty_by_value_reference_is_checked(alice):
    """``"machineConfig": {}`` (by value, empty) skipped validation: a template without cpu or
    memory was recorded. (``"networkTemplate": {}`` is a valid NetworkTemplate since DSP0263 2.0.0's Table 31,
    which requires nothing: tests/daemon/test_cimi_conformance_networks_credentials.py.)"""
    before = {key: alice.get(alice.collection(key)).json["count"] for key in (
        "machineTemplates", "volumeTemplates", "networks", "machines")}
    r = alice.post(alice.collection("machineTemplates"), {"name": "t", "machineConfig": {}})
    assert "machineConfig.cpu" in assert_cimi_error(r, 400)["statusMessage"]
    assert_cimi_error(alice.post(alice.collection("volumeTemplates"), {"volumeConfig": {}}), 400)
    assert_cimi_error(alice.post(alice.collection("networks"), {"networkTemplate": {"networkConfig": {"mtu": 0}}}),
                      400)
    assert_cimi_error(alice.post(alice.collection("machines"), {"machineTemplate": {"machineConfig": {}}}), 400)
    after = {key: alice.get(alice.collection(key)).json["count"] for key in before}
    assert after == before
    # by reference, or by value with what is required, still works
    r = alice.post(alice.collection("machineTemplates"), {"name": "t", "machineConfig": {"cpu": 1, "memory": 1024}})
    assert r.status_code == 201, r.json
    alice.remove(r.json)


def test_admin_bodies_refuse_unknown_attributes(admin, app):
    """POST /admin/users/<name>/tokens and PUT .../password ignored attributes they do not know
    (a misspelt "pasword" generated a new password instead of being refused)."""
    store = app.extensions["siroccod"].store
    with store.read() as session:
        tokens = session.query(Token).count()
    assert_cimi_error(admin.post("/admin/users/alice/tokens", {"label": "x", "lable": "y"}), 400)
    assert_cimi_error(admin.put("/admin/users/alice/password", {"pasword": "long-enough-pw"}), 400)
    with store.read() as session:
        assert session.query(Token).count() == tokens
    assert admin.get("/cimi/machines", headers={"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0LXB3"}).status_code \
        == 200  # alice:alice-secret-pw still works
