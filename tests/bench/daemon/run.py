"""siroccod throughput and latency, beside a bare Flask endpoint serving the same JSON (the ceiling).

    python tests/bench/daemon/run.py [--runs 5] [--seconds 4] [--concurrency 2] [--machines 1000]
                                     [--baseline-tree PATH]

What runs, all on this machine, over loopback HTTP with keep-alive connections:

* ``siroccod serve`` as a real process: the embedded default (three simulated hosts on libvirt's
  test driver, SQLite CMDB in a temporary data directory), listening through its own WSGI
  server (the one ``siroccod serve`` uses; its name is printed).
* the ceiling: a bare Flask app in its own process under the SAME WSGI server with the same
  thread count, whose handlers do what any Flask endpoint must at the least: ``json.dumps`` of
  the same documents (fetched from the daemon before measuring) into a response. No
  authentication, no database, no rendering.

The CMDB holds ``--machines`` machines of one tenant. One is created through the API (a real
machine on a simulated host); the others are its clones written straight into the CMDB by this
script while the daemon is stopped (the fast path: through the API they would need 1,000 jobs and
more capacity than the three simulated hosts have). Clones keep the real machine's document
(cpu, memory, disks, state STOPPED, ...) with their own id, name and native id, but record no
host: they take no capacity from the create->delete cycles and need no domain on a simulated
host; they are rendered exactly like placed machines (same attributes and operations).

Scenarios (closed loop: ``--concurrency`` client threads, each sending its next request when the
previous one is answered, for ``--seconds``; daemon and ceiling alternate, ``--runs`` times; the
table shows medians over runs):

* list: ``GET /cimi/machines`` (all ``--machines`` machines, ~1 KB each);
* expand: ``GET /cimi/machines?$expand=disks,interfaces,volumes``, what the cimi connector (and so the
  inventory) asks for: every machine with its collections inline (CIMI 2.0's references, 5.5.12; a daemon
  from before it served them as inline lists and ignores the $expand: the same content either way);
* get: ``GET /cimi/machines/<id>``;
* cycle: create -> delete through the API by another tenant: POST a MachineCreate (tiny config,
  STOPPED), poll its job to SUCCESS, DELETE, poll to SUCCESS; latency is the whole cycle. The
  ceiling answers the POST and the DELETE with the same documents (it has no jobs to wait for).
* slow (siroccod only, a second table): ``GET /cimi/machines/<id>`` idle, then again while
  ``--slow-clients`` (50) slow clients hold connections open, each trickling a byte a second: a
  request line or headers never finished, an authenticated body short of its Content-Length, or
  nothing at all (a slowloris; one the daemon closes is opened again at once, as an attacker
  would). The column that matters is "p99 under N slow / p99 idle" (the target: 2 at most); a
  request not answered within ``--slow-timeout`` seconds counts as unanswered (and as that long).
* metering (siroccod only, a third table, after the others): the listing again, with the background
  metering off (``SIROCCOD_METER_INTERVAL=0``) and on at its most eager (every second, over
  ``--metered`` started machines of another tenant on the simulated hosts, five meters each), one
  daemon at a time on the same CMDB, alternately. The column that matters is "on / off" (the
  target: within 10 %).

With ``--baseline-tree PATH`` (a checkout of another commit, e.g. ``git worktree add
/var/tmp/sirocco-baseline <commit>``), every scenario also runs against ``siroccod serve`` started
from that tree: its ``daemon/`` first on PYTHONPATH and its collection as
``ansible_collections.sirocco.cimi`` (a directory of this run's whose ``ansible_collections`` is a
regular package holding only ``sirocco/cimi`` -> PATH, so nothing of this tree's collection leaks
in). The baseline gets a CMDB of its own, populated the same way by its own code. This tree's daemon,
the baseline's and the ceiling alternate within each run (this tree and the baseline swap order
from one run to the next), so both are measured in one run on the same machine; each table gains
the baseline's figures and the ratio this tree / baseline. The daemons restart during a run (the
metering scenario); for a tree being edited meanwhile, ``--snapshot`` measures a copy of its
``daemon/``, ``plugins/`` and ``meta/`` made at the start (imported like the baseline).

No timed asserts: tables (and --json for machines).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[3]
CIMI = "http://schemas.dmtf.org/cimi/2/"
# what the cimi connector asks of a machine listing (connectors/cimi_http.py INLINE_COLLECTIONS)
EXPAND = "?$expand=disks,interfaces,volumes"
ADMIN_PASSWORD = "bench-admin-password"
PASSWORDS = {"bench": "bench-user-password", "cycler": "cycler-user-password", "metered": "metered-user-password"}
THREADS = 8  # request threads of both servers


def loadavg():
    """1-minute load average (other work on the machine skews every figure)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic(name, password):
    return "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()


def wait_port(port, proc, what, log_path):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("%s did not start:\n%s" % (what, Path(log_path).read_text()[-3000:]))


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---------------------------------------------------------------------------------------------
# HTTP client: one keep-alive connection per thread
# ---------------------------------------------------------------------------------------------
class Conn:
    def __init__(self, port, authorization=None, timeout=60):
        self.port = port
        self.timeout = timeout
        self.headers = {"Authorization": authorization} if authorization else {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, url, body=None):
        path = urlsplit(url).path if "://" in url else url
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, data, headers)
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, r.headers, payload
            except (http.client.HTTPException, ConnectionError):
                self.reconnect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, url, body=None, expect=(200, 201, 202)):
        status, headers, payload = self.call(method, url, body)
        if status not in expect:
            raise SystemExit("%s %s -> %d %s" % (method, url, status, payload[:300]))
        return headers, (json.loads(payload) if payload else None)

    def wait_job(self, job_uri, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            _h, job = self.json("GET", job_uri)
            if job["state"] in ("SUCCESS", "FAILED"):
                if job["state"] != "SUCCESS":
                    raise SystemExit("job failed: %s" % job.get("statusMessage"))
                return job
            if time.monotonic() > deadline:
                raise SystemExit("job still %s" % job["state"])
            time.sleep(0.002)

    def reconnect(self):
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def close(self):
        self.conn.close()


class SlowLoris:
    """``n`` connections that never finish a request, kept open: each is sent one more byte every
    second; one the server closed (a timeout, the connection limit) is opened again at once."""

    def __init__(self, port, n, authorization):
        host = "Host: 127.0.0.1:%d\r\n" % port
        self.port = port
        self.kinds = [  # (what is sent first, the byte trickled)
            (b"GET /cimi/cloudEntryPoint?slow=", b"a"),
            (("GET /cimi/openapi.json HTTP/1.1\r\n%sX-Slow: " % host).encode(), b"a"),
            (("POST /cimi/machines HTTP/1.1\r\n%sAuthorization: %s\r\nContent-Type: application/json\r\n"
              "Content-Length: 65536\r\n\r\n{" % (host, authorization)).encode(), b" "),
            (b"", b""),
        ]
        self.socks = [None] * n
        self.reopened = 0
        self._stop = threading.Event()
        for i in range(n):
            self._open(i)
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _open(self, i):
        first, _byte = self.kinds[i % len(self.kinds)]
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if first:
                sock.sendall(first)
        except OSError:
            sock = None
        self.socks[i] = sock

    def _trickle(self):
        while not self._stop.wait(1.0):
            for i, sock in enumerate(self.socks):
                byte = self.kinds[i % len(self.kinds)][1]
                try:
                    if sock is None:
                        raise OSError("not open")
                    if select.select([sock], [], [], 0)[0]:  # an answer (408) or the end: closed
                        raise OSError("closed by the server")
                    if byte:
                        sock.sendall(byte)
                except OSError:
                    if sock is not None:
                        sock.close()
                    self.reopened += 1
                    self._open(i)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            if sock is not None:
                sock.close()


# ---------------------------------------------------------------------------------------------
# the daemon and its CMDB
# ---------------------------------------------------------------------------------------------
def serve_options(server, tree=None):
    """``--server NAME`` when the tree's ``siroccod serve`` has the option."""
    out = subprocess.run([sys.executable, "-m", "siroccod", "serve", "--help"], env=daemon_env(None, tree),
                         capture_output=True, text=True, check=False).stdout
    return ["--server", server] if "--server" in out else []


class Tree:
    """A source tree whose ``siroccod serve`` is measured, with a work directory (CMDB) of its own.
    This tree imports as the venv has it; another one (the baseline) through ``collections``: a
    directory whose ``ansible_collections`` (a regular package, so the venv's link to this tree is
    never searched) holds ``sirocco/cimi`` -> that tree."""

    def __init__(self, root, work, snapshot=False):
        self.root = Path(root).resolve()
        self.work = work
        self.source = None
        if snapshot:  # a copy of the tree's code as it is now: edits made during the run do not reach it
            self.source, self.root = self.root, work / "snapshot"
            for part in ("daemon", "plugins", "meta"):
                if (self.source / part).is_dir():
                    shutil.copytree(self.source / part, self.root / part,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            for name in ("galaxy.yml",):
                if (self.source / name).is_file():
                    shutil.copy2(self.source / name, self.root / name)
        self.collections = None
        if self.root != ROOT:
            self.collections = work / "collections"
            package = self.collections / "ansible_collections"
            (package / "sirocco").mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").write_text("")
            (package / "sirocco" / "cimi").symlink_to(self.root)

    def describe(self):
        root = self.source or self.root
        rev = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=False).stdout.strip()
        return "%s%s (%s)" % ("a copy made at the start of " if self.source else "", root, rev or "not git")


def daemon_env(data_dir, tree=None):
    paths = [str((tree.root if tree else ROOT) / "daemon")]
    if tree is not None and tree.collections is not None:
        paths.append(str(tree.collections))
    env = dict(os.environ, SIROCCOD_ADMIN_PASSWORD=ADMIN_PASSWORD, SIROCCOD_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
    if tree is not None and tree.collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(tree.collections)
    if data_dir:
        env["SIROCCOD_DATA"] = str(data_dir)
    env.pop("SIROCCOD_CONFIG", None)
    return env


def start_daemon(tree, server, meter_interval=None):
    work = tree.work
    port = free_port()
    log = work / "siroccod.log"
    env = daemon_env(work / "data", tree)
    if meter_interval is not None:
        env["SIROCCOD_METER_INTERVAL"] = str(meter_interval)
    with open(log, "a") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "siroccod", "serve", "--listen", "127.0.0.1:%d" % port,
                                 "--threads", str(THREADS), *serve_options(server, tree)],
                                env=env, stdout=handle, stderr=subprocess.STDOUT)
    wait_port(port, proc, "siroccod", log)
    return proc, port


def populate(tree, server, machines, metered=0):
    """Users, one machine through the API, then its clones straight into the CMDB (daemon stopped); and
    ``metered`` started machines of another tenant, whose meters the metering scenario samples."""
    proc, port = start_daemon(tree, server)
    try:
        admin = Conn(port, basic("admin", ADMIN_PASSWORD))
        for name, tenant in (("bench", "bench"), ("cycler", "cycle"), ("metered", "metered")):
            admin.json("POST", "/admin/users", {"name": name, "tenant": tenant, "password": PASSWORDS[name]})
        meterer = Conn(port, basic("metered", PASSWORDS["metered"]))
        _h, configs = meterer.json("GET", "/cimi/machineConfigs")
        tiny_href = next(c for c in configs["machineConfigs"] if c["name"] == "tiny")["id"]
        for i in range(metered):
            headers, _doc = meterer.json("POST", "/cimi/machines", {
                "resourceURI": CIMI + "MachineCreate", "name": "metered-%02d" % i,
                "machineTemplate": {"machineConfig": {"href": tiny_href}, "initialState": "STARTED"}})
            meterer.wait_job(headers["CIMI-Job-URI"])
        user = Conn(port, basic("bench", PASSWORDS["bench"]))
        _h, configs = user.json("GET", "/cimi/machineConfigs")
        tiny = next(c for c in configs["machineConfigs"] if c["name"] == "tiny")
        headers, _doc = user.json("POST", "/cimi/machines", {
            "resourceURI": CIMI + "MachineCreate", "name": "bench-0000",
            "machineTemplate": {"machineConfig": {"href": tiny["id"]}, "initialState": "STOPPED"}})
        user.wait_job(headers["CIMI-Job-URI"])
        original = headers["Location"].rsplit("/", 1)[1]
    finally:
        stop(proc)
    # the clones are written by the tree's own store code (a child process: one siroccod per process)
    subprocess.run([sys.executable, __file__, "--clone-cmdb", str(tree.work / "data" / "cmdb.sqlite"),
                    "--clone-original", original, "--machines", str(machines)],
                   env=daemon_env(None, tree), check=True)


def clone_machines(db_path, original, machines):
    from siroccod.store import Resource, Store, new_uuid

    store = Store("sqlite:///%s" % db_path)
    try:
        with store.transaction() as session:
            row = session.get(Resource, original)
            for i in range(1, machines):
                uuid = new_uuid()
                name = "bench-%04d" % i
                clone = Resource(uuid=uuid, tenant_id=row.tenant_id, type="Machine", name=name, host_id=None,
                                 native_id="bench-clone-%d" % i, state=row.state, doc=dict(row.doc, name=name),
                                 private=dict(row.private))
                clone.created = clone.updated = row.created + timedelta(microseconds=i)
                session.add(clone)
    finally:
        store.dispose()


# ---------------------------------------------------------------------------------------------
# the ceiling: a bare Flask app, same documents, same WSGI server
# ---------------------------------------------------------------------------------------------
def ceiling_app(docs):
    from flask import Flask, Response, request

    app = Flask("ceiling")

    def reply(doc, status=200, headers=None):
        return Response(json.dumps(doc, separators=(",", ":")), status=status, headers=headers,
                        mimetype="application/json")

    @app.get("/cimi/machines")
    def listing():
        return reply(docs["expanded"] if request.args.get("$expand") else docs["list"])

    @app.get("/cimi/machines/<uuid>")
    def one(uuid):
        return reply(docs["one"])

    @app.post("/cimi/machines")
    def create():
        request.get_json()
        return reply(docs["created"], 202, {"Location": docs["one"]["id"], "CIMI-Job-URI": docs["job"]["id"]})

    @app.delete("/cimi/machines/<uuid>")
    def delete(uuid):
        return reply(docs["job"], 202, {"CIMI-Job-URI": docs["job"]["id"]})

    return app


def wsgi_serve(app, port, server, threads):
    """Serve ``app`` the way ``siroccod serve`` does (used for the ceiling)."""
    try:
        from siroccod.serving import serve  # this tree's server choice, when it has one
        serve(app, "127.0.0.1", port, threads=threads, server=server)
        return
    except ImportError:
        pass
    from werkzeug.serving import make_server
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    httpd.daemon_threads = True
    httpd.serve_forever()


def start_ceiling(work, docs, server):  # this tree's WSGI server
    path = work / "ceiling-docs.json"
    path.write_text(json.dumps(docs))
    port = free_port()
    log = work / "ceiling.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen([sys.executable, __file__, "--ceiling", str(path), "--port", str(port),
                                 "--server", server], env=daemon_env(None), stdout=handle, stderr=subprocess.STDOUT)
    wait_port(port, proc, "ceiling", log)
    return proc, port


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------
def closed_loop(make_conn, step, seconds, concurrency):
    """``concurrency`` threads repeating ``step(conn)`` for ``seconds``; returns (count/s, latencies)."""
    latencies = []
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker():
        conn = make_conn()
        step(conn)  # warm the connection (and the auth cache)
        mine = []
        start.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            step(conn)
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _client in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, latencies


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def measure(port, auth, scenario, seconds, concurrency, machine_url, tiny_href, ceiling, slow_timeout=10.0):
    def make():
        return Conn(port, auth)

    if scenario in ("list", "expand"):
        url = "/cimi/machines" + (EXPAND if scenario == "expand" else "")

        def step(conn):
            status, _h, payload = conn.call("GET", url)
            assert status == 200 and len(payload) > 1000, status
    elif scenario == "get":
        def step(conn):
            status, _h, _p = conn.call("GET", machine_url)
            assert status == 200, status
    elif scenario == "slow":  # a GET that must be answered within --slow-timeout (else: unanswered)
        unanswered = [0]

        def make():
            return Conn(port, auth, timeout=slow_timeout)

        def step(conn):
            try:
                status, _h, _p = conn.call("GET", machine_url)
                assert status == 200, status
            except TimeoutError:
                unanswered[0] += 1
                conn.reconnect()
        rate, latencies = closed_loop(make, step, seconds, concurrency)
        return rate, latencies, unanswered[0]
    else:
        body = {"resourceURI": CIMI + "MachineCreate", "name": "cycle",
                "machineTemplate": {"machineConfig": {"href": tiny_href}, "initialState": "STOPPED"}}

        def step(conn):
            headers, _doc = conn.json("POST", "/cimi/machines", body)
            if not ceiling:
                conn.wait_job(headers["CIMI-Job-URI"])
            headers, _doc = conn.json("DELETE", headers["Location"])
            if not ceiling:
                conn.wait_job(headers["CIMI-Job-URI"])
    return closed_loop(make, step, seconds, concurrency)


def probe(port, machines):
    """The documents the scenarios use, read from a running daemon; one create->delete cycle done."""
    user = Conn(port, basic("bench", PASSWORDS["bench"]))
    _h, listing = user.json("GET", "/cimi/machines")
    assert listing["count"] == machines, listing["count"]
    machine_url = listing["machines"][0]["id"]
    cycler = Conn(port, basic("cycler", PASSWORDS["cycler"]))
    _h, configs = cycler.json("GET", "/cimi/machineConfigs")
    tiny_href = next(c for c in configs["machineConfigs"] if c["name"] == "tiny")["id"]
    headers, created = cycler.json("POST", "/cimi/machines", {
        "resourceURI": CIMI + "MachineCreate", "name": "cycle",
        "machineTemplate": {"machineConfig": {"href": tiny_href}, "initialState": "STOPPED"}})
    cycler.wait_job(headers["CIMI-Job-URI"])
    headers, job = cycler.json("DELETE", headers["Location"])
    cycler.wait_job(headers["CIMI-Job-URI"])
    docs = {"list": listing, "one": user.json("GET", machine_url)[1], "created": created, "job": job,
            "expanded": user.json("GET", "/cimi/machines" + EXPAND)[1]}
    user.close()
    cycler.close()
    return {"machine_url": machine_url, "tiny_href": tiny_href, "docs": docs}


def ratio(a, b):
    return a / b if b else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="per scenario, per run, per server")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads (keep-alive connections)")
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--server", default="hypercorn",
                        help="WSGI server of both (when siroccod serve has --server)")
    parser.add_argument("--scenarios", default="list,expand,get,cycle,slow,metering")
    parser.add_argument("--metered", type=int, default=20,
                        help="started machines whose meters the metering scenario samples (the three simulated "
                             "hosts hold 28 tiny ones)")
    parser.add_argument("--slow-clients", type=int, default=50, help="slow connections of the slow scenario")
    parser.add_argument("--slow-timeout", type=float, default=10.0,
                        help="slow scenario: a request not answered within this many seconds is unanswered")
    parser.add_argument("--baseline-tree", metavar="PATH",
                        help="a checkout of another commit (e.g. a git worktree): its siroccod serve is measured "
                             "too, alternately with this tree's, and the tables compare the two")
    parser.add_argument("--snapshot", action="store_true",
                        help="measure a copy of this tree's daemon/ and plugins/ made at the start (for a tree "
                             "being edited while the benchmark runs: daemons restart during it)")
    parser.add_argument("--json", action="store_true", help="also print the medians as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--ceiling", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clone-cmdb", help=argparse.SUPPRESS)
    parser.add_argument("--clone-original", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.ceiling:  # child process: the bare Flask ceiling
        sys.path.insert(0, str(ROOT / "daemon"))
        wsgi_serve(ceiling_app(json.loads(Path(args.ceiling).read_text())), args.port, args.server, THREADS)
        return 0
    if args.clone_cmdb:  # child process: the clones, by the tree's own store (on PYTHONPATH)
        clone_machines(args.clone_cmdb, args.clone_original, args.machines)
        return 0

    load_before = loadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-siroccod-"))
    scenarios = args.scenarios.split(",")
    trees = {"siroccod": Tree(ROOT, work, snapshot=args.snapshot)}
    if args.baseline_tree:
        if not (Path(args.baseline_tree) / "daemon" / "siroccod" / "cli.py").is_file():
            raise SystemExit("--baseline-tree %s: no daemon/siroccod/cli.py there" % args.baseline_tree)
        (work / "baseline").mkdir()
        trees["baseline"] = Tree(args.baseline_tree, work / "baseline")
    daemons = {}
    ceiling = None
    try:
        for who, tree in trees.items():
            print("populating%s: 1 machine through the API + %d clones in the CMDB (%s)"
                  % ("" if who == "siroccod" else " the baseline", args.machines - 1, tree.work), file=sys.stderr)
            populate(tree, args.server, args.machines, args.metered if "metering" in scenarios else 0)
        for who, tree in trees.items():
            t0 = time.monotonic()
            proc, port = start_daemon(tree, args.server)
            daemons[who] = {"proc": proc, "port": port, "started": time.monotonic() - t0}
            daemons[who].update(probe(port, args.machines))
        docs = daemons["siroccod"]["docs"]
        ceiling, ceiling_port = start_ceiling(work, docs, args.server)
        print("siroccod up in %.1f s with %d machines; listing %d bytes (collections expanded: %d); %d runs x "
              "%.0f s per scenario, %d client connections; server: %s"
              % (daemons["siroccod"]["started"], args.machines, len(json.dumps(docs["list"])),
                 len(json.dumps(docs["expanded"])), args.runs, args.seconds, args.concurrency, args.server),
              file=sys.stderr)
        if "baseline" in daemons:
            print("baseline %s up in %.1f s; listing %d bytes (collections expanded: %d)"
                  % (trees["baseline"].describe(), daemons["baseline"]["started"],
                     len(json.dumps(daemons["baseline"]["docs"]["list"])),
                     len(json.dumps(daemons["baseline"]["docs"]["expanded"]))), file=sys.stderr)
        results = {s: {who: [] for who in (*daemons, "ceiling")} for s in scenarios if s not in ("slow", "metering")}
        slow_results = {who: {"idle": [], "slow": []} for who in daemons}
        auths = {"list": basic("bench", PASSWORDS["bench"]), "get": basic("bench", PASSWORDS["bench"]),
                 "expand": basic("bench", PASSWORDS["bench"]),
                 "cycle": basic("cycler", PASSWORDS["cycler"]), "slow": basic("bench", PASSWORDS["bench"])}
        for run in range(args.runs):
            order = list(daemons) if run % 2 == 0 else list(daemons)[::-1]  # this tree first, then the baseline
            for scenario in scenarios:
                if scenario == "metering":
                    continue  # afterwards: it starts daemons of its own on this CMDB
                if scenario == "slow":
                    for who in order:
                        d = daemons[who]
                        for phase in ("idle", "slow"):
                            loris = SlowLoris(d["port"], args.slow_clients, auths["slow"]) if phase == "slow" else None
                            try:
                                if loris is not None:
                                    time.sleep(2.0)  # every slow connection reached the server and trickled
                                rate, lat, unanswered = measure(d["port"], auths["slow"], "slow", args.seconds,
                                                                args.concurrency, d["machine_url"], d["tiny_href"],
                                                                False, args.slow_timeout)
                            finally:
                                if loris is not None:
                                    loris.close()
                            slow_results[who][phase].append(
                                (rate, pct(lat, 50) * 1000, pct(lat, 99) * 1000, unanswered))
                    continue
                for who in (*order, "ceiling"):
                    d = daemons.get(who, daemons["siroccod"])
                    p = ceiling_port if who == "ceiling" else d["port"]
                    rate, lat = measure(p, auths[scenario], scenario, args.seconds, args.concurrency,
                                        d["machine_url"], d["tiny_href"], who == "ceiling")
                    results[scenario][who].append((rate, pct(lat, 50) * 1000, pct(lat, 99) * 1000))
            print("run %d/%d done" % (run + 1, args.runs), file=sys.stderr)
    finally:
        for d in daemons.values():
            stop(d["proc"])
        if ceiling is not None:
            stop(ceiling)
    metering = {who: {"off": [], "on": []} for who in daemons}
    try:
        for run in range(args.runs if "metering" in scenarios else 0):
            for who in (list(daemons) if run % 2 == 0 else list(daemons)[::-1]):
                for phase, interval in (("off", 0), ("on", 1)):
                    proc, mport = start_daemon(trees[who], args.server, meter_interval=interval)
                    try:
                        time.sleep(3.0)  # on: sampling rounds under way
                        rate, lat = measure(mport, auths["list"], "list", args.seconds, args.concurrency,
                                            daemons[who]["machine_url"], daemons[who]["tiny_href"], False)
                    finally:
                        stop(proc)
                    metering[who][phase].append((rate, pct(lat, 50) * 1000, pct(lat, 99) * 1000))
            print("metering run %d/%d done" % (run + 1, args.runs), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    baseline = "baseline" in daemons
    rev = trees["baseline"].describe().rsplit(" ", 1)[1].strip("()") if baseline else ""
    names = {"list": "list %d machines" % args.machines, "get": "get one machine",
             "cycle": "create->delete cycle", "expand": "list %d machines, collections expanded" % args.machines}
    unit = {"list": "req/s", "get": "req/s", "cycle": "cycles/s", "expand": "req/s"}
    print()
    if baseline:
        print("| scenario | siroccod | p50 ms | p99 ms | baseline %s | p50 ms | p99 ms | siroccod / baseline "
              "| ceiling (bare Flask) | p50 ms | p99 ms | throughput vs ceiling |" % rev)
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    else:
        print("| scenario | siroccod | p50 ms | p99 ms | ceiling (bare Flask) | p50 ms | p99 ms "
              "| throughput vs ceiling |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    medians = {}
    for scenario in results:
        med = {who: tuple(statistics.median(r[i] for r in runs) for i in range(3))
               for who, runs in results[scenario].items()}
        medians[scenario] = med
        s, c = med["siroccod"], med["ceiling"]
        cells = ["%.0f %s" % (s[0], unit[scenario]), "%.1f" % s[1], "%.1f" % s[2]]
        if baseline:
            b = med["baseline"]
            cells += ["%.0f %s" % (b[0], unit[scenario]), "%.1f" % b[1], "%.1f" % b[2],
                      "%.2f" % ratio(s[0], b[0])]
        cells += ["%.0f %s" % (c[0], unit[scenario]), "%.1f" % c[1], "%.1f" % c[2],
                  "%.0f %%" % (100.0 * ratio(s[0], c[0]))]
        print("| %s | %s |" % (names[scenario], " | ".join(cells)))
    labels = {"siroccod": "%d client connections" % args.concurrency if not baseline else "siroccod (this tree)",
              "baseline": "baseline %s" % rev}
    if "slow" in scenarios:
        slow_medians = {who: {phase: {k: statistics.median(r[i] for r in slow_results[who][phase])
                                      for i, k in enumerate(("rate", "p50", "p99", "unanswered"))}
                              for phase in ("idle", "slow")} for who in daemons}
        medians["slow"] = dict(slow_medians["siroccod"])
        if baseline:
            medians["slow"]["baseline"] = slow_medians["baseline"]
        n = args.slow_clients
        print()
        print("| get one machine (siroccod, %s) | idle | p50 ms | p99 ms | under %d slow clients | p50 ms | p99 ms "
              "| p99 under %d slow / p99 idle | unanswered within %g s |" % (args.server, n, n, args.slow_timeout))
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for who in daemons:
            idle, slow = slow_medians[who]["idle"], slow_medians[who]["slow"]
            print("| %s | %.0f req/s | %.1f | %.1f | %.0f req/s | %.1f | %.1f | %.2f | %d |" % (
                labels[who], idle["rate"], idle["p50"], idle["p99"], slow["rate"], slow["p50"], slow["p99"],
                ratio(slow["p99"], idle["p99"]), slow["unanswered"]))
        if baseline:
            cur, base = slow_medians["siroccod"], slow_medians["baseline"]
            print("| siroccod / baseline | %s | %.2f | %s |" % (" | ".join(
                "%.2f" % ratio(cur[phase][k], base[phase][k])
                for phase in ("idle", "slow") for k in ("rate", "p50", "p99")),
                ratio(ratio(cur["slow"]["p99"], cur["idle"]["p99"]), ratio(base["slow"]["p99"], base["idle"]["p99"])),
                "%d vs %d" % (cur["slow"]["unanswered"], base["slow"]["unanswered"])))
    if metering["siroccod"]["on"]:
        meter_medians = {who: {phase: {k: statistics.median(r[i] for r in metering[who][phase])
                                       for i, k in enumerate(("rate", "p50", "p99"))}
                               for phase in ("off", "on")} for who in daemons}
        medians["metering"] = dict(meter_medians["siroccod"])
        if baseline:
            medians["metering"]["baseline"] = meter_medians["baseline"]
        print()
        print("| list %d machines (siroccod) | metering off | p50 ms | p99 ms | on: every 1 s, %d machines | p50 ms "
              "| p99 ms | on / off |" % (args.machines, args.metered))
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for who in daemons:
            off, on = meter_medians[who]["off"], meter_medians[who]["on"]
            print("| %s | %.0f req/s | %.1f | %.1f | %.0f req/s | %.1f | %.1f | %.2f |" % (
                labels[who], off["rate"], off["p50"], off["p99"], on["rate"], on["p50"], on["p99"],
                ratio(on["rate"], off["rate"])))
        if baseline:
            cur, base = meter_medians["siroccod"], meter_medians["baseline"]
            print("| siroccod / baseline | %s | %.2f |" % (" | ".join(
                "%.2f" % ratio(cur[phase][k], base[phase][k])
                for phase in ("off", "on") for k in ("rate", "p50", "p99")),
                ratio(ratio(cur["on"]["rate"], cur["off"]["rate"]), ratio(base["on"]["rate"], base["off"]["rate"]))))
    print()
    print("medians of %d runs of %.0f s; %d client connections; WSGI server of both: %s; %d request threads; "
          "load average before/after: %s / %s (%d cores)"
          % (args.runs, args.seconds, args.concurrency, args.server, THREADS, load_before, loadavg(), os.cpu_count()))
    if baseline or args.snapshot:
        print("siroccod: this tree, %s%s" % (trees["siroccod"].describe(), (
            "; baseline: %s; the two alternate within each run (and swap order each run)"
            % trees["baseline"].describe()) if baseline else ""))
    if args.json:
        print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
