# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error hierarchy of Sirocco.

Connectors raise these, the daemon maps each class to one HTTP status and a
CIMI error body, the modules turn them into one ``fail_json`` message. Every
message is written for the person who sent the request: it names the
attribute, provider or operation at fault.
"""

from __future__ import annotations


class SiroccoError(Exception):
    """Base of every error Sirocco raises on purpose."""

    http_status = 500
    kind = "error"

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message


class InvalidInput(SiroccoError):
    """The request itself is wrong: a bad attribute, value or query."""

    http_status = 400
    kind = "invalid-input"

    def __init__(self, message, attribute=None, **details):
        super().__init__(message, attribute=attribute, **details)
        self.attribute = attribute


class NotFound(SiroccoError):
    http_status = 404
    kind = "not-found"


class Conflict(SiroccoError):
    """The resource exists but its state does not allow the request."""

    http_status = 409
    kind = "conflict"


class Unsupported(SiroccoError):
    """The provider does not offer this operation at all."""

    http_status = 501
    kind = "unsupported"

    def __init__(self, provider, operation, message=None):
        message = message or "provider '%s' does not support operation '%s'" % (provider, operation)
        super().__init__(message, provider=provider, operation=operation)
        self.provider = provider
        self.operation = operation


class AuthError(SiroccoError):
    http_status = 401
    kind = "auth"


class Forbidden(SiroccoError):
    http_status = 403
    kind = "forbidden"


class ProviderUnavailable(SiroccoError):
    """The provider could not be reached or failed in a way the caller cannot fix."""

    http_status = 503
    kind = "provider-unavailable"


class OperationTimeout(SiroccoError):
    """Waiting for a state or a job took longer than allowed."""

    http_status = 504
    kind = "timeout"
