"""The HTTP server of ``siroccod serve``: a production WSGI server, not werkzeug's development one.

``cheroot`` (CherryPy's server; the default): a pool of request threads, keep-alive, TLS through
the standard ssl module. ``waitress`` (no TLS) and ``werkzeug`` (the development server) remain
available with ``--server``. Every choice serves the one Flask app in this process, beside the
job worker threads, so the CMDB, the host connections and the caches are shared.
"""

from __future__ import annotations

import logging

SERVERS = ("cheroot", "waitress", "werkzeug")
log = logging.getLogger(__name__)


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


class Server:
    """``serve_forever()`` until ``shutdown()`` (from a signal handler) or KeyboardInterrupt."""

    def __init__(self, app, host, port, threads=8, server="cheroot", tls=None):
        if server not in SERVERS:
            raise ValueError("unknown server %r: one of %s" % (server, ", ".join(SERVERS)))
        if server == "waitress" and tls:
            raise ValueError("waitress does not do TLS: use cheroot (the default) or werkzeug")
        self.name = server
        if server == "cheroot":
            self._server = _cheroot_server_class()((host, port), app, numthreads=threads, server_name="siroccod")
            if tls:
                from cheroot.ssl.builtin import BuiltinSSLAdapter
                self._server.ssl_adapter = BuiltinSSLAdapter(tls[0], tls[1])
            self._server.prepare()  # binds now: errors (port in use) surface before serving
        elif server == "waitress":
            from waitress.server import create_server
            self._server = create_server(app, host=host, port=port, threads=threads, ident="siroccod",
                                         clear_untrusted_proxy_headers=True)
        else:
            from werkzeug.serving import make_server
            self._server = make_server(host, port, app, threaded=True, ssl_context=tuple(tls) if tls else None)
            self._server.daemon_threads = True

    def serve_forever(self):
        if self.name == "cheroot":
            self._server.serve()
        elif self.name == "waitress":
            self._server.run()
        else:
            self._server.serve_forever()

    def shutdown(self):
        if self.name == "cheroot":
            self._server.stop()
        elif self.name == "waitress":
            self._server.close()
        else:
            self._server.server_close()


def serve(app, host, port, threads=8, server="cheroot", tls=None):
    """Serve ``app`` until interrupted (the benchmark serves its bare Flask ceiling with this)."""
    srv = Server(app, host, port, threads=threads, server=server, tls=tls)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.shutdown()
