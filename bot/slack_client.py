"""The Slack Web API client opsbot uses everywhere: each call counted by method and result, and traced."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.slack_response import SlackResponse

from workflows.telemetry import SLACK_CALLS, span


def result_of(status: int | None, error: str | None) -> str:
    """`ok`, `ratelimited`, `http_5xx`, or Slack's error code (`channel_not_found`, ...)."""
    if status == 429:
        return "ratelimited"
    if status is not None and status >= 500:
        return "http_5xx"
    return error or "ok"


class CountedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, counting each 429 it absorbs (the call's own result is counted once it ends)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        retry = super()._can_retry(state=state, request=request, response=response, error=error)
        if retry:
            SLACK_CALLS.labels(request.url.rstrip("/").rsplit("/", 1)[-1], "ratelimited").inc()
        return retry


class InstrumentedWebClient(WebClient):
    """A WebClient whose every API call is a span (`slack <method>`) and a count in `opsbot_slack_api_calls`."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        result = "connection_error"
        with span(f"slack {api_method}", attributes={"slack.method": api_method}) as current:
            try:
                response = super().api_call(api_method, **kwargs)
                result = "ok"
                return response
            except SlackApiError as exc:
                result = result_of(exc.response.status_code, exc.response.get("error"))
                raise
            finally:
                current.set_attribute("slack.result", result)
                SLACK_CALLS.labels(api_method, result).inc()
