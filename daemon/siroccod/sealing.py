"""Secrets the CMDB must keep (a Credential's password, a machine's credential given by value) are kept
sealed, with a key kept apart from the CMDB: Fernet (AES-128-CBC and HMAC-SHA256, from cryptography), its
key in a file of its own (``secret_key_file``, default ``<data dir>/secret.key``, mode 0600), made on
first use. A copy of the CMDB without that file holds no usable secret.

Every process sharing a CMDB must have the same key: the first one leaves a sealed canary in the CMDB
(table ``settings``), and a process whose key cannot open it refuses to start, saying so, rather than
seal new secrets no other process could read. Values sealed here read ``fernet:<token>``; a value
without that prefix is a secret written before sealing existed, sealed at the next start.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from siroccod.store import Resource, Setting, Store

PREFIX = "fernet:"
CANARY_NAME = "sealing-canary"
CANARY_TEXT = "siroccod"


class Sealer:
    def __init__(self, key_path: Path):
        self.key_path = Path(key_path)
        self._fernet = Fernet(self._key())

    def _key(self) -> bytes:
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = self.key_path.read_bytes().strip()
            try:
                Fernet(key)
            except ValueError:
                raise InvalidInput("config: %s holds no valid key (32 url-safe base64-encoded bytes)"
                                   % self.key_path, attribute="secret_key_file") from None
            return key
        key = Fernet.generate_key()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        return key

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, value: str | None) -> str | None:
        """The secret in ``value`` (as written before sealing existed, if it is not sealed)."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value
        return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")

    @staticmethod
    def is_sealed(value) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX)

    def check_canary(self, sealed: str | None) -> str | None:
        """None when ``sealed`` (the CMDB's canary) opens with this key; else why this process must not start.
        With no canary yet, the caller stores ``self.seal(CANARY_TEXT)``."""
        if sealed is None:
            return None
        try:
            if self.open(sealed) == CANARY_TEXT:
                return None
        except InvalidToken:
            pass
        return ("the CMDB's secrets were sealed with another key than %s: give every process sharing this CMDB "
                "the same secret_key_file" % self.key_path)


def seal_cmdb(store: Store, sealer: Sealer) -> int:
    """At start (under the start-up lock): refuse a key other processes do not share, leave the canary, seal
    what was kept in clear before sealing existed. Returns how many secrets were sealed now."""
    sealed = 0
    with store.transaction() as session:
        canary = session.get(Setting, CANARY_NAME)
        problem = sealer.check_canary(canary.value if canary is not None else None)
        if problem:
            raise InvalidInput(problem, attribute="secret_key_file")
        if canary is None:
            session.add(Setting(name=CANARY_NAME, value=sealer.seal(CANARY_TEXT)))
        for row in session.scalars(select(Resource).where(Resource.type.in_(("Credential", "Machine")))):
            private = dict(row.private or {})
            if row.type == "Credential" and private.get("password") and not sealer.is_sealed(private["password"]):
                private["password"] = sealer.seal(private["password"])
            elif row.type == "Machine":
                spec = dict(private.get("spec") or {})
                value = dict(spec.get("credential_value") or {})
                if value.get("password") and not sealer.is_sealed(value["password"]):
                    value["password"] = sealer.seal(value["password"])
                    private["spec"] = dict(spec, credential_value=value)
            if private != row.private:
                row.private = private
                sealed += 1
    return sealed
