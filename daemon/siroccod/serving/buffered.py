"""The default server's front (hypercorn's): the limit on open connections, and the WSGI app behind
a buffering ASGI adapter (a request reaches a thread whole, its reply leaves the thread whole)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from io import BytesIO
from urllib.parse import unquote_to_bytes

log = logging.getLogger("siroccod.http")


class Connection(socket.socket):
    """An accepted connection that counts itself out of its listener's open connections on close."""

    listener = None

    def close(self):
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.connections.discard(self)
        super().close()


class Listener(socket.socket):
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
        conn = Connection(self.family, self.type, self.proto, fileno=fd)
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


def listen(host, port, limit, backlog=1024):
    """Bound and listening now, so that errors (address in use, no such address) come before serving."""
    family, _type, _proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                               flags=socket.AI_PASSIVE)[0]
    sock = Listener(family, limit)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class BufferedWSGI:
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
