"""Revocation is immediate, in every process (issue 11, item 4).

`siroccod user password` and `siroccod user remove` run in another process while the daemon serves
(on SQLite as on PostgreSQL): the old password, or the removed user, is refused at the very next
request, though the daemon had just verified it. Tokens are listed and revoked one by one (API and
CLI), expire, and a password change revokes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, Api, assert_cimi_error, make_app
from realhost_helpers import DAEMON_DIR, fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    """An app (the daemon's own request handling, its authentication memory warm) and the settings a CLI
    process needs to reach the same CMDB."""
    data = tmp_path / "data"
    if request.param == "postgresql":
        with fresh_database() as url:
            app = make_app(data, database=url)
            yield app, {"SIROCCOD_DATA": str(data), "SIROCCOD_DATABASE_URL": url}
            app.extensions["siroccod"].close()
    else:
        app = make_app(data)
        yield app, {"SIROCCOD_DATA": str(data)}
        app.extensions["siroccod"].close()


def cli(settings, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIROCCOD_")}
    env.update(settings, PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "siroccod", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _credential(api):
    body = {"resourceURI": CIMI + "CredentialCreate", "name": "c",
            "credentialTemplate": {"username": "u", "key": "ssh-ed25519 AAAA"}}
    return api.post("/cimi/credentials", body)


def test_changes_from_another_process_count_at_the_next_request(served):
    app, settings = served
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    for name in ("mallory", "trudy"):
        assert admin.post("/admin/users", {"name": name, "tenant": name, "password": name + "-old-pw"}
                          ).status_code == 201
    mallory, trudy = Api(client, "mallory", "mallory-old-pw"), Api(client, "trudy", "trudy-old-pw")
    for api in (mallory, trudy):  # verified now: the daemon remembers these passwords
        assert api.get("/cimi/cloudEntryPoint").status_code == 200
    cli(settings, "user", "password", "mallory", "--password-stdin", stdin="mallory-new-pw\n")
    assert_cimi_error(mallory.get("/cimi/cloudEntryPoint"), 401)
    assert Api(client, "mallory", "mallory-new-pw").get("/cimi/cloudEntryPoint").status_code == 200
    cli(settings, "user", "remove", "trudy")
    assert_cimi_error(trudy.get("/cimi/cloudEntryPoint"), 401)
    assert_cimi_error(_credential(trudy), 401)  # a removed user makes nothing


def test_tokens_listed_revoked_expiring_and_ended_by_a_password_change(served):
    app, settings = served
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "tok", "tenant": "tok", "password": "tok-user-pw"}).status_code == 201
    made = [admin.post("/admin/users/tok/tokens", {"label": label}).json for label in ("ci", "laptop")]
    assert all(t["token"].startswith("sct_") and t["expires"] for t in made)
    never = admin.post("/admin/users/tok/tokens", {"label": "forever", "lifetimeDays": 0}).json
    assert never["expires"] is None
    listed = admin.get("/admin/users/tok/tokens").json["tokens"]
    assert [t["label"] for t in listed] == ["ci", "laptop", "forever"]
    assert all("token" not in t for t in listed)

    def bearer(token):
        return client.get("/cimi/cloudEntryPoint", headers={"Authorization": "Bearer " + token})
    assert all(bearer(t["token"]).status_code == 200 for t in made + [never])
    # revoked one by one, through the API ...
    assert admin.delete("/admin/users/tok/tokens/%d" % made[0]["id"]).status_code == 200
    assert_cimi_error(bearer(made[0]["token"]), 401)
    assert bearer(made[1]["token"]).status_code == 200
    assert_cimi_error(admin.delete("/admin/users/tok/tokens/%d" % made[0]["id"]), 404)
    # ... and from the CLI of another process
    out = cli(settings, "user", "tokens", "tok")
    assert "laptop" in out and "ci " not in out and made[1]["token"] not in out
    cli(settings, "user", "revoke-token", "tok", str(made[1]["id"]))
    assert_cimi_error(bearer(made[1]["token"]), 401)
    # an expired token is refused
    from siroccod.store import Token, utcnow
    daemon = app.extensions["siroccod"]
    with daemon.store.transaction() as session:
        session.get(Token, never["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert_cimi_error(bearer(never["token"]), 401)
    # a password change revokes every token of the user
    fresh = admin.post("/admin/users/tok/tokens", {"label": "fresh"}).json
    assert bearer(fresh["token"]).status_code == 200
    assert admin.put("/admin/users/tok/password", {"password": "tok-user-pw-2"}).status_code == 200
    assert_cimi_error(bearer(fresh["token"]), 401)
    assert admin.get("/admin/users/tok/tokens").json["tokens"] == []
