"""The CMDB: SQLAlchemy 2.x tables and transactions (SQLite by default, PostgreSQL by URL).

One row per CIMI resource (its JSON document with hrefs kept *relative* to the
CIMI base, made absolute when rendered for a request), one row per job, plus
users, API tokens, tenants, hosts and the daemon processes alive on this CMDB.
Every change happens inside ``Store.transaction()``: all of it or nothing. The schema is
declared here and changed only by migrations (migrating.py, migrations/versions/).
"""

from __future__ import annotations

import os
import uuid as uuidlib
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import StaticPool

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict
from siroccod import migrating, private_state


def utcnow():
    """Naive UTC (portable across SQLite and PostgreSQL ``timestamp``)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value):
    """A stored timestamp as a CIMI dateTime string."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def new_uuid():
    return str(uuidlib.uuid4())


class Base(DeclarativeBase):
    pass


class Instance(Base):
    """A daemon process using this CMDB; its heartbeat tells the others it is alive."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    role: Mapped[str] = mapped_column(String(16), default="user")  # "user" | "admin"
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # salted scrypt
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    tenant: Mapped[Tenant] = relationship(lazy="joined")

    @property
    def is_admin(self):
        return self.role == "admin"


class Token(Base):
    """An API token; only its SHA-256 is kept (tokens are 256-bit random, so no salt is needed)."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # None: never


class LoginFailure(Base):
    """Failed logins of one user name or one client address (``user:<name>``, ``addr:<address>``) in the
    current window, and until when that key is refused (auth.Throttle)."""

    __tablename__ = "login_failures"
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Setting(Base):
    """A value the daemon keeps in the CMDB itself (e.g. sealing.py's canary)."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MeterSample(Base):
    """One reading of a Meter (metering.py), kept for the configured retention."""

    __tablename__ = "meter_samples"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    meter_uuid: Mapped[str] = mapped_column(String(36))
    taken: Mapped[datetime] = mapped_column(DateTime)
    value: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_meter_samples_meter_taken", "meter_uuid", "taken"),
                      Index("ix_meter_samples_taken", "taken"))


class Quota(Base):
    """What one tenant may hold at most (None: no limit), set by an administrator."""

    __tablename__ = "quotas"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    cpu: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_kib: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    machines: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volumes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Host(Base):
    """A hypervisor host of the pool, as configured plus what it reported."""

    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    cpu: Mapped[int] = mapped_column(Integer, default=0)
    memory_kib: Mapped[int] = mapped_column(Integer, default=0)
    cpu_mhz: Mapped[int | None] = mapped_column(Integer, nullable=True)
    arch: Mapped[str | None] = mapped_column(String(32), nullable=True)
    power_idle: Mapped[float | None] = mapped_column(Float, nullable=True)
    power_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="UNKNOWN")  # UP | DOWN | UNKNOWN
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Resource(Base):
    """One CIMI resource. ``tenant_id`` NULL: public (read-only to users), e.g. the stock
    MachineConfigs. ``doc`` is its CIMI document without id/created/updated/operations;
    ``private`` holds what users never see (the creation spec, the host's domain name), each key declared
    per type in private_state.py (checked when a session flushes)."""

    __tablename__ = "resources"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True)
    native_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    doc: Mapped[dict] = mapped_column(JSON, default=dict)
    private: Mapped[dict] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # relationships, as columns the CMDB can query (migration 0007): the System it is a member of; the
    # machine a Volume is attached (or being attached) to, or a Meter measures
    system_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    machine_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    host: Mapped[Host | None] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_resources_tenant_type", "tenant_id", "type"),
        UniqueConstraint("host_id", "native_id", name="uq_resources_host_native"),
    )


class Job(Base):
    __tablename__ = "jobs"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="QUEUED")
    action: Mapped[str] = mapped_column(String(255))  # action URI
    target_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    target_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # what the worker needs; never secrets
    affected: Mapped[list] = mapped_column(JSON, default=list)  # relative hrefs
    progress: Mapped[int] = mapped_column(Integer, default=0)
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    return_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status_changed: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # new at every claim; the outcome is recorded only by the run holding it (jobs.held)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_jobs_state_created", "state", "created"), Index("ix_jobs_tenant", "tenant_id"))


# pg_advisory_lock key held while a daemon process starts (any constant of our own)
STARTUP_LOCK_KEY = 0x51_52_6F_63


class Store:
    """The engine and its transactions."""

    def __init__(self, url):
        self.url = url
        kwargs = {}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        if self.is_sqlite:
            private_sqlite_file(url)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.startup_lock():  # processes starting together would race to upgrade the schema
            migrating.upgrade(self.engine)

    @property
    def dialect(self):
        return self.engine.dialect.name

    @contextmanager
    def transaction(self):
        """A session whose changes are committed together at the end, or rolled back on error."""
        session = self.sessions()
        try:
            with session.begin():
                yield session
        except StaleDataError:
            # a row this transaction changes was deleted (or changed) by a concurrent one
            raise Conflict("changed by another request at the same time: try again") from None
        finally:
            session.close()

    @contextmanager
    def startup_lock(self):
        """Held while a process starts (tables, admin user, hosts, interrupted jobs, reconcile, stock
        rows): processes sharing one PostgreSQL start one after the other (a session-level advisory
        lock, released with its connection if the process dies). SQLite serves one process: no-op."""
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
                conn.commit()

    def write_lock(self, session):
        """On SQLite, take the database's write lock now, for the rest of ``session``'s transaction:
        what it reads from here on stays true until it commits (SQLite's SELECT ... FOR UPDATE; the
        sqlite3 module would otherwise begin the transaction only at its first write, after the reads).
        Other databases lock rows instead (``with_for_update``)."""
        if self.is_sqlite:
            session.execute(text("UPDATE hosts SET id = id WHERE 0 = 1"))

    @contextmanager
    def read(self):
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()  # ends the transaction; loaded objects stay readable (detached)

    def dispose(self):
        self.engine.dispose()

    # -- small helpers used everywhere -------------------------------------------------
    @staticmethod
    def tenant_by_name(session, name, create=False):
        tenant = session.scalar(select(Tenant).where(Tenant.name == name))
        if tenant is None and create:
            tenant = Tenant(name=name)
            session.add(tenant)
            session.flush()
        return tenant


def private_sqlite_file(url):
    """The CMDB file (password hashes inside) readable by its owner only, from its creation: SQLite makes
    its -wal and -shm files with the database file's mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        if os.path.exists(name):
            os.chmod(name, 0o600)


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Session, "before_flush")
def _declared_private_keys(session, _context, _instances):
    """A resource's private state holds only the keys private_state.py declares for its type: a key nobody
    declared is a bug, refused before it reaches the CMDB."""
    for row in list(session.new) + list(session.dirty):
        if isinstance(row, Resource):
            keys = private_state.undeclared(row.type, row.private)
            if keys:
                raise ValueError("%s %s: undeclared private key(s) %s (declare them in private_state.py)"
                                 % (row.type, row.uuid, ", ".join(keys)))
