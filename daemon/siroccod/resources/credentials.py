"""Credentials and CredentialTemplates (5.14.9-12): a Credential made from a CredentialCreate (its
credentialTemplate by reference, with overrides, or by value) or, as older clients send it, given itself.
Passwords are kept sealed in the row's private state and never served, a template's included."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import public_key
from siroccod import cmdb, hrefs
from siroccod.auth import Principal
from siroccod.resources.context import COMMON, Context
from siroccod.store import Resource

# the types whose rows keep a sealed password (private_state.CredentialState)
SECRET_HOLDERS = ("Credential", "CredentialTemplate")
# what a Credential takes from its template (Table 25's parameters, Tables 23 and 24's attributes)
FROM_TEMPLATE = ("parameters", "userName", "key")


def is_create(body: Any) -> bool:
    """Whether a POST to credentials is a CredentialCreate (DSP0263), not the Credential itself: as its
    resourceURI says, else as its credentialTemplate does."""
    if not isinstance(body, dict):
        return False
    if body.get("resourceURI") is not None:
        return body["resourceURI"] == type_uri("CredentialCreate")
    return "credentialTemplate" in body


def check(doc: dict, path: str) -> None:
    """A Credential's or CredentialTemplate's document as kept: its public key an OpenSSH line (normalised),
    no password among its parameters (they are served back)."""
    if doc.get("key") is not None:
        try:
            doc["key"] = public_key(doc["key"], "%s.key" % path)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, attribute="key") from None
    if "password" in (doc.get("parameters") or {}):
        raise InvalidInput("%s.parameters: no password here (parameters are served back): give it as the "
                           "write-only password attribute" % path, attribute="parameters")


def create_from_template(ctx: Context, session: Session, p: Principal, body: Any) -> Resource:
    """A Credential from a CredentialCreate: the template's attributes and sealed password (by reference), the
    request's overrides (a null one erases the template's), the request's name, description, properties."""
    path = "CredentialCreate.credentialTemplate"
    req = model.CredentialCreate.from_json(body)
    parsed = req.get("credentialTemplate")
    given = body["credentialTemplate"]  # checked above; the raw one still holds the write-only password
    merged: dict[str, Any] = {}
    password = None
    if parsed.get("href") is not None:
        row = ctx.find_ref(session, p, parsed["href"], "CredentialTemplate", path)
        merged.update({k: v for k, v in row.doc.items() if k in FROM_TEMPLATE})
        password = row.private.get("password")
    merged.update({k: v for k, v in hrefs.stored(parsed).items() if k in FROM_TEMPLATE})
    for key, value in given.items():
        if value is None:  # 4.2.1.1: null erases the referenced template's value
            merged.pop(key, None)
            if key == "password":
                password = None
    if isinstance(given.get("password"), str):
        password = ctx.sealer.seal(given["password"])
    check(merged, "CredentialCreate.credentialTemplate")
    doc = {k: req.get(k) for k in COMMON if req.get(k) is not None}
    doc.update(merged)
    return cmdb.new_resource(session, "Credential", p.tenant_id, doc,
                             private={"password": password} if password else {})
