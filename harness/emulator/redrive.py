"""RedriveExecution on the local AWS's Step Functions engine (moto's, which has none).

A failed, aborted or timed-out STANDARD execution continues, under the same ARN, with the
same definition and input, from the top-level state where it stopped: that state runs
again with the input it was entered with, and the variables the execution had assigned,
and the history goes on after an `ExecutionRedriven` event. States that completed are not
run again. In a Map or Parallel state that runs again, as on AWS, only the iterations and
branches that did not succeed run: the others give the output they gave before (`Finished`
keeps them, per execution, for the life of the execution in this process).
"""

from __future__ import annotations

import datetime
import json
import threading
import weakref

# History event types ending in these mark a state's entry and exit.
ENTERED, EXITED = "StateEntered", "StateExited"
REDRIVABLE_STATUSES = ("FAILED", "ABORTED", "TIMED_OUT")


class NotRedrivable(Exception):
    """AWS's ExecutionNotRedrivable, with its reason."""


def resume_point(events: list[dict], top_level_states: set[str]) -> tuple[str, str] | None:
    """(name, input JSON) of the last top-level state entered and not exited, or None when
    the execution stopped before entering one (it then starts again from StartAt)."""
    open_state = None
    for event in events:
        kind = getattr(event.get("type"), "value", event.get("type")) or ""
        if kind.endswith(ENTERED):
            details = event.get("stateEnteredEventDetails") or {}
            if details.get("name") in top_level_states:
                open_state = (details["name"], details.get("input", "{}"))
        elif kind.endswith(EXITED):
            details = event.get("stateExitedEventDetails") or {}
            if open_state is not None and details.get("name") == open_state[0]:
                open_state = None
    return open_state


class Finished:
    """The outputs of an execution's Map iterations and Parallel branches that succeeded, by
    (kind, state name, index, input), with the attempt (redrive count) that produced them. A
    redriven attempt takes an output an earlier attempt produced for the same input instead of
    running that iteration or branch again."""

    def __init__(self) -> None:
        self._outputs: dict[tuple, tuple[int, object]] = {}
        self._lock = threading.Lock()

    def record(self, where: tuple, attempt: int, output) -> None:
        with self._lock:
            self._outputs.setdefault(where, (attempt, output))

    def earlier(self, where: tuple, attempt: int) -> tuple[bool, object]:
        """(True, output) when an attempt before this one produced it."""
        with self._lock:
            found = self._outputs.get(where)
        if found is None or found[0] >= attempt:
            return False, None
        return True, found[1]


# One Finished per execution, found from any frame of it: its event manager is shared by all
# its frames and kept across redrives (continue_execution below).
_FINISHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FINISHED_LOCK = threading.Lock()


def finished_of(env) -> tuple[Finished, int]:
    """The execution's Finished, and the attempt this frame belongs to (0, then each redrive)."""
    with _FINISHED_LOCK:
        finished = _FINISHED.get(env.event_manager)
        if finished is None:
            finished = _FINISHED[env.event_manager] = Finished()
    attempt = env.states.context_object.context_object_data["Execution"].get("RedriveCount", 0)
    return finished, attempt


def place(kind: str, state: str, index: int, value) -> tuple:
    """The key of one iteration or branch: what it is, where, and the input it got."""
    return kind, state, index, json.dumps(value, sort_keys=True, default=str)


def redrive_status(execution) -> tuple[str, str | None]:
    """DescribeExecution's redriveStatus and redriveStatusReason for an execution."""
    status = execution.status
    if status in REDRIVABLE_STATUSES:
        return "REDRIVABLE", None
    return "NOT_REDRIVABLE", f"Execution is {status} and cannot be redriven"


def redrive(execution) -> datetime.datetime:
    """Continue a finished execution (a moto parser Execution) from where it stopped; the
    redrive date. NotRedrivable when AWS would refuse."""
    from moto.stepfunctions.parser.api import (
        ExecutionRedrivenEventDetails,
        ExecutionStatus,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if execution.sm_type != "STANDARD":
        raise NotRedrivable("This operation is not supported by EXPRESS state machines")
    status, reason = redrive_status(execution)
    if status != "REDRIVABLE":
        raise NotRedrivable(reason)
    worker = execution.exec_worker
    previous = worker.env
    program = worker._get_evaluation_entrypoint()
    events = previous.event_manager.get_event_history()
    point = resume_point(events, set(program.states.states))
    count = getattr(execution, "redrive_count", 0) + 1
    redriven_at = datetime.datetime.now(tz=datetime.UTC)

    def continue_execution() -> None:
        if point is not None:
            program.start_at = StartAt(point[0])
        env = worker._get_evaluation_environment()
        env.event_manager = previous.event_manager  # one history, its event ids going on
        env.variable_store = previous.variable_store
        context = env.states.context_object.context_object_data["Execution"]
        context["RedriveCount"] = count
        context["RedriveTime"] = redriven_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        if point is not None:
            env.states.reset(input_value=json.loads(point[1]))
        worker.env = env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(
                executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=count)
            ),
            update_source_event_id=False,
        )
        program.eval(env)
        worker._execution_communication.terminated()

    execution.redrive_count, execution.redrive_date = count, redriven_at
    execution.exec_status = ExecutionStatus.RUNNING
    execution.error = execution.cause = execution.output = execution.stop_date = None
    worker._execution_logic = continue_execution
    worker.start()
    return redriven_at
