"""The HTTP server of ``siroccod serve``: a slow client costs a buffer, not a request thread.

``hypercorn`` (the default): connections are read and written by one asyncio event loop (HTTP/1.1
parsed by h11). A request reaches one of the ``--threads`` WSGI threads only once its head and its
whole body are in memory, and the thread hands its whole reply back to the loop, which writes it
out; so a client that sends or reads slowly, or never finishes, holds a few kilobytes and one of
``max_connections`` slots, never a thread. What a client may send is bounded (:class:`Limits`):
connections open at once, the time to send a request head (from the connection's opening or its
previous reply; also how long an idle keep-alive connection stays) and a body, the sizes of the
request target and the head, the number of header fields, the body (``config.max_body``); and the
time a client may take to read its reply. TLS: 1.2 at least, ECDHE with AES-GCM or ChaCha20
(TLS 1.3's own suites), HTTP/1.1 only (HTTP/2, which a cleartext client may still ask for, is
answered 505 without running the app: its streams would let one connection queue requests without
bound).

``cheroot``, ``waitress`` and ``werkzeug`` remain available with ``--server`` and are NOT
slowloris-safe: cheroot and werkzeug give a connection a thread while its request is read (a client
that trickles its headers holds one for as long as it likes: 8 such clients stall cheroot's 8
threads); waitress buffers requests like the default but has no TLS and no deadline on a request
(a trickling client keeps one of its connection slots until it stops). Every choice serves the one
Flask app in this process, beside the job worker threads, so the CMDB, the host connections and
the caches are shared.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import unquote_to_bytes

SERVERS = ("hypercorn", "cheroot", "waitress", "werkzeug")
NOT_SLOWLORIS_SAFE = ("cheroot", "waitress", "werkzeug")
GRACE = 3.0  # seconds the requests under way get to finish once a stop is asked for
log = logging.getLogger("siroccod.http")


@dataclass(frozen=True)
class Limits:
    """What a client may send, and how long it may take (the default server applies all of them)."""

    max_connections: int = 500  # open at once; beyond, a new connection is closed as soon as accepted
    header_timeout: float = 10.0  # s to send a complete head, from the opening or the previous reply
    body_timeout: float = 30.0  # s to send the body once the head is in, and to take the reply
    max_request_line: int = 8192  # bytes of the request target (path and query): 414 beyond
    max_header_size: int = 16384  # bytes of the request line and header fields together: 431 beyond
    max_headers: int = 100  # header fields: 431 beyond
    max_body: int = 1024 * 1024  # bytes (config.max_body): the app answers 413 beyond, unread


def tls_context(cert, key):
    """The server's TLS context: TLS 1.2 at least, forward-secret AEAD suites, HTTP/1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")  # TLS 1.2's; TLS 1.3 has its own, all AEAD
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    return context


# ---------------------------------------------------------------------------------------------
# hypercorn: the connection limit, and the WSGI app behind a buffering ASGI adapter
# ---------------------------------------------------------------------------------------------
class _Connection(socket.socket):
    """An accepted connection that counts itself out of its listener's open connections on close."""

    listener = None

    def close(self):
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.connections.discard(self)
        super().close()


class _Listener(socket.socket):
    """The listening socket. asyncio accepts through ``accept()`` (in the event loop's thread): beyond
    ``limit`` connections open at once, a new one is closed as soon as accepted, which costs nothing
    and leaves the backlog moving (the client sees its connection closed, and may retry)."""

    def __init__(self, family, limit):
        super().__init__(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.limit = limit
        self.connections = set()  # open ones
        self.refused = 0
        self._reported = 0.0

    def accept(self):
        while True:
            fd, addr = self._accept()  # BlockingIOError when none is waiting: asyncio expects it
            if len(self.connections) < self.limit:
                break
            socket.socket(self.family, self.type, self.proto, fileno=fd).close()
            self.refused += 1
            now = time.monotonic()
            if now - self._reported > 10:
                self._reported = now
                log.warning("%d connections open (the limit): new ones closed (%d so far)", self.limit,
                            self.refused)
        conn = _Connection(self.family, self.type, self.proto, fileno=fd)
        conn.listener = self
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a reply's head and body: no 40 ms wait
        except OSError:
            pass  # already reset: the transport finds out
        self.connections.add(conn)
        return conn, addr

    def abort_connections(self):
        """Shut every open connection down: their transports see the end and close (a TLS one no
        longer waits for its peer's close_notify, up to 30 s in asyncio)."""
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _listen(host, port, limit, backlog=1024):
    """Bound and listening now, so that errors (address in use, no such address) come before serving."""
    family, _type, _proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                               flags=socket.AI_PASSIVE)[0]
    sock = _Listener(family, limit)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _BufferedWSGI:
    """An ASGI app running a WSGI app in a thread pool, on whole requests only.

    The event loop reads the request body (up to ``max_body`` + 1 bytes, within ``body_timeout``)
    before a thread is involved; the thread runs the app and collects its whole reply; the loop
    sends it (the client must take it within ``body_timeout``). Heads beyond the limits get 414 or
    431 without the app; a body declared larger than ``max_body`` is not read: the app is called
    with its Content-Length and answers 413 in its own format (Flask's MAX_CONTENT_LENGTH)."""

    def __init__(self, app, executor, limits):
        self.app = app
        self.executor = executor
        self.limits = limits
        self._drains = set()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:  # a websocket: refused (hypercorn answers 403)
            await send({"type": "websocket.close"})

    @staticmethod
    async def _lifespan(receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send):
        limits = self.limits
        if scope.get("http_version") not in ("1.0", "1.1"):
            return await self._refuse(send, receive, 505, "HTTP/1.1 only", close=False)
        target = len(scope["raw_path"]) + (len(scope["query_string"]) + 1 if scope["query_string"] else 0)
        if target > limits.max_request_line:
            return await self._refuse(send, receive, 414,
                                      "request target longer than %d bytes" % limits.max_request_line)
        headers = scope["headers"]
        if len(headers) > limits.max_headers:
            return await self._refuse(send, receive, 431, "more than %d header fields" % limits.max_headers)
        if target + sum(len(name) + len(value) + 4 for name, value in headers) > limits.max_header_size:
            return await self._refuse(send, receive, 431, "request head larger than %d bytes" % limits.max_header_size)
        declared = chunked = None
        for name, value in headers:
            if name == b"content-length":
                declared = int(value)  # h11 checked it: digits, one value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared > limits.max_body:
            body, complete = b"", False  # not read: the app answers 413 before it would read it
        else:
            try:
                async with asyncio.timeout(limits.body_timeout):
                    body, complete = await self._read_body(receive)
            except TimeoutError:
                return await self._refuse(send, receive, 408, "request body not received within %g s"
                                          % limits.body_timeout)
            if body is None:
                return  # the client went away
            if chunked:
                declared = len(body)  # the app sees a body of known length (beyond max_body: its 413)
        if not complete:
            self._drain(receive)
        environ = self._environ(scope, body, declared)
        loop = asyncio.get_running_loop()
        try:
            status, response_headers, chunks = await loop.run_in_executor(self.executor, self._call, environ)
        except Exception:
            log.exception("%s %s: the WSGI application failed", scope["method"], scope["path"])
            return await self._refuse(send, receive, 500, "internal server error")
        raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response_headers]
        await self._reply(send, int(status.split(" ", 1)[0]), raw_headers, b"".join(chunks), scope["method"])

    async def _read_body(self, receive):
        """(body, complete), or (None, True) when the client went away; stops past ``max_body``."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, True
            body += message.get("body", b"")
            if len(body) > self.limits.max_body:
                return bytes(body), False
            if not message.get("more_body"):
                return bytes(body), True

    def _drain(self, receive):
        """Drop what is left of a request not read to its end, until its stream closes: hypercorn's queue
        to the app is bounded, and a full one would hold the connection open after the reply."""
        async def drain():
            while (await receive())["type"] == "http.request":
                pass

        task = asyncio.get_running_loop().create_task(drain())
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    @staticmethod
    def _environ(scope, body, content_length):
        server = scope.get("server") or ("localhost", 80)
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(scope["raw_path"]).decode("latin-1"),
            "QUERY_STRING": scope["query_string"].decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": "HTTP/%s" % scope["http_version"],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope["scheme"],
            "wsgi.input": BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if content_length is not None:
            environ["CONTENT_LENGTH"] = str(content_length)
        if scope.get("client"):
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = scope["client"][0], str(scope["client"][1])
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            if "_" in name or name in ("content-length", "transfer-encoding"):
                continue  # X_Forwarded_For is not X-Forwarded-For (as nginx, gunicorn); the body is whole
            key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            environ[key] = environ[key] + "," + value if key in environ else value
        return environ

    def _call(self, environ):
        """In a request thread: the app's status, headers and whole body."""
        started = []
        chunks = []

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(chunk for chunk in result if chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("the WSGI application did not call start_response")
        return started[0], started[1], chunks

    async def _refuse(self, send, receive, status, text, close=True):
        """A short plain-text reply without the app; what is left of the request is dropped."""
        self._drain(receive)
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if close:
            headers.append((b"connection", b"close"))
        await self._reply(send, status, headers, (text + "\n").encode(), "GET")

    async def _reply(self, send, status, headers, body, method):
        names = {name for name, _value in headers}
        if b"server" not in names:
            headers.append((b"server", b"siroccod"))
        if b"content-length" not in names and method != "HEAD" and status >= 200 and status not in (204, 304):
            headers.append((b"content-length", b"%d" % len(body)))
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
        except TimeoutError:
            log.debug("a reply not taken within %g s: connection closed", self.limits.body_timeout)
        except (OSError, RuntimeError) as exc:  # the client went away meanwhile
            log.debug("reply not sent: %r", exc)


def _hypercorn_config(listener, tls, limits):
    from hypercorn.config import Config, Sockets

    class _Config(Config):
        """Our listening socket (bound already) and our TLS context."""

        def create_sockets(self):
            return Sockets(secure_sockets=[listener] if tls else [], insecure_sockets=[] if tls else [listener],
                           quic_sockets=[])

        def create_ssl_context(self):
            return tls

    config = _Config()
    if tls is not None:
        config.certfile = config.keyfile = "-"  # hypercorn serves TLS when both are set: the context is ours
    config.keep_alive_timeout = limits.header_timeout  # idle (no request in progress) since opening or reply
    config.ssl_handshake_timeout = limits.header_timeout
    config.h11_max_incomplete_size = limits.max_header_size
    config.h2_max_concurrent_streams = 1  # HTTP/2 is answered 505 (see _BufferedWSGI): keep it cheap
    config.h2_max_header_list_size = limits.max_header_size
    config.keep_alive_max_requests = 100000
    config.include_server_header = False  # "server: siroccod" comes with every reply
    config.errorlog = log
    config.accesslog = None
    config.graceful_timeout = 10.0  # after GRACE, Server._serve shuts connections down: never reached
    return config


class Server:
    """``serve_forever()`` until ``interrupt()`` (from a signal handler), ``shutdown()`` or KeyboardInterrupt."""

    def __init__(self, app, host, port, threads=8, server="hypercorn", tls=None, limits=None):
        if server not in SERVERS:
            raise ValueError("unknown server %r: one of %s" % (server, ", ".join(SERVERS)))
        if server == "waitress" and tls:
            raise ValueError("waitress does not do TLS: use hypercorn (the default)")
        self.name = server
        self.limits = limits = limits or Limits()
        context = tls_context(*tls) if tls else None  # a missing or bad certificate: an error now
        if server == "hypercorn":
            _require("hypercorn", "hypercorn")
            self._listener = _listen(host, port, limits.max_connections)
            self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="siroccod-http")
            self._asgi = _BufferedWSGI(app, self._executor, limits)
            self._config = _hypercorn_config(self._listener, context, limits)
            self._loop = self._stop = None
            self._stopping = False
        elif server == "cheroot":
            _require("cheroot", "cheroot")
            self._server = _cheroot_server_class()((host, port), app, numthreads=threads, server_name="siroccod")
            self._server.max_request_header_size = limits.max_header_size
            if context is not None:
                from cheroot.ssl.builtin import BuiltinSSLAdapter
                self._server.ssl_adapter = BuiltinSSLAdapter(tls[0], tls[1])
                self._server.ssl_adapter.context = context
            self._server.prepare()  # binds now: errors (port in use) surface before serving
        elif server == "waitress":
            _require("waitress", "waitress")
            from waitress.server import create_server
            self._server = create_server(app, host=host, port=port, threads=threads, ident="siroccod",
                                         clear_untrusted_proxy_headers=True, connection_limit=limits.max_connections,
                                         max_request_header_size=limits.max_header_size)
        else:
            from werkzeug.serving import make_server
            self._server = make_server(host, port, app, threaded=True, ssl_context=context)
            self._server.daemon_threads = True

    def serve_forever(self):
        if self.name == "hypercorn":
            try:
                asyncio.run(self._serve())
            finally:
                self._executor.shutdown(wait=True, cancel_futures=True)
        elif self.name == "cheroot":
            self._server.serve()
        elif self.name == "waitress":
            self._server.run()
        else:
            self._server.serve_forever()

    async def _serve(self):
        from hypercorn.asyncio import serve

        self._stop = asyncio.Event()
        if self._stopping:
            self._stop.set()
        self._loop = loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._stop.set)  # Ctrl-C: the same graceful stop
        serving = loop.create_task(serve(self._asgi, self._config, shutdown_trigger=self._stop.wait, mode="asgi"))
        try:
            stopping = loop.create_task(self._stop.wait())
            await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            # hypercorn stops accepting and closes idle connections, but waits for every connection to
            # close, a TLS one for its peer's close_notify (asyncio: up to 30 s), before cancelling them
            # after graceful_timeout (which Python 3.11's streams log as errors): requests under way get
            # GRACE seconds to finish, then what is left is shut down under them
            await asyncio.wait((serving,), timeout=GRACE)
            if not serving.done():
                self._listener.abort_connections()
                await asyncio.wait((serving,), timeout=self._config.graceful_timeout)
            if not serving.done():
                log.warning("connections still open after the stop: left behind")
                serving.cancel()
            else:
                serving.result()
        finally:
            self._loop = None

    def interrupt(self):
        """From a signal handler: stop serving (hypercorn finishes the requests under way, for a few
        seconds at most); the other servers are interrupted with KeyboardInterrupt."""
        if self.name != "hypercorn":
            raise KeyboardInterrupt
        self._stopping = True
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._stop.set)

    def shutdown(self):
        if self.name == "hypercorn":
            self.interrupt()  # when serving: stops (and asyncio closes the listening socket)
            if self._loop is None:
                self._listener.close()
                self._executor.shutdown(wait=False, cancel_futures=True)
        elif self.name == "cheroot":
            self._server.stop()
        elif self.name == "waitress":
            self._server.close()
        else:
            self._server.server_close()


def _require(module, package):
    try:
        __import__(module)
    except ImportError:
        raise ValueError("--server %s needs %s: pip install %s" % (module, package, package)) from None


def _cheroot_server_class():
    """cheroot's wsgi.Server whose plain-TCP connections write with ``socket.sendall``.

    cheroot's own writer (a pure-Python buffered writer) copies what is left of a reply into a new
    bytes object after every partial send: a 1.5 MB listing cost ~10 ms more than under werkzeug.
    TLS connections keep cheroot's writer (ssl sockets)."""
    from cheroot import server as chserver
    from cheroot import wsgi
    from cheroot.makefile import MakeFile, StreamWriter

    class SendallWriter(StreamWriter):
        def write(self, val, *args, **kwargs):
            if isinstance(val, str):
                raise TypeError("can't write str to binary stream")
            with self._write_lock:
                self._checkClosed()
                if self._write_buf:
                    self._flush_unlocked()
                self.raw._sock.sendall(val)
                self.bytes_written += len(val)
                return len(val)

    class Connection(chserver.HTTPConnection):
        def __init__(self, server, sock, makefile=MakeFile):
            super().__init__(server, sock, makefile)
            if makefile is MakeFile:
                self.wfile = SendallWriter(sock, "wb", self.wbufsize)

    class Server(wsgi.Server):
        ConnectionClass = Connection

    return Server


def serve(app, host, port, threads=8, server="hypercorn", tls=None, limits=None):
    """Serve ``app`` until interrupted (the benchmark serves its bare Flask ceiling with this)."""
    srv = Server(app, host, port, threads=threads, server=server, tls=tls, limits=limits)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: srv.interrupt())
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.shutdown()
