"""Helpers the connector tests share (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pouracquit.connectors.registry import ConnectorContext
from pouracquit.core.calls import CallMeter, RetryPolicy


class DictTokens:
    """A TokenStore in a dict, recording every put."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.puts: list[tuple[str, str]] = []

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def put(self, name: str, value: str) -> None:
        self.values[name] = value
        self.puts.append((name, value))


def fast_context(tokens: DictTokens, window_scale: float, connection: str = "t") -> ConnectorContext:
    """A connector context with quick retries and vendor windows scaled like the sandbox's."""
    return ConnectorContext(connection=connection, meter=CallMeter(), tokens=tokens,
                            retry=RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.5),
                            window_scale=window_scale)
