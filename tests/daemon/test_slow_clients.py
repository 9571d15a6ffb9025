"""Slow clients cost `siroccod serve` a buffer, not a request thread; what a client may send is bounded.

Each test starts `siroccod serve` as a real process (the embedded default, a temporary data
directory) and speaks to it over loopback sockets, plain and TLS. The slowloris tests assert
behaviour, not latency: legitimate requests are answered while 50 connections that never finish
their request (a partial request line, partial headers, a body short of its Content-Length, nothing
at all) still hang on, trickling a byte a second; the bound on the legitimate requests (20 s) only
keeps a failing run short.
"""

from __future__ import annotations

import base64
import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests
from test_daemon_serve import start, stop

ADMIN = ("admin", "serve-admin-pw")
AUTH = b"Authorization: Basic %s\r\n" % base64.b64encode(b"admin:serve-admin-pw")
SLOW = 50
ANSWER_WITHIN = 20  # seconds: bounds a failing run; the assertion is that an answer comes at all
# the header/body timeouts well beyond the test's duration: what answers is buffering, not a timeout
PATIENT = ("--header-timeout", "120", "--body-timeout", "120")

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def tls_env(cert):
    return {"SIROCCOD_TLS_CERT": str(cert[0]), "SIROCCOD_TLS_KEY": str(cert[1])}


class SlowClients:
    """``n`` connections that never finish a request, each sent one more byte every second.

    Kinds, in turn: a request line cut short, headers cut short, complete headers (with credentials,
    so that the app would read the body) and a body short of its Content-Length, and (opened last)
    a connection that sends nothing, over TLS not even its handshake."""

    KINDS = ("request-line", "headers", "body", "silent")

    def __init__(self, port, n, tls=None):
        self.port, self.tls = port, tls
        self.socks = []  # (kind, socket, trickled byte)
        self.closed = set()
        self.received = {}  # what answered_or_closed() read of a reply
        self._lock = threading.Lock()  # an ssl socket is not to be read and written by two threads at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()  # trickling as soon as each connection is open
        kinds = [self.KINDS[i % len(self.KINDS)] for i in range(n)]
        for kind in sorted(kinds, key=lambda k: k == "silent"):
            opened = self._open(kind)
            with self._lock:
                self.socks.append(opened)

    def _open(self, kind):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        if self.tls is not None and kind != "silent":
            sock = self.tls.wrap_socket(sock, server_hostname="127.0.0.1")
        host = "Host: 127.0.0.1:%d\r\n" % self.port
        start, byte = {
            "request-line": ("GET /cimi/cloudEntryPoint?slow=", b"a"),
            "headers": ("GET /cimi/openapi.json HTTP/1.1\r\n%sX-Slow: " % host, b"a"),
            "body": ("POST /cimi/machines HTTP/1.1\r\n%s%sContent-Type: application/json\r\n"
                     "Content-Length: 65536\r\n\r\n{" % (host, AUTH.decode()), b" "),  # authenticated: read
            "silent": ("", b""),
        }[kind]
        if start:
            sock.sendall(start.encode())
        return kind, sock, byte

    def _trickle(self):
        while not self._stop.wait(1.0):
            with self._lock:
                for i, (_kind, sock, byte) in enumerate(self.socks):
                    if byte and i not in self.closed:
                        try:
                            sock.sendall(byte)
                        except OSError:
                            self.closed.add(i)

    def answered_or_closed(self):
        """The connections the server answered (a reply) or closed (EOF, reset, a TLS alert).

        Read without blocking: over TLS 1.3 the server's session tickets arrive after the handshake
        and make the socket readable without being an answer."""
        gone = []
        with self._lock:
            for i, (kind, sock, _byte) in enumerate(self.socks):
                if i in self.closed:
                    gone.append("%d:%s closed" % (i, kind))
                    continue
                sock.setblocking(False)
                try:
                    data = sock.recv(1)
                except (BlockingIOError, ssl.SSLWantReadError):
                    continue
                except OSError as exc:
                    data = exc
                finally:
                    sock.settimeout(30)
                if isinstance(data, bytes) and data:
                    self.received[i] = data
                gone.append("%d:%s %s" % (i, kind, "answered" if isinstance(data, bytes) and data else "closed"))
        return gone

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for _kind, sock, _byte in self.socks:
            sock.close()


def client_context(cert):
    return ssl.create_default_context(cafile=str(cert[0]))  # the certificate names IP 127.0.0.1


def legitimate_requests(base, verify):
    """GET /cimi/openapi.json without credentials, GET /cimi/cloudEntryPoint as admin, on new connections."""
    for path, auth in (("/cimi/openapi.json", None), ("/cimi/cloudEntryPoint", ADMIN)):
        try:
            r = requests.get(base + path, auth=auth, verify=verify, timeout=ANSWER_WITHIN)
        except requests.RequestException as exc:
            raise AssertionError("GET %s not answered while %d slow clients hang on: %r" % (path, SLOW, exc)) from None
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert r.json()


def run_slowloris(tmp_path, tls_cert=None):
    env = tls_env(tls_cert) if tls_cert else None
    proc, port = start(tmp_path, *PATIENT, env_extra=env)
    scheme = "https" if tls_cert else "http"
    base = "%s://127.0.0.1:%d" % (scheme, port)
    verify = str(tls_cert[0]) if tls_cert else True
    slow = None
    try:
        legitimate_requests(base, verify)  # up and answering before
        slow = SlowClients(port, SLOW, client_context(tls_cert) if tls_cert else None)
        time.sleep(2.5)  # every slow connection reached the server and trickled twice
        legitimate_requests(base, verify)
        gone = slow.answered_or_closed()
        assert gone == [], "the slow connections must still be open when the answers come: %s" % gone
    finally:
        if slow is not None:
            slow.close()
        stop(proc)
    assert proc.returncode == 0
    assert "Traceback" not in (tmp_path / "siroccod.log").read_text()


def test_slow_clients_do_not_stall_http(tmp_path):
    run_slowloris(tmp_path)


@needs_openssl
def test_slow_clients_do_not_stall_https(tmp_path, cert):
    run_slowloris(tmp_path, cert)


def exchange(port, data, ctx=None, timeout=15):
    """Send ``data`` on a new connection; what the server sends until it closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx else raw
        if data:
            sock.sendall(data)
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            reply += chunk
        return reply


def status_of(reply):
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def test_header_body_and_idle_timeouts_close_slow_clients(tmp_path):
    proc, port = start(tmp_path, "--header-timeout", "2", "--body-timeout", "2")
    slow = None
    try:
        slow = SlowClients(port, 8)
        t0 = time.monotonic()
        keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=15)  # one request, then idle
        keep_alive.request("GET", "/cimi/openapi.json")
        assert keep_alive.getresponse().read() and keep_alive.sock is not None
        gone = []
        while time.monotonic() - t0 < 15 and len(gone) < 8:
            time.sleep(0.5)
            gone = slow.answered_or_closed()
        assert len(gone) == 8, gone  # each dropped by the server, trickling or silent
        assert all("closed" in g for g in gone if "body" not in g), gone
        assert all("answered" in g for g in gone if "body" in g), gone  # 408 to a body that did not come
        i, body_sock = next((i, sock) for i, (kind, sock, _byte) in enumerate(slow.socks) if kind == "body")
        body_sock.settimeout(5)
        assert status_of(slow.received[i] + body_sock.recv(4096)) == 408
        assert keep_alive.sock.recv(1) == b"", "an idle keep-alive connection is closed after the header timeout"
        keep_alive.close()
        assert requests.get("http://127.0.0.1:%d/cimi/openapi.json" % port, timeout=10).status_code == 200
    finally:
        if slow is not None:
            slow.close()
        stop(proc)
    assert proc.returncode == 0


def test_connection_limit(tmp_path):
    proc, port = start(tmp_path, "--max-connections", "5", "--header-timeout", "4")
    silent = []
    try:
        url = "http://127.0.0.1:%d/cimi/openapi.json" % port
        assert requests.get(url, timeout=10).status_code == 200
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _n in range(5)]
        time.sleep(0.5)
        refused = exchange(port, b"GET /cimi/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=3)
        assert refused == b"", "a connection beyond the limit is closed at once, unanswered"
        for sock in silent:  # the header timeout frees the slots
            assert sock.recv(1) == b""
        reply = exchange(port, b"GET /cimi/openapi.json HTTP/1.0\r\n\r\n", timeout=10)
        assert status_of(reply) == 200
        silent.append(socket.create_connection(("127.0.0.1", port), timeout=10))  # open at the stop
    finally:
        stop(proc)  # a clean, prompt stop all the same
        for sock in silent:
            sock.close()
    assert proc.returncode == 0
    log = (tmp_path / "siroccod.log").read_text()
    assert "connections open (the limit)" in log and "siroccod: stopped" in log and "Traceback" not in log


def test_oversized_or_unfinished_requests_get_4xx(tmp_path):
    proc, port = start(tmp_path)
    try:
        def get(target="/cimi/openapi.json", headers=""):
            return exchange(port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sConnection: close\r\n\r\n"
                                   % (target, port, headers)).encode())
        assert status_of(get()) == 200
        assert status_of(get("/cimi/openapi.json?" + "a" * 9000)) == 414
        assert status_of(get(headers="X-Big: %s\r\n" % ("b" * 20000))) == 431
        assert status_of(get(headers="X-Big: %s\r\n" % ("b" * 15000) + "X-Big2: %s\r\n" % ("c" * 15000))) == 431
        assert status_of(get(headers="".join("X-N%d: v\r\n" % i for i in range(101)))) == 431
        assert status_of(get(headers="".join("X-N%d: v\r\n" % i for i in range(90)))) == 200
        # a body declared beyond max_body: 413 (the CIMI error) at once, the body never read
        reply = exchange(port, b"POST /cimi/machines HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"%sContent-Length: 50000000\r\n\r\n{" % AUTH, timeout=10)
        assert status_of(reply) == 413 and b"resourceURI" in reply
        # a chunked body growing beyond max_body: 413 too
        chunk = b"x" * 65536
        data = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _n in range(20)) + b"0\r\n\r\n"
        reply = exchange(port, b"POST /cimi/machines HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"%sConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" % AUTH + data, timeout=10)
        assert status_of(reply) == 413
        # a small chunked body is read whole and handed over with its length
        data = b'{"resourceURI": "broken'
        reply = exchange(port, b"POST /cimi/machines HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"%sConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                               % (AUTH, len(data), data))
        assert status_of(reply) == 400 and b"not valid JSON" in reply
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert "Traceback" not in (tmp_path / "siroccod.log").read_text()


def _tls11_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 allows TLS 1.0/1.1 only at level 0
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def _handshake(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        return sock.version()


@needs_openssl
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_at_least(tmp_path, cert):
    # the client below does speak TLS 1.1: a server that allows it agrees (else the test proves nothing)
    control = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    control.set_ciphers("DEFAULT:@SECLEVEL=0")
    control.minimum_version = ssl.TLSVersion.TLSv1_1
    control.load_cert_chain(str(cert[0]), str(cert[1]))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        done = []

        def accept_one():
            conn, _addr = listener.accept()
            with conn:
                try:
                    with control.wrap_socket(conn, server_side=True) as tls:
                        done.append(tls.version())
                except ssl.SSLError as exc:
                    done.append(exc)
        thread = threading.Thread(target=accept_one)
        thread.start()
        try:
            client_version = _handshake(listener.getsockname()[1], _tls11_client())
        except ssl.SSLError as exc:
            client_version = exc
        thread.join(10)
    if client_version != "TLSv1.1":
        pytest.skip("this OpenSSL does not speak TLS 1.1 at all: %r" % (client_version,))

    proc, port = start(tmp_path, env_extra=tls_env(cert))
    try:
        with pytest.raises(ssl.SSLError):
            _handshake(port, _tls11_client())
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            ctx = client_context(cert)
            ctx.minimum_version = ctx.maximum_version = version
            assert _handshake(port, ctx) == name
        r = requests.get("https://127.0.0.1:%d/cimi/openapi.json" % port, verify=str(cert[0]), timeout=10)
        assert r.status_code == 200 and r.headers["Server"] == "siroccod"
    finally:
        stop(proc)
    assert proc.returncode == 0
