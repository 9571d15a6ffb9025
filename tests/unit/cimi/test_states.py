"""Every Machine state against every operation (DSP0263 5.14.1.2)."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput

# The expected table, written out independently of states.py on purpose.
EXPECTED = {
    "CREATING": set(),
    "STARTING": {"stop", "delete"},
    "STARTED": {"stop", "restart", "pause", "suspend", "capture", "edit", "delete"},
    "STOPPING": {"stop", "delete"},
    "STOPPED": {"start", "restart", "capture", "edit", "delete"},
    "PAUSING": {"stop", "delete"},
    "PAUSED": {"start", "stop", "edit", "delete"},
    "SUSPENDING": {"stop", "delete"},
    "SUSPENDED": {"start", "stop", "edit", "delete"},
    "CAPTURING": set(),
    "RESTORING": set(),
    "DELETING": set(),
    "ERROR": {"start", "stop", "edit", "delete"},
    "FAILED": {"delete"},
}


def test_table_covers_every_state():
    assert set(EXPECTED) == set(states.MACHINE_STATES)


@pytest.mark.parametrize("state", states.MACHINE_STATES)
@pytest.mark.parametrize("operation", states.MACHINE_OPERATIONS)
def test_state_operation_pair(state, operation):
    allowed = operation in EXPECTED[state]
    assert states.is_allowed(state, operation) is allowed
    if allowed:
        states.check_allowed(state, operation)
    else:
        with pytest.raises(Conflict) as err:
            states.check_allowed(state, operation, "machine 'vm1'")
        assert state in str(err.value) and operation in str(err.value) and "vm1" in str(err.value)


def test_unknown_state_and_operation_are_input_errors():
    with pytest.raises(InvalidInput):
        states.allowed_operations("RUNNING")
    with pytest.raises(InvalidInput):
        states.check_allowed("STARTED", "explode")


@pytest.mark.parametrize("state,operation,transient,result", [
    ("STOPPED", "start", "STARTING", "STARTED"),
    ("PAUSED", "start", "STARTING", "STARTED"),
    ("SUSPENDED", "start", "STARTING", "STARTED"),
    ("STARTED", "stop", "STOPPING", "STOPPED"),
    ("STARTED", "restart", "STOPPING", "STARTED"),
    ("STOPPED", "restart", "STARTING", "STARTED"),
    ("STARTED", "pause", "PAUSING", "PAUSED"),
    ("STARTED", "suspend", "SUSPENDING", "SUSPENDED"),
    ("STARTED", "capture", "CAPTURING", "STARTED"),
    ("STOPPED", "delete", "DELETING", None),
])
def test_transitions(state, operation, transient, result):
    assert states.transient_state(state, operation) == transient
    assert states.result_state(state, operation) == result


STABLE = ("STARTED", "STOPPED", "PAUSED", "SUSPENDED")


@pytest.mark.parametrize("current", STABLE)
@pytest.mark.parametrize("wanted", STABLE)
def test_path_to_replays_to_the_wanted_state(current, wanted):
    state = current
    for operation in states.path_to(current, wanted):
        states.check_allowed(state, operation)
        state = states.result_state(state, operation)
    assert state == wanted


def test_path_from_failed_is_refused():
    with pytest.raises(Conflict):
        states.path_to("FAILED", "STARTED")
