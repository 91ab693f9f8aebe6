"""Patches to moto's CloudWatch Logs."""

from __future__ import annotations


def filter_log_events_by_stream_prefix() -> None:
    """FilterLogEvents ignored `logStreamNamePrefix` (every stream of the group was searched, so a
    job's log read by prefix came with every other job's lines). As on AWS: only the streams whose
    names start with the prefix; with `logStreamNames` too, InvalidParameterException."""
    import json

    from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    original = LogsResponse.filter_log_events

    def filter_log_events(response):
        prefix = response._get_param("logStreamNamePrefix")
        if prefix is None:
            return original(response)
        if response._get_param("logStreamNames"):
            raise InvalidParameterException(
                msg="You cannot specify both logStreamNames and logStreamNamePrefix."
            )
        group = response.logs_backend.groups.get(response._get_param("logGroupName"))
        if group is None:
            raise ResourceNotFoundException()
        names = [name for name in group.streams if name.startswith(prefix)]
        if not names:
            return json.dumps({"events": [], "searchedLogStreams": []})
        return _with_stream_names(response, names, original)

    filter_log_events.__wrapped__ = original
    LogsResponse.filter_log_events = filter_log_events


def _with_stream_names(response, names: list[str], original):
    """Call moto's handler as if the request had named the streams instead of a prefix."""
    import json

    if getattr(response, "automated_parameter_parsing", False):
        saved = response.params
        response.params = {**saved, "logStreamNames": names}
        response.params.pop("logStreamNamePrefix", None)
    else:
        saved = response.body
        request = json.loads(saved or "{}")
        request.pop("logStreamNamePrefix", None)
        response.body = json.dumps({**request, "logStreamNames": names})
    try:
        return original(response)
    finally:
        if getattr(response, "automated_parameter_parsing", False):
            response.params = saved
        else:
            response.body = saved
