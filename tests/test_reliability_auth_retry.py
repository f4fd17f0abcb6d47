"""A write the vendor answered 401 was not performed (RFC 9110 §15.5.2: "the
request has not been applied"): refresh the token and send it again, even
when the write cannot be deduplicated."""

from __future__ import annotations

import pytest

from pouracquit.common.calls import CallMeter, RetryPolicy, VendorClient, error_for_status
from pouracquit.common.errors import AuthExpired, PouracquitError, RetryableError


class FakeVendor:
    """Answers 401 to a stale token; performs the write with a fresh one."""

    def __init__(self, expired_answers: int = 1) -> None:
        self.token = "old"
        self.refreshes = 0
        self.performed: list[dict[str, str]] = []
        self.expired_answers = expired_answers

    def refresh(self) -> None:
        self.refreshes += 1
        self.token = f"fresh-{self.refreshes}"

    def create(self, body: dict[str, str]) -> dict[str, str]:
        if self.token == "old" or self.expired_answers > self.refreshes:
            raise error_for_status("fake", 401, "token expired")
        self.performed.append(body)
        return {"Id": str(len(self.performed))}


def _client(vendor: FakeVendor, refresh: bool = True) -> VendorClient:
    def classify(exc: Exception) -> PouracquitError:
        return RetryableError(str(exc))

    return VendorClient("fake", classify, CallMeter(), retry=RetryPolicy(attempts=4, backoff_base=0.001),
                        refresh=vendor.refresh if refresh else None)


def test_write_after_401_refreshes_once_and_is_performed_once() -> None:
    vendor = FakeVendor()
    answer = _client(vendor).call("receipt.create", lambda: vendor.create({"DocNumber": "F-1"}), replay_safe=False)
    assert answer == {"Id": "1"}
    assert vendor.refreshes == 1
    assert vendor.performed == [{"DocNumber": "F-1"}]


def test_write_refused_by_a_refreshed_token_too_gives_up_after_the_attempts() -> None:
    vendor = FakeVendor(expired_answers=99)
    with pytest.raises(AuthExpired):
        _client(vendor).call("receipt.create", lambda: vendor.create({"DocNumber": "F-1"}), replay_safe=False)
    assert vendor.performed == []
    assert vendor.refreshes == 3  # one before each of the 3 retries of 4 attempts


def test_write_without_a_refresh_hook_is_not_resent() -> None:
    # A private-app token cannot be renewed: sending again would only get the same 401.
    vendor = FakeVendor()
    calls = []

    def create() -> dict[str, str]:
        calls.append(1)
        return vendor.create({"DocNumber": "F-1"})

    with pytest.raises(AuthExpired):
        _client(vendor, refresh=False).call("receipt.create", create, replay_safe=False)
    assert len(calls) == 1


def test_write_that_may_have_committed_is_still_not_resent() -> None:
    calls = []

    def create() -> None:
        calls.append(1)
        raise error_for_status("fake", 502, "bad gateway")

    with pytest.raises(RetryableError):
        _client(FakeVendor()).call("receipt.create", create, replay_safe=False)
    assert len(calls) == 1
