"""Money is a Decimal amount with an ISO 4217 currency; never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, field_validator

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e15")  # far above any invoice; keeps every quantize within 28 digits


@lru_cache(maxsize=1)
def _iso_currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    """True for a current ISO 4217 code such as EUR."""
    return code in _iso_currencies()


def to_decimal(value: object) -> Decimal:
    """Exact conversion of a vendor value (str, int, Decimal) to Decimal.

    Floats go through their shortest repr so 0.1 stays 0.1; anything that is
    not a finite number raises ValueError naming the value.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def bounded(value: Decimal, what: str = "amount") -> Decimal:
    """``value``, or a ValueError when it is beyond any real invoice."""
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(f"{what} {value} is out of range (at most {MAX_AMOUNT:,.0f} in magnitude)")
    return value


def round_cents(value: Decimal) -> Decimal:
    """Commercial rounding to the cent (half up), as French invoices print it."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Money(BaseModel):
    """An amount in one currency. Arithmetic refuses to mix currencies."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, v: str) -> str:
        code = v.strip().upper()
        if not is_currency(code):
            raise ValueError(f"unknown currency code {v!r} (expected ISO 4217, e.g. EUR)")
        return code

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, v: object) -> Decimal:
        return bounded(to_decimal(v))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal("0"), currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def rounded(self) -> Money:
        return Money(amount=round_cents(self.amount), currency=self.currency)

    def is_zero(self) -> bool:
        return round_cents(self.amount) == 0

    def __str__(self) -> str:
        return f"{round_cents(self.amount)} {self.currency}"
