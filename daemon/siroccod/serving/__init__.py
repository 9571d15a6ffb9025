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

Each server is imported by its loader (``SERVERS``) when chosen: the one place each is imported, as
the collection's connector registry does; hypercorn's front (the connection limit, the buffering
adapter) is ``serving.buffered``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

from siroccod.serving.buffered import BufferedWSGI, listen

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
# The servers: each imported by its loader, only when chosen (hypercorn, cheroot and waitress are
# optional dependencies; werkzeug comes with Flask). A loader returns what Server uses of it.
# ---------------------------------------------------------------------------------------------
def _hypercorn():
    from hypercorn.asyncio import serve
    from hypercorn.config import Config, Sockets
    return SimpleNamespace(serve=serve, Config=Config, Sockets=Sockets)


def _cheroot():
    from cheroot import server, wsgi
    from cheroot.makefile import MakeFile, StreamWriter
    from cheroot.ssl.builtin import BuiltinSSLAdapter
    return SimpleNamespace(server=server, wsgi=wsgi, MakeFile=MakeFile, StreamWriter=StreamWriter,
                           BuiltinSSLAdapter=BuiltinSSLAdapter)


def _waitress():
    from waitress.server import create_server
    return SimpleNamespace(create_server=create_server)


def _werkzeug():
    from werkzeug.serving import make_server
    return SimpleNamespace(make_server=make_server)


# One entry per ``--server`` value: the loader of what it needs (hypercorn, the first, is the default).
SERVERS = {"hypercorn": _hypercorn, "cheroot": _cheroot, "waitress": _waitress, "werkzeug": _werkzeug}


def _load(server):
    """What ``server`` needs, imported now: a missing package is an error before serving."""
    try:
        return SERVERS[server]()
    except ImportError:
        raise ValueError("--server %s needs %s: pip install %s" % (server, server, server)) from None


def _hypercorn_config(lib, listener, tls, limits):
    class _Config(lib.Config):
        """Our listening socket (bound already) and our TLS context."""

        def create_sockets(self):
            return lib.Sockets(secure_sockets=[listener] if tls else [], insecure_sockets=[] if tls else [listener],
                               quic_sockets=[])

        def create_ssl_context(self):
            return tls

    config = _Config()
    if tls is not None:
        config.certfile = config.keyfile = "-"  # hypercorn serves TLS when both are set: the context is ours
    config.keep_alive_timeout = limits.header_timeout  # idle (no request in progress) since opening or reply
    config.ssl_handshake_timeout = limits.header_timeout
    config.h11_max_incomplete_size = limits.max_header_size
    config.h2_max_concurrent_streams = 1  # HTTP/2 is answered 505 (see BufferedWSGI): keep it cheap
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
        self._lib = lib = _load(server)
        if server == "hypercorn":
            self._listener = listen(host, port, limits.max_connections)
            self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="siroccod-http")
            self._asgi = BufferedWSGI(app, self._executor, limits)
            self._config = _hypercorn_config(lib, self._listener, context, limits)
            self._loop = self._stop = None
            self._stopping = False
        elif server == "cheroot":
            self._server = _cheroot_server_class(lib)((host, port), app, numthreads=threads, server_name="siroccod")
            self._server.max_request_header_size = limits.max_header_size
            if context is not None:
                self._server.ssl_adapter = lib.BuiltinSSLAdapter(tls[0], tls[1])
                self._server.ssl_adapter.context = context
            self._server.prepare()  # binds now: errors (port in use) surface before serving
        elif server == "waitress":
            self._server = lib.create_server(app, host=host, port=port, threads=threads, ident="siroccod",
                                             clear_untrusted_proxy_headers=True,
                                             connection_limit=limits.max_connections,
                                             max_request_header_size=limits.max_header_size)
        else:
            self._server = lib.make_server(host, port, app, threaded=True, ssl_context=context)
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
        self._stop = asyncio.Event()
        if self._stopping:
            self._stop.set()
        self._loop = loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._stop.set)  # Ctrl-C: the same graceful stop
        serving = loop.create_task(self._lib.serve(self._asgi, self._config, shutdown_trigger=self._stop.wait,
                                                   mode="asgi"))
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


def _cheroot_server_class(lib):
    """cheroot's wsgi.Server whose plain-TCP connections write with ``socket.sendall``.

    cheroot's own writer (a pure-Python buffered writer) copies what is left of a reply into a new
    bytes object after every partial send: a 1.5 MB listing cost ~10 ms more than under werkzeug.
    TLS connections keep cheroot's writer (ssl sockets)."""
    class SendallWriter(lib.StreamWriter):
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

    class Connection(lib.server.HTTPConnection):
        def __init__(self, server, sock, makefile=lib.MakeFile):
            super().__init__(server, sock, makefile)
            if makefile is lib.MakeFile:
                self.wfile = SendallWriter(sock, "wb", self.wbufsize)

    class Server(lib.wsgi.Server):
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
