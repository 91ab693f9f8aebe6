"""The watcher reads only the events it has not seen (AWS throttles GetExecutionHistory)."""

from datetime import UTC, datetime

from harness import execute


class PagedHistory:
    """GetExecutionHistory as AWS pages it: newest first on request, token = next event id."""

    def __init__(self, count: int):
        self.events = [self._event(i) for i in range(1, count + 1)]
        self.calls = 0

    @staticmethod
    def _event(event_id: int) -> dict:
        return {
            "id": event_id,
            "type": "PassStateEntered",
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
            "stateEnteredEventDetails": {"name": f"S{event_id}"},
        }

    def get_execution_history(self, executionArn, maxResults, reverseOrder=False, nextToken=None):
        self.calls += 1
        events = self.events[::-1] if reverseOrder else list(self.events)
        if nextToken:
            events = [
                e
                for e in events
                if (e["id"] <= int(nextToken) if reverseOrder else e["id"] >= int(nextToken))
            ]
        answer = {"events": events[:maxResults]}
        if len(events) > maxResults:
            answer["nextToken"] = str(events[maxResults]["id"])
        return answer

    def add(self, count: int) -> None:
        start = len(self.events) + 1
        self.events += [self._event(i) for i in range(start, start + count)]


def test_a_poll_reads_back_only_to_the_last_event_seen():
    history = PagedHistory(2500)
    seen: list[str] = []
    watcher = execute.Watcher(history, logs=None, report=seen.append, show_logs=False)

    watcher._poll_history("arn")
    assert len(seen) == 2500 and seen[0] == "-> S1" and seen[-1] == "-> S2500"
    assert history.calls == 3  # the whole history once, in pages of 1000

    history.calls = 0
    history.add(3)
    watcher._poll_history("arn")
    assert seen[-3:] == ["-> S2501", "-> S2502", "-> S2503"] and len(seen) == 2503
    assert history.calls == 1

    history.calls = 0
    watcher._poll_history("arn")
    assert len(seen) == 2503 and history.calls == 1


class Stopped(PagedHistory):
    """An execution stopped while its one state ran: entered, never exited."""

    def describe_execution(self, executionArn):
        return {"status": "ABORTED", "stopDate": datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)}


def test_an_ended_execution_leaves_no_step_running():
    watcher = execute.Watcher(Stopped(1), logs=None, report=lambda line: None, show_logs=False, poll_s=0)
    result = watcher.wait("arn")
    assert result.status == "ABORTED"
    (step,) = result.steps
    assert (step.name, step.status, step.seconds) == ("S1", "ABORTED", 30.0)
