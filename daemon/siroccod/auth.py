"""Users, tenants, passwords and API tokens.

Passwords are kept as salted scrypt hashes (werkzeug.security), API tokens as
the SHA-256 of a 256-bit random secret. Neither is ever logged or returned,
except a new token or generated password, shown once to whoever created it.
Verifying scrypt costs tens of milliseconds, so a successful Basic check is
remembered for ``auth_cache_seconds`` under the SHA-256 of the credentials
(cleared whenever a user or password changes).
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

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import check_text
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
)
from siroccod.store import Token, User

ADMIN, USER = "admin", "user"
ADMIN_TENANT = "admin"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# A hash to check against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


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


class Users:
    """User administration, shared by the CLI and the admin API."""

    def __init__(self, store, cache_seconds=60.0):
        self.store = store
        self.cache_seconds = cache_seconds
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
        user.password_hash = hash_password(password)
        self.clear_cache()
        return password if generated else None

    def list(self, session):
        return list(session.scalars(select(User).order_by(User.name)))

    def new_token(self, session, name, label=None):
        """A new API token for user ``name``; returned once, only its hash is kept."""
        if label is not None and (not isinstance(label, str) or len(label) > 64):
            raise InvalidInput("label must be a string of at most 64 characters", attribute="label")
        if label is not None:
            check_text(label, "label", max_length=64)
        user = self.get(session, name)
        token = "sct_" + secrets.token_urlsafe(32)
        session.add(Token(user_id=user.id, token_hash=token_digest(token), label=label))
        return token

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
    def authenticate(self, authorization):
        """The Principal for an ``Authorization`` header value, or AuthError."""
        if not authorization:
            raise AuthError("authentication required (HTTP Basic or Bearer token)")
        scheme, _sep, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            return self._by_token(credentials)
        if scheme == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthError("malformed Basic credentials") from None
            name, sep, password = decoded.partition(":")
            if not sep:
                raise AuthError("malformed Basic credentials")
            return self._by_password(name, password)
        raise AuthError("unsupported authorization scheme (use Basic or Bearer)")

    def _by_token(self, token):
        with self.store.read() as session:
            row = session.scalar(select(Token).where(Token.token_hash == token_digest(token)))
            user = session.get(User, row.user_id) if row is not None else None
            if user is None:
                raise AuthError("invalid credentials")
            return _principal(user)

    def _by_password(self, name, password):
        key = hashlib.sha256(("%s\0%s" % (name, password)).encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.store.read() as session:
            user = session.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
            ok = check_password_hash(stored, password)
            if user is None or not ok:
                raise AuthError("invalid credentials")
            principal = _principal(user)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (principal, now + self.cache_seconds)
        return principal
