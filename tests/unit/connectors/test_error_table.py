"""The shared mechanics of the connectors' error tables (connectors/base.py): lookup order, messages, details."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import ErrorRule, ErrorTable, translating


class CodedError(Exception):
    def __init__(self, code, text):
        super().__init__(text)
        self.code = code


class BusyError(CodedError):
    pass


TABLE = ErrorTable(
    codes={"GONE": NotFound, "NOPE": Unsupported, "BAD": InvalidInput},
    code=lambda exc: getattr(exc, "code", None),
    rules=[
        ErrorRule(BusyError, Conflict, detail=lambda exc: "busy: %s" % exc),
        (lambda exc: "password" in str(exc), AuthError),
        ErrorRule(KeyError, InvalidInput, attribute="name", message="%(subject)s: no key %(detail)s"),
    ],
    catch=CodedError,
    code_field="native_code",
    unsupported="provider '%(provider)s' at %(where)s cannot %(operation)s: %(detail)s")


def error(exc):
    return TABLE.error(exc, "machine.start", "machine 'web'", "demo", where="lab")


@pytest.mark.parametrize("exc, cls", [
    (CodedError("GONE", "no such VM"), NotFound),
    (BusyError("GONE", "the code wins over the row"), NotFound),
    (BusyError("OTHER", "locked"), Conflict),
    (CodedError("OTHER", "bad password"), AuthError),
    (CodedError("OTHER", "anything else"), ProviderUnavailable),
    (RuntimeError("not from the provider at all"), ProviderUnavailable),
])
def test_codes_first_then_rows_in_order_then_the_default(exc, cls):
    assert type(error(exc)) is cls  # pylint: disable=unidiomatic-typecheck  # the exact class, not a parent


def test_messages_name_subject_operation_and_detail():
    assert str(error(CodedError("GONE", "no such VM"))) == "machine 'web' (machine.start): no such VM"
    assert str(error(BusyError("X", "locked"))) == "machine 'web' (machine.start): busy: locked"
    assert str(error(KeyError("colour"))) == "machine 'web': no key 'colour'"
    assert str(TABLE.error(CodedError("GONE", "x"), "op", "subj", "demo", detail="given")) == "subj (op): given"


def test_details_keep_the_native_code_and_the_attribute():
    gone = error(CodedError("GONE", "no such VM"))
    assert gone.details == {"native_code": "GONE"}
    bad = TABLE.error(CodedError("BAD", "x"), "op", "subj", "demo", attribute="cpu")
    assert bad.attribute == "cpu" and bad.details["native_code"] == "BAD"
    assert error(KeyError("k")).attribute == "name"  # the row's attribute


def test_unsupported_names_provider_and_operation():
    err = error(CodedError("NOPE", "no such call"))
    assert isinstance(err, Unsupported) and err.provider == "demo" and err.operation == "machine.start"
    assert str(err) == "provider 'demo' at lab cannot machine.start: no such call"


def test_sirocco_errors_pass_unchanged():
    original = Conflict("as is")
    assert error(original) is original


def test_rows_may_be_read_at_first_use():
    read = []
    table = ErrorTable(lambda: read.append(1) or [(ValueError, InvalidInput)])
    assert not read
    assert isinstance(table.error(ValueError("x"), "op", "subj", "demo"), InvalidInput)
    assert isinstance(table.error(TypeError("x"), "op", "subj", "demo"), ProviderUnavailable)
    assert read == [1]


def test_translating_raises_the_error_of_what_it_catches_only():
    with pytest.raises(NotFound, match="machine 'db'") as caught:
        with TABLE.translating("machine.get", "x", "demo") as where:
            where.subject = "machine 'db'"  # named better once known
            raise CodedError("GONE", "no such VM")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(Conflict, match="kept"), TABLE.translating("machine.get", "x", "demo"):
        raise Conflict("kept")
    with pytest.raises(KeyError), TABLE.translating("machine.get", "x", "demo"):
        raise KeyError("not a provider error: not caught")


def test_translating_may_keep_the_cause():
    cause = ValueError("why")
    with pytest.raises(ProviderUnavailable) as caught:
        with translating(TABLE.error, ValueError, "op", "subj", "demo", keep_cause=True, where="lab"):
            raise cause
    assert caught.value.__cause__ is cause and str(caught.value) == "subj (op): why"
