"""The AWS adapter's contract: error classification, and no blind re-sends of mutating calls."""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from adapters.aws import BotoAdapters, classify
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError


def _client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateDBInstanceReadReplica")


def test_errors_map_onto_the_retry_contract() -> None:
    """Throttling is transient, a lost answer is outcome-unknown, a bad request permanent, a taken id its own kind."""
    assert isinstance(classify(_client_error("Throttling"), "op"), TransientError)
    assert isinstance(classify(ConnectTimeoutError(endpoint_url="http://x"), "op"), TransientError)
    assert isinstance(classify(EndpointConnectionError(endpoint_url="http://x"), "op"), TransientError)
    assert isinstance(classify(ReadTimeoutError(endpoint_url="http://x"), "op"), OutcomeUnknown)
    assert isinstance(classify(_client_error("DBInstanceAlreadyExists"), "op"), AlreadyExists)
    assert isinstance(classify(_client_error("InvalidParameterCombination"), "op"), PermanentError)


def test_error_messages_are_redacted() -> None:
    """A credential echoed in an AWS error message does not survive classification."""
    err = classify(_client_error("InvalidParameterValue", "bad url postgresql://u:CANARY-31@h/db"), "op")
    assert "CANARY-31" not in str(err)


def test_reads_retry_in_botocore_but_writes_are_sent_once(aws: str) -> None:
    """Standard retry mode everywhere; mutating calls get a single attempt so a lost answer is observed, not resent."""
    adapter = BotoAdapters(endpoint_url=aws).rds("us-east-1")
    reads, writes = adapter._reads, adapter._writes
    assert reads.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert writes.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
