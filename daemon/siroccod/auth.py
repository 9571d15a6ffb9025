"""Users, tenants, passwords and API tokens.

Passwords are kept as salted scrypt hashes (werkzeug.security), API tokens as
the SHA-256 of a 256-bit random secret. Neither is ever logged or returned,
except a new token or generated password, shown once to whoever created it.

Every request is checked against the CMDB as it is now, in every process: a removed user, a changed
password or a revoked or expired token stops working at the next request, whoever made the change
(the API, or ``siroccod user`` in another process). Only the costly part is remembered: a password
that verified against a stored hash is not verified again while that hash is the user's
(``auth_cache_seconds``); the cheap part, reading the user's row, is done every time.

A password change revokes the user's tokens. Tokens expire after ``token_lifetime_days`` unless made
with another lifetime. Failed logins are throttled (Throttle): after a few failures for one user name,
or many from one client address, that name or address is refused with 429 and Retry-After for a time
that doubles with each further failure; the password is then not even checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import check_text
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    SiroccoError,
)
from siroccod.store import LoginFailure, Token, User, utcnow

ADMIN, USER = "admin", "user"
DEFAULT_TOKEN_LIFETIME_DAYS = 90
ADMIN_TENANT = "admin"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# A hash to check against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class TooManyAttempts(SiroccoError):
    """Failed logins throttled: come back after ``retry_after`` seconds."""

    http_status = 429
    kind = "throttled"

    def __init__(self, message, retry_after):
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who is calling: copied out of the session so it can live in ``flask.g``."""

    user_id: int
    name: str
    tenant_id: int
    tenant: str
    role: str

    @property
    def is_admin(self):
        return self.role == ADMIN


def _principal(user):
    return Principal(user.id, user.name, user.tenant_id, user.tenant.name, user.role)


def hash_password(password):
    return generate_password_hash(password, method="scrypt")


def token_digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_password():
    return secrets.token_urlsafe(18)


def check_password(password):
    """A password a user chose: 8 to 1,024 characters of storable text."""
    if not isinstance(password, str) or not 8 <= len(password) <= 1024:
        raise InvalidInput("password must be a string of 8 to 1024 characters", attribute="password")
    check_text(password, "password", max_length=None)
    return password


def check_name(name, what="user name"):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput("%s must be 1-64 letters, digits or . _ @ - (starting with a letter or digit)" % what,
                           attribute="name")
    return name


class Throttle:
    """Failed logins per key (``user:<name>``, ``addr:<address>``), kept in the CMDB so that every process
    sees them. A key may fail ``free`` times within ``window`` seconds; each failure beyond locks it for
    ``base`` seconds doubled per further failure, at most ``longest``. A success clears the user's key."""

    def __init__(self, store, free_user=5, free_address=20, window=900.0, base=1.0, longest=900.0):
        self.store = store
        self.free = {"user": free_user, "addr": free_address}
        self.window, self.base, self.longest = window, base, longest

    def check(self, keys):
        """TooManyAttempts if any key is locked now."""
        now = utcnow()
        with self.store.read() as session:
            rows = session.scalars(select(LoginFailure).where(LoginFailure.key.in_(keys))).all()
        waits = [(row.locked_until - now).total_seconds() for row in rows
                 if row.locked_until is not None and row.locked_until > now]
        if waits:
            wait = int(max(waits)) + 1
            raise TooManyAttempts("too many failed logins: try again in %d s" % wait, wait)

    def failed(self, keys):
        """Count a failure against each key (a row per key, updated in place: concurrent failures all count)."""
        now = utcnow()
        with self.store.transaction() as session:
            self.store.write_lock(session)
            for key in keys:
                row = session.get(LoginFailure, key, with_for_update=not self.store.is_sqlite)
                if row is None or (now - row.first_at).total_seconds() > self.window:
                    if row is None:
                        row = LoginFailure(key=key, failures=0, first_at=now)
                        session.add(row)
                    row.failures, row.first_at, row.locked_until = 0, now, None
                row.failures += 1
                beyond = row.failures - self.free[key.split(":", 1)[0]]
                if beyond > 0:
                    row.locked_until = now + timedelta(seconds=min(self.longest, self.base * 2 ** (beyond - 1)))

    def succeeded(self, keys):
        with self.store.transaction() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))


class Users:
    """User administration, shared by the CLI and the admin API."""

    def __init__(self, store, cache_seconds=60.0, token_lifetime_days=DEFAULT_TOKEN_LIFETIME_DAYS, throttle=None):
        self.store = store
        self.cache_seconds = cache_seconds
        self.token_lifetime_days = token_lifetime_days
        self.throttle = throttle or Throttle(store)
        self._cache = {}
        self._lock = threading.Lock()

    def clear_cache(self):
        with self._lock:
            self._cache.clear()

    # -- administration ---------------------------------------------------------------
    def add(self, session, name, tenant, role=USER, password=None):
        """Create a user (and its tenant if new); returns (user, password) — the password
        generated when none was given, to be shown once."""
        check_name(name)
        check_name(tenant, "tenant name")
        if role not in (ADMIN, USER):
            raise InvalidInput("role must be 'admin' or 'user'", attribute="role")
        if password is not None:
            check_password(password)
        if session.scalar(select(User).where(User.name == name)) is not None:
            raise Conflict("user '%s' already exists" % name)
        generated = password is None
        password = password or generate_password()
        tenant_row = self.store.tenant_by_name(session, tenant, create=True)
        user = User(name=name, tenant_id=tenant_row.id, role=role, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        session.refresh(user)
        self.clear_cache()
        return user, (password if generated else None)

    def get(self, session, name):
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound("no user '%s'" % name)
        return user

    def remove(self, session, name):
        user = self.get(session, name)
        if user.role == ADMIN:
            admins = session.scalar(select(func.count()).select_from(User).where(User.role == ADMIN))
            if admins <= 1:
                raise Conflict("cannot remove the last admin user")
        for token in session.scalars(select(Token).where(Token.user_id == user.id)):
            session.delete(token)
        session.delete(user)
        self.clear_cache()

    def set_password(self, session, name, password=None):
        user = self.get(session, name)
        if password is not None:
            check_password(password)
        generated = password is None
        password = password or generate_password()
        for token in session.scalars(select(Token).where(Token.user_id == user.id)):
            session.delete(token)  # a new password revokes every token (written with the password, at commit)
        user.password_hash = hash_password(password)
        self.clear_cache()
        return password if generated else None

    def list(self, session):
        return list(session.scalars(select(User).order_by(User.name)))

    def new_token(self, session, name, label=None, lifetime_days=None):
        """A new API token for user ``name``; returned once, only its hash is kept. It expires after
        ``lifetime_days`` (default ``token_lifetime_days``; 0: never)."""
        if label is not None and (not isinstance(label, str) or len(label) > 64):
            raise InvalidInput("label must be a string of at most 64 characters", attribute="label")
        if label is not None:
            check_text(label, "label", max_length=64)
        days = self.token_lifetime_days if lifetime_days is None else lifetime_days
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
            raise InvalidInput("lifetimeDays must be an integer from 0 (never expires) to 3650",
                               attribute="lifetimeDays")
        user = self.get(session, name)
        token = "sct_" + secrets.token_urlsafe(32)
        row = Token(user_id=user.id, token_hash=token_digest(token), label=label,
                    expires_at=utcnow() + timedelta(days=days) if days else None)
        session.add(row)
        session.flush()
        return token, row

    def tokens(self, session, name):
        """The user's tokens (id, label, created, expiry): never the token itself, which is not kept."""
        user = self.get(session, name)
        return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created, Token.id)))

    def revoke_token(self, session, name, token_id):
        user = self.get(session, name)
        deleted = session.execute(delete(Token).where(Token.user_id == user.id, Token.id == token_id)).rowcount
        if not deleted:
            raise NotFound("user '%s' has no token %s" % (name, token_id))

    def ensure_admin(self, session, password=None):
        """On first start: the admin tenant and user. Returns the generated password (or None
        when the admin existed or the password came from the configuration)."""
        self.store.tenant_by_name(session, ADMIN_TENANT, create=True)
        if session.scalar(select(User).where(User.role == ADMIN)) is not None:
            return None
        _user, generated = self.add(session, "admin", ADMIN_TENANT, ADMIN, password)
        return generated

    def admin_tenant_id(self, session):
        return self.store.tenant_by_name(session, ADMIN_TENANT, create=True).id

    # -- authentication ----------------------------------------------------------------
    def authenticate(self, authorization, address=None):
        """The Principal for an ``Authorization`` header value from client ``address``, else AuthError
        (or TooManyAttempts while that name or address is throttled)."""
        if not authorization:
            raise AuthError("authentication required (HTTP Basic or Bearer token)")
        scheme, _sep, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        addr_key = ["addr:%s" % address] if address else []
        if scheme == "bearer" and credentials:
            self.throttle.check(addr_key)
            try:
                return self._by_token(credentials)
            except AuthError:
                self.throttle.failed(addr_key)
                raise
        if scheme == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthError("malformed Basic credentials") from None
            name, sep, password = decoded.partition(":")
            if not sep:
                raise AuthError("malformed Basic credentials")
            keys = ["user:%s" % name[:300]] + addr_key
            self.throttle.check(keys)
            try:
                principal = self._by_password(name, password)
            except AuthError:
                self.throttle.failed(keys)
                raise
            if principal.cleared_failures is False:
                self.throttle.succeeded(keys[:1])
            return principal.value
        raise AuthError("unsupported authorization scheme (use Basic or Bearer)")

    def _by_token(self, token):
        with self.store.read() as session:
            row = session.scalar(select(Token).where(Token.token_hash == token_digest(token)))
            if row is not None and row.expires_at is not None and row.expires_at <= utcnow():
                row = None
            user = session.get(User, row.user_id) if row is not None else None
            if user is None:
                raise AuthError("invalid credentials")
            return _principal(user)

    def _by_password(self, name, password):
        """(principal, whether this was a cache hit). The user's row is read every time; the password is
        verified again only when its stored hash changed or the memory of it expired."""
        key = hashlib.sha256(("%s\0%s" % (name, password)).encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        with self.store.read() as session:
            user = session.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None and user.password_hash else None
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and user is not None and hit[0] == stored and hit[1] > now:
                return _Verified(_principal(user), True)
            ok = check_password_hash(stored or _DUMMY_HASH, password)
            if user is None or stored is None or not ok:
                raise AuthError("invalid credentials")
            principal = _principal(user)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (stored, now + self.cache_seconds)
        return _Verified(principal, False)


@dataclass(frozen=True)
class _Verified:
    value: Principal
    cleared_failures: bool  # a remembered verification: its success already cleared the failures
