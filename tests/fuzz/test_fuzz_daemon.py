"""schemathesis against `siroccod serve` as a real process, driven by the OpenAPI description it serves.

The daemon runs the embedded default (three simulated hosts on libvirt's test driver, SQLite) in
a temporary data directory on a free port. Before fuzzing, a regular user and an administrator
get API tokens and the user gets one resource of every kind (machines STARTED and STOPPED, a
volume, a network, a system, templates, ...): the description fetched from /cimi/openapi.json
is then given those ids as candidate values of each ``{uuid}`` path parameter (beside random
strings), so generated requests reach real resources rather than only 404s, and OpenAPI links
from each create to what can be done with what it made (the id taken from the Location header
with schemathesis' regex extractor) for the stateful phase. Nothing else is changed.

Three bounded, deterministic schemathesis runs (the CLI, as a user would run it): the CIMI
endpoint as the regular user (examples, coverage and fuzzing phases, positive and negative
data), the same in the stateful phase (sequences along the links: create, read, change, act,
delete), and /admin as the administrator. Every response must be free of 5xx and conform to its
documented status codes, headers, content type and schema; schema-violating requests must be
refused; a method not served must get 405 with a true Allow. The daemon's log must hold no
traceback. Budget: FUZZ_MAX_TIME (seconds of schemathesis in all, shared by the runs),
FUZZ_EXAMPLES (per operation); FUZZ_SEED only matters if deterministic mode is dropped.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CIMI = "http://schemas.dmtf.org/cimi/2/"
ADMIN_PASSWORD = "fuzz-admin-password"
USER_PASSWORD = "fuzz-user-password"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261124"))
# seconds of schemathesis in all (plus ~15 s to start and seed the daemon), shared by the runs below
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "110"))
STATELESS = "examples,coverage,fuzzing"
# name, who, which paths, phases, share of MAX_TIME
RUNS = (("cimi", "user", "^/cimi/", STATELESS, 0.6), ("cimi-stateful", "user", "^/cimi/", "stateful", 0.25),
        ("admin", "root", "^/admin/", STATELESS, 0.15))
OUTPUT = ROOT / "tests" / "output" / "fuzz"  # schemathesis' full output and JUnit reports
# Every check that makes sense for this API. Not positive_data_acceptance: a request can be valid
# by the schema and still be refused with 400 on meaning (a $filter is a grammar, an href must
# name an existing resource of the caller's); nor the stateful ones (use_after_free, ...).
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
          "unsupported_method", "allow_header_conformance", "missing_required_header")
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _basic(name, password):
    return "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()


class Daemon:
    """`python -m siroccod serve` on a free port; stopped with SIGTERM."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log_path = tmp_path / "siroccod.log"
        env = dict(os.environ, SIROCCOD_DATA=str(tmp_path / "data"), SIROCCOD_ADMIN_PASSWORD=ADMIN_PASSWORD,
                   SIROCCOD_LOG_LEVEL="WARNING",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "daemon"), os.environ.get("PYTHONPATH", "")]))
        env.pop("SIROCCOD_CONFIG", None)
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen([sys.executable, "-m", "siroccod", "serve", "--listen",
                                      "127.0.0.1:%d" % self.port], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(self.base + "/cimi/openapi.json", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("siroccod did not start: %s" % self.log_path.read_text())

    def stop(self):
        started = time.monotonic()
        try:
            self._stop()
        finally:
            print("siroccod stopped in %.1f s" % (time.monotonic() - started))

    def _stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class Client:
    def __init__(self, base, authorization):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = authorization

    def call(self, method, url, body=None, expect=(200, 201, 202)):
        r = self.session.request(method, url if "://" in url else self.base + url, json=body, timeout=30)
        assert r.status_code in expect, (method, url, r.status_code, r.text[:500])
        return r

    def wait(self, response):
        job_uri = response.headers.get("CIMI-Job-URI")
        deadline = time.monotonic() + 30
        while job_uri:
            job = self.call("GET", job_uri).json()
            if job["state"] in ("SUCCESS", "FAILED"):
                assert job["state"] == "SUCCESS", job.get("statusMessage")
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        return self.call("GET", response.headers["Location"]).json()

    def create(self, key, body):
        cep = self.call("GET", "/cimi/cloudEntryPoint").json()
        return self.wait(self.call("POST", cep[key]["href"], body))


def seed(user):
    """One resource of every kind the user can create, plus a few left in useful states."""
    configs = user.call("GET", "/cimi/machineConfigs").json()["machineConfigs"]
    tiny = next(c for c in configs if c["name"] == "tiny")
    made = {}

    def add(key, body):
        doc = user.create(key, body)
        made.setdefault(key, []).append(doc["id"].rsplit("/", 1)[1])
        return doc

    add("machineConfigs", {"resourceURI": CIMI + "MachineConfiguration", "name": "fz-config", "cpu": 1,
                           "memory": 262144, "disks": [{"capacity": 1048576}]})
    cred = add("credentials", {"name": "fz-cred", "userName": "root", "password": "secret",
                               "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHUqsLTMZRA7TWgYv7/"
                                      "3XdjByah9BL/NJmihXK7XDOg alice@example"})
    template = add("machineTemplates", {"name": "fz-template", "machineConfig": {"href": tiny["id"]},
                                        "initialState": "STOPPED", "properties": {"credential": cred["name"]}})
    for state in ("STARTED", "STOPPED"):
        add("machines", {"resourceURI": CIMI + "MachineCreate", "name": "fz-" + state.lower(),
                         "machineTemplate": {"href": template["id"], "initialState": state}})
    volume_config = add("volumeConfigs", {"name": "fz-vc", "capacity": 1024, "format": "qcow2"})
    add("volumeImages", {"name": "fz-vi", "imageLocation": "nowhere", "bootable": False})
    volume_template = add("volumeTemplates", {"name": "fz-vt", "volumeConfig": {"href": volume_config["id"]}})
    add("volumes", {"resourceURI": CIMI + "VolumeCreate", "name": "fz-volume",
                    "volumeTemplate": {"href": volume_template["id"]}})
    network_config = add("networkConfigs", {"name": "fz-nc", "networkType": "PRIVATE", "mtu": 1500})
    network_template = add("networkTemplates", {"name": "fz-nt", "networkConfig": {"href": network_config["id"]}})
    add("networks", {"resourceURI": CIMI + "NetworkCreate", "name": "fz-network",
                     "networkTemplate": {"href": network_template["id"]}})
    system_template = add("systemTemplates", {"name": "fz-st", "componentDescriptors": [
        {"type": CIMI + "Machine", "quantity": 1, "machineTemplate": {"href": template["id"]}}]})
    add("systems", {"resourceURI": CIMI + "SystemCreate", "name": "fz-system",
                    "systemTemplate": {"href": system_template["id"]}})
    # and what the daemon made or offers: jobs, meters, public configurations and images, ...
    cep = user.call("GET", "/cimi/cloudEntryPoint").json()
    for key, link in cep.items():
        if isinstance(link, dict) and "href" in link and key not in made:
            items = user.call("GET", link["href"]).json().get(key, [])
            if items:
                made[key] = [doc["id"].rsplit("/", 1)[1] for doc in items[:3]]
    return made


def enrich(description, ids):
    """Each {uuid} parameter may also take the ids of real resources of its collection; and, for the
    stateful phase, each create links to what can be done with what it made (OpenAPI links, the id
    taken from the Location header with schemathesis' regex extractor)."""
    paths = description["paths"]
    for path, item in list(paths.items()):
        parts = path.split("/")
        if len(parts) != 3 or "post" not in item:
            continue
        targets = {}
        for other, other_item in paths.items():
            if other.startswith(path + "/{uuid}") and other.count("{") == 1:
                for method, op in other_item.items():
                    if method in ("get", "put", "post", "delete"):
                        targets[op["operationId"]] = op["operationId"]
        links = {name: {"operationId": name, "parameters": {"uuid": "$response.header.Location#regex:/([^/]+)$"}}
                 for name in targets}
        for code, response in item["post"]["responses"].items():
            if code in ("201", "202"):
                response["links"] = links
    for path, item in description["paths"].items():
        parts = path.split("/")
        if len(parts) < 4 or parts[3] != "{uuid}":
            continue
        known = ids.get(parts[2])
        if not known:
            continue
        for operation in [item, *(v for k, v in item.items() if k in ("get", "put", "post", "delete"))]:
            for param in operation.get("parameters", []):
                if param.get("name") == "uuid" and param.get("in") == "path":
                    param["schema"] = {"anyOf": [{"type": "string", "enum": list(known)}, {"type": "string"}]}
    return description


def run_schemathesis(tmp_path, schema_file, base, authorization, name, include, phases, max_time):
    """One schemathesis run; its output is kept in tests/output/fuzz/."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # deterministic generation (the seed only matters without it); one worker: hypothesis is not
    # thread-safe enough for schemathesis' workers (spurious "AST constructor recursion" errors)
    cmd = [SCHEMATHESIS, "run", str(schema_file), "--url", base, "-H", "Authorization: " + authorization,
           "--checks", ",".join(CHECKS), "--mode", "all", "--phases", phases,
           "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
           "--workers", "1", "--max-time", str(max_time),
           "--request-timeout", "30", "--no-color", "--suppress-health-check", "all", "--warnings", "off",
           "--report", "junit", "--report-junit-path", str(OUTPUT / ("junit-%s.xml" % name)),
           "--include-path-regex", include]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=max_time * 2 + 120, check=False,
                          env={k: v for k, v in os.environ.items() if k != "SCHEMATHESIS_HOOKS"})
    output = proc.stdout + proc.stderr
    (OUTPUT / ("schemathesis-%s.txt" % name)).write_text(output)
    print("schemathesis %s: exit %d in %.0f s\n%s" % (name, proc.returncode, time.monotonic() - started,
                                                      output[-2500:]))
    return proc.returncode, output


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("fuzz"))
    yield d
    d.stop()


def test_fuzz_the_running_daemon(daemon, tmp_path):
    assert SCHEMATHESIS, "schemathesis is not installed (make venv: the test extra)"
    admin = Client(daemon.base, _basic("admin", ADMIN_PASSWORD))
    admin.call("POST", "/admin/users", {"name": "fuzz-user", "tenant": "fuzz", "password": USER_PASSWORD})
    admin.call("POST", "/admin/users", {"name": "fuzz-root", "tenant": "admin", "role": "admin",
                                        "password": ADMIN_PASSWORD})
    # tokens: the fuzzer may change passwords through /admin, tokens stay valid
    user_token = "Bearer " + admin.call("POST", "/admin/users/fuzz-user/tokens", {"label": "fuzz"}).json()["token"]
    root_token = "Bearer " + admin.call("POST", "/admin/users/fuzz-root/tokens", {"label": "fuzz"}).json()["token"]
    user = Client(daemon.base, user_token)
    ids = seed(user)

    r = requests.get(daemon.base + "/cimi/openapi.json", timeout=10)  # no credentials needed
    assert r.status_code == 200
    description = r.json()
    from openapi_spec_validator import validate
    validate(description)
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(enrich(description, ids), indent=1))

    failures = []
    tokens = {"user": user_token, "root": root_token}
    for name, who, include, phases, share in RUNS:
        budget = max(10, int(MAX_TIME * share))
        code, output = run_schemathesis(tmp_path, schema_file, daemon.base, tokens[who], name, include, phases, budget)
        if code != 0:
            failures.append("schemathesis (%s) exit %d:\n%s" % (name, code, output[-12000:]))
    assert daemon.proc.poll() is None, "siroccod died: %s" % daemon.log_path.read_text()[-5000:]
    log = daemon.log_path.read_text()
    assert "Traceback" not in log and "unexpected error" not in log, log[-8000:]
    assert not failures, "\n\n".join(failures)
