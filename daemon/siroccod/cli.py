"""The ``siroccod`` command: serve, worker, user add/remove/list/password/token/tokens/revoke-token, tenant
list/quota, db current/upgrade/history, hosts, place.

Every command reads the same configuration as the daemon (``--config`` or
$SIROCCOD_CONFIG, environment overrides, else the embedded default), so
``siroccod user add`` works on the CMDB the daemon uses, running or not.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
from types import SimpleNamespace

import click

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import cli as placement_cli
from siroccod import __version__
from siroccod.config import ensure_data_dir, load_config
from siroccod.serving import Limits, Server


def _daemon():
    """The daemon's own modules, imported by the commands that use them, here only: SQLAlchemy, Flask, the
    CMDB and the hosts' connectors take about 0.6 s to import, six times what ``siroccod --help`` (and
    ``siroccod place``) take without them (measured: 0.11 s)."""
    import sqlalchemy

    from siroccod import app, auth, capacity, migrating, quotas, store
    return SimpleNamespace(sqlalchemy=sqlalchemy, app=app, auth=auth, capacity=capacity, migrating=migrating,
                           quotas=quotas, store=store)


def _config(ctx):
    try:
        return load_config(path=ctx.obj.get("config"))
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None


def _users(config):
    m = _daemon()
    ensure_data_dir(config)  # 0700, and the CMDB 0600, from the very first command
    store = m.store.Store(config.database)
    return store, m.auth.Users(store)


@click.group()
@click.option("--config", "-c", type=click.Path(dir_okay=False), envvar="SIROCCOD_CONFIG",
              help="YAML configuration file (default: $SIROCCOD_CONFIG, else the embedded default)")
@click.version_option(__version__, prog_name="siroccod")
@click.pass_context
def main(ctx, config):
    """siroccod: a DMTF CIMI endpoint over local hypervisor hosts."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.command()
@click.option("--listen", "-l", help="HOST:PORT to listen on (default from the configuration, 127.0.0.1:8080)")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1),
              help="request threads: those that run the app (a request reaches one only when it is whole)")
@click.option("--server", "server_name", type=click.Choice(["hypercorn", "cheroot", "waitress", "werkzeug"]),
              default="hypercorn", show_default=True,
              help="HTTP server. Only hypercorn is slowloris-safe: cheroot and werkzeug (the development "
                   "server) hold a thread per request being read, waitress (no TLS) has no deadline on a request")
@click.option("--max-connections", default=500, show_default=True, type=click.IntRange(1),
              envvar="SIROCCOD_MAX_CONNECTIONS", show_envvar=True,
              help="connections open at once; beyond, a new one is closed as soon as accepted")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1),
              envvar="SIROCCOD_HEADER_TIMEOUT", show_envvar=True,
              help="seconds a connection has to send a complete request head (line and headers), from its "
                   "opening or its previous reply; an idle keep-alive connection is closed after as long")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              envvar="SIROCCOD_BODY_TIMEOUT", show_envvar=True,
              help="seconds to send a request body once the head is in (408 after), and to take a reply")
@click.option("--max-header-size", default=16384, show_default=True, type=click.IntRange(1024),
              envvar="SIROCCOD_MAX_HEADER_SIZE", show_envvar=True,
              help="bytes of the request line and header fields together (431 beyond; the request target "
                   "alone: 8192, 414 beyond); the body's bound is the configuration's max_body (413)")
@click.option("--max-headers", default=100, show_default=True, type=click.IntRange(1),
              envvar="SIROCCOD_MAX_HEADERS", show_envvar=True, help="header fields of a request (431 beyond)")
@click.pass_context
def serve(ctx, listen, threads, server_name, max_connections, header_timeout, body_timeout, max_header_size,
          max_headers):
    """Serve the CIMI endpoint until interrupted (SIGTERM, Ctrl-C)."""
    config = _config(ctx)
    if listen:
        config.listen = listen
    limits = Limits(max_connections=max_connections, header_timeout=header_timeout, body_timeout=body_timeout,
                    max_request_line=min(8192, max_header_size), max_header_size=max_header_size,
                    max_headers=max_headers, max_body=config.max_body)
    try:
        app = _daemon().app.create_app(config)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    daemon = app.extensions["siroccod"]
    gc.collect()
    gc.freeze()  # what start-up made lives as long as the process: full collections need not walk it
    tls = (config.tls_cert, config.tls_key) if config.tls else None
    try:
        server = Server(app, config.listen_host, config.listen_port, threads=threads, server=server_name,
                        tls=tls, limits=limits)
    except (OSError, ValueError) as exc:
        daemon.close()
        raise click.ClickException(str(exc)) from None
    click.echo("siroccod %s: serving %s://%s:%d/cimi/cloudEntryPoint (data in %s; server %s)"
               % (__version__, "https" if tls else "http", config.listen_host, config.listen_port, config.data_dir,
                  server_name), err=True)

    def stop(_signum, _frame):
        server.interrupt()  # hypercorn: a graceful stop; the others: KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        daemon.close()
        click.echo("siroccod: stopped", err=True)


@main.command()
@click.option("--threads", type=click.IntRange(1), help="job threads (default: the configuration's workers)")
@click.pass_context
def worker(ctx, threads):
    """Run jobs (and the metering) without serving HTTP, until interrupted (SIGTERM, Ctrl-C).

    Beside `siroccod serve` processes on the same PostgreSQL (serve with `workers: 0` to leave every job
    to worker processes): the API and the job workers then scale separately."""
    config = _config(ctx)
    if threads:
        config.workers = threads
    if not config.workers:
        raise click.ClickException("workers is 0 in the configuration: give --threads")
    try:
        daemon = _daemon().app.start(config)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    stopping = threading.Event()

    def stop(_signum, _frame):
        stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    daemon.runner.start()
    daemon.sampler.start()
    click.echo("siroccod %s: worker %s running jobs with %d thread(s) (data in %s)"
               % (__version__, daemon.runner.instance_id, config.workers, config.data_dir), err=True)
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        daemon.close()
        click.echo("siroccod: worker stopped", err=True)


@main.group()
def user():
    """Manage users (the daemon may be running)."""


@user.command("add")
@click.argument("name")
@click.option("--tenant", "-t", help="tenant (created if new; default: the user's name)")
@click.option("--admin", is_flag=True, help="give the admin role")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (else one is generated)")
@click.pass_context
def user_add(ctx, name, tenant, admin, password_stdin):
    """Add user NAME; a generated password is printed once."""
    config = _config(ctx)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    store, users = _users(config)
    try:
        with store.transaction() as session:
            _user, generated = users.add(session, name, tenant or name, "admin" if admin else "user", password)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo("user %s added to tenant %s%s" % (name, tenant or name, " (admin)" if admin else ""))
    if generated:
        click.echo("password: %s" % generated)


@user.command("remove")
@click.argument("name")
@click.pass_context
def user_remove(ctx, name):
    """Remove user NAME (and its tokens)."""
    store, users = _users(_config(ctx))
    try:
        with store.transaction() as session:
            users.remove(session, name)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo("user %s removed" % name)


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def user_list(ctx, as_json):
    """List users: name, tenant, role."""
    store, users = _users(_config(ctx))
    try:
        with store.read() as session:
            rows = [(u.name, u.tenant.name, u.role) for u in users.list(session)]
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps([{"name": n, "tenant": t, "role": r} for n, t, r in rows]))
        return
    click.echo("%-24s %-24s %s" % ("NAME", "TENANT", "ROLE"))
    for row in rows:
        click.echo("%-24s %-24s %s" % row)


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the new password from standard input")
@click.pass_context
def user_password(ctx, name, password_stdin):
    """Set a new password for NAME (generated and printed once unless given on stdin)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    store, users = _users(_config(ctx))
    try:
        with store.transaction() as session:
            generated = users.set_password(session, name, password)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo("password of %s changed" % name)
    if generated:
        click.echo("password: %s" % generated)


@user.command("token")
@click.argument("name")
@click.option("--label", help="what the token is for")
@click.pass_context
def user_token(ctx, name, label):
    """Create an API token for NAME (printed once; use it as 'Authorization: Bearer <token>')."""
    store, users = _users(_config(ctx))
    try:
        with store.transaction() as session:
            token, _row = users.new_token(session, name, label)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(token)


@user.command("tokens")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def user_tokens(ctx, name, as_json):
    """List NAME's tokens: id, label, created, expires (never the tokens themselves)."""
    iso = _daemon().store.iso
    store, users = _users(_config(ctx))
    try:
        with store.read() as session:
            rows = [{"id": t.id, "label": t.label, "created": iso(t.created), "expires": iso(t.expires_at)}
                    for t in users.tokens(session, name)]
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo("%-6s %-24s %-25s %s" % ("ID", "LABEL", "CREATED", "EXPIRES"))
    for row in rows:
        click.echo("%-6d %-24s %-25s %s" % (row["id"], row["label"] or "-", row["created"], row["expires"] or "never"))


@user.command("revoke-token")
@click.argument("name")
@click.argument("token_id", type=int)
@click.pass_context
def user_revoke_token(ctx, name, token_id):
    """Revoke NAME's token TOKEN_ID (refused at the next request, in every process)."""
    store, users = _users(_config(ctx))
    try:
        with store.transaction() as session:
            users.revoke_token(session, name, token_id)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo("token %d of %s revoked" % (token_id, name))


@main.group()
def tenant():
    """Tenants: their quotas and what they hold (the daemon may be running)."""


_QUOTA_OPTIONS = (("cpu", "cpu"), ("memory_mib", "memoryMiB"), ("machines", "machines"), ("volumes", "volumes"))


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenant_list(ctx, as_json):
    """Every tenant: quota (- : no limit) and usage."""
    m = _daemon()
    store, _users_ = _users(_config(ctx))
    try:
        with store.read() as session:
            views = [m.quotas.view(session, t) for t in session.scalars(
                m.sqlalchemy.select(m.store.Tenant).order_by(m.store.Tenant.name))]
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(views))
        return
    click.echo("%-24s %11s %15s %11s %11s" % ("TENANT", "CPU", "MEMORY MiB", "MACHINES", "VOLUMES"))
    for v in views:
        cells = ["%s/%s" % (v["usage"][k], "-" if v["quota"][k] is None else v["quota"][k])
                 for _opt, k in _QUOTA_OPTIONS]
        click.echo("%-24s %11s %15s %11s %11s" % (v["name"], *cells))


@tenant.command("quota")
@click.argument("name")
@click.option("--cpu", type=click.IntRange(0), help="cpu at most (absent: no limit)")
@click.option("--memory-mib", type=click.IntRange(0), help="memory at most, MiB (absent: no limit)")
@click.option("--machines", type=click.IntRange(0), help="machines at most (absent: no limit)")
@click.option("--volumes", type=click.IntRange(0), help="volumes at most (absent: no limit)")
@click.pass_context
def tenant_quota(ctx, name, **limits):
    """Set tenant NAME's whole quota (each limit not given is lifted)."""
    m = _daemon()
    store, _users_ = _users(_config(ctx))
    try:
        with store.transaction() as session:
            row = session.scalar(m.sqlalchemy.select(m.store.Tenant).where(m.store.Tenant.name == name))
            if row is None:
                raise click.ClickException("no tenant '%s'" % name)
            m.quotas.set_quota(session, row, {wire: limits[opt] for opt, wire in _QUOTA_OPTIONS})
            session.flush()
            view = m.quotas.view(session, row)
    except SiroccoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(json.dumps(view))


@main.group()
def db():
    """The CMDB's schema (Alembic): every command and the daemon upgrade it when they open it."""


@db.command("current")
@click.pass_context
def db_current(ctx):
    """The revision the CMDB is at, and the newest one."""
    m = _daemon()
    config = _config(ctx)
    ensure_data_dir(config)
    if config.database.startswith("sqlite"):
        m.store.private_sqlite_file(config.database)
    engine = m.sqlalchemy.create_engine(config.database)
    try:
        with engine.connect() as connection:
            current = m.migrating.current(connection)
    finally:
        engine.dispose()
    click.echo("current: %s\nnewest:  %s" % (current or "none (empty, or made before migrations)",
                                             m.migrating.head()))


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="the revision to upgrade to")
@click.pass_context
def db_upgrade(ctx, revision):
    """Upgrade the CMDB (what every process does when it opens it)."""
    m = _daemon()
    config = _config(ctx)
    ensure_data_dir(config)
    store = m.store.Store(config.database)  # opening it upgrades to the newest revision, under the start-up lock
    try:
        with store.startup_lock():
            _before, after = m.migrating.upgrade(store.engine, revision)
    finally:
        store.dispose()
    click.echo("CMDB at revision %s" % after)


@db.command("history")
def db_history():
    """The revisions, oldest first."""
    for revision, doc in _daemon().migrating.history():
        click.echo("%s  %s" % (revision, doc))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def hosts(ctx, as_json):
    """Hosts as the CMDB knows them: capacity, usage, power."""
    config = _config(ctx)
    m = _daemon()
    ensure_data_dir(config)
    store = m.store.Store(config.database)
    try:
        with store.read() as session:
            used = m.capacity.claims(session)
            rows = []
            for h in session.scalars(m.sqlalchemy.select(m.store.Host).order_by(m.store.Host.id)):
                cpu, mem, n = used.get(h.id, (0, 0, 0))
                rows.append({"name": h.name, "provider": h.provider, "state": h.state, "enabled": h.enabled,
                             "cpu": h.cpu, "memoryMiB": h.memory_kib // 1024, "usedCpu": cpu,
                             "usedMemoryMiB": mem // 1024, "machines": n, "powerIdle": h.power_idle,
                             "powerMax": h.power_max, "uri": h.uri})
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no hosts recorded yet: start the daemon once (siroccod serve)")
        return
    header = ("HOST", "PROVIDER", "STATE", "CPU", "MEMORY MiB", "VMS", "POWER W")
    click.echo("%-10s %-8s %-7s %9s %13s %8s %11s" % header)
    for r in rows:
        power = "%s-%s" % (_num(r["powerIdle"]), _num(r["powerMax"])) if r["powerIdle"] is not None else "-"
        click.echo("%-10s %-8s %-7s %4d/%-4d %6d/%-6d %8d %11s" % (
            r["name"], r["provider"], r["state"], r["usedCpu"], r["cpu"], r["usedMemoryMiB"], r["memoryMiB"],
            r["machines"], power))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def place(args):
    """The placement optimizer on its own: a problem as JSON (FILE or -) in, the plan as JSON out."""
    sys.exit(placement_cli.main(list(args)))


def _num(value):
    return ("%g" % value) if value is not None else "-"


if __name__ == "__main__":
    main()
