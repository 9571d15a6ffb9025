# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource states and the operations each Machine state allows (DSP0263 5.14.1.2)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput

# Machine states, Table 16.
CREATING = "CREATING"
STARTING = "STARTING"
STARTED = "STARTED"
STOPPING = "STOPPING"
STOPPED = "STOPPED"
PAUSING = "PAUSING"
PAUSED = "PAUSED"
SUSPENDING = "SUSPENDING"
SUSPENDED = "SUSPENDED"
CAPTURING = "CAPTURING"
RESTORING = "RESTORING"
DELETING = "DELETING"
ERROR = "ERROR"
FAILED = "FAILED"

MACHINE_STATES = (
    CREATING, STARTING, STARTED, STOPPING, STOPPED, PAUSING, PAUSED,
    SUSPENDING, SUSPENDED, CAPTURING, RESTORING, DELETING, ERROR, FAILED,
)
# States a machine rests in; the others are on the way to one of these.
STABLE_MACHINE_STATES = (STARTED, STOPPED, PAUSED, SUSPENDED, ERROR, FAILED)
# States a new machine may be asked to reach ("initialState" of a template).
INITIAL_STATES = (STARTED, STOPPED)

# Machine operations: the custom actions of 5.14.1.2 plus the generic ones.
START, STOP, RESTART, PAUSE, SUSPEND, CAPTURE = "start", "stop", "restart", "pause", "suspend", "capture"
EDIT, DELETE = "edit", "delete"
MACHINE_ACTIONS = (START, STOP, RESTART, PAUSE, SUSPEND, CAPTURE)
MACHINE_OPERATIONS = MACHINE_ACTIONS + (EDIT, DELETE)

# What each state allows. Resuming a paused or suspended machine is "start";
# a stop may be re-issued (with force) while STOPPING, as the spec permits.
_ALLOWED = {
    CREATING: (),
    STARTING: (STOP, DELETE),
    STARTED: (STOP, RESTART, PAUSE, SUSPEND, CAPTURE, EDIT, DELETE),
    STOPPING: (STOP, DELETE),
    STOPPED: (START, RESTART, CAPTURE, EDIT, DELETE),
    PAUSING: (STOP, DELETE),
    PAUSED: (START, STOP, EDIT, DELETE),
    SUSPENDING: (STOP, DELETE),
    SUSPENDED: (START, STOP, EDIT, DELETE),
    CAPTURING: (),
    RESTORING: (),
    DELETING: (),
    ERROR: (STOP, START, EDIT, DELETE),
    FAILED: (DELETE,),
}

# The state a machine shows while an action runs, and the one it ends in.
# Restart passes through STOPPING or STARTING depending on where it begins.
_TRANSIENT = {START: STARTING, STOP: STOPPING, PAUSE: PAUSING, SUSPEND: SUSPENDING,
              CAPTURE: CAPTURING, DELETE: DELETING}
_RESULT = {START: STARTED, STOP: STOPPED, RESTART: STARTED, PAUSE: PAUSED,
           SUSPEND: SUSPENDED, CAPTURE: None, EDIT: None, DELETE: None}


def allowed_operations(state):
    """Operations (names) a Machine in ``state`` allows, in a stable order."""
    if state not in _ALLOWED:
        raise InvalidInput("unknown machine state '%s'" % state, attribute="state")
    return _ALLOWED[state]


def is_allowed(state, operation):
    return operation in allowed_operations(state)


def check_allowed(state, operation, what="machine"):
    """Raise Conflict naming the state when ``operation`` is not allowed."""
    if operation not in MACHINE_OPERATIONS:
        raise InvalidInput("unknown machine operation '%s'" % operation, attribute="action")
    if not is_allowed(state, operation):
        raise Conflict("cannot %s %s in state %s (allowed: %s)"
                       % (operation, what, state, ", ".join(allowed_operations(state)) or "none"))


def transient_state(state, operation):
    """State shown while ``operation`` runs on a machine currently in ``state``."""
    if operation == RESTART:
        return STOPPING if state == STARTED else STARTING
    return _TRANSIENT.get(operation, state)


def result_state(state, operation):
    """State a machine reaches when ``operation`` succeeds (``None`` once deleted)."""
    if operation == DELETE:
        return None
    return _RESULT.get(operation) or state


# Other resources' states.
VOLUME_STATES = (CREATING, "AVAILABLE", CAPTURING, DELETING, ERROR)
IMAGE_STATES = (CREATING, "AVAILABLE", DELETING, ERROR)
NETWORK_STATES = (CREATING, STARTING, STARTED, STOPPING, STOPPED, DELETING, ERROR)
SYSTEM_STATES = (CREATING, STARTING, STARTED, STOPPING, STOPPED, PAUSING, PAUSED,
                 SUSPENDING, SUSPENDED, "MIXED", DELETING, ERROR)
JOB_STATES = ("QUEUED", "RUNNING", "FAILED", "SUCCESS", "STOPPING", "STOPPED")
JOB_FINAL_STATES = ("FAILED", "SUCCESS", "STOPPED")

# Which operations take a machine from one stable state to another: the module
# uses this to find the shortest way to a requested state.
_PATHS = {
    (STOPPED, STARTED): (START,),
    (STOPPED, PAUSED): (START, PAUSE),
    (STOPPED, SUSPENDED): (START, SUSPEND),
    (STARTED, STOPPED): (STOP,),
    (STARTED, PAUSED): (PAUSE,),
    (STARTED, SUSPENDED): (SUSPEND,),
    (PAUSED, STARTED): (START,),
    (PAUSED, STOPPED): (STOP,),
    (PAUSED, SUSPENDED): (START, SUSPEND),
    (SUSPENDED, STARTED): (START,),
    (SUSPENDED, STOPPED): (STOP,),
    (SUSPENDED, PAUSED): (START, PAUSE),
    (ERROR, STOPPED): (STOP,),
    (ERROR, STARTED): (START,),
}


def path_to(current, wanted):
    """Operations that bring a machine from ``current`` to ``wanted`` (empty if there)."""
    if current == wanted:
        return ()
    try:
        return _PATHS[(current, wanted)]
    except KeyError:
        raise Conflict("no way to bring a machine from state %s to %s" % (current, wanted)) from None
