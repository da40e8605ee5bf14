"""Currency formatting (Babel) in zh-CN and en, and the money clause of a customer text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.tariffs import fmt, format_amount, money_clause
from meterwatch.contracts import Money

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "language", "whole", "text"),
    [
        (D("52"), "CNY", "zh-CN", False, "52.00元"),
        (D("52.004"), "CNY", "zh-CN", False, "52.00元"),
        (D("0.005"), "CNY", "zh-CN", False, "0.01元"),  # half up, as bills round
        (D("12345.6"), "CNY", "zh-CN", False, "12,345.60元"),
        (D("52.5"), "CNY", "zh-CN", True, "53元"),
        (D("-3.2"), "CNY", "zh-CN", False, "-3.20元"),
        (D("12.34"), "GBP", "zh-CN", False, "£12.34"),
        (D("12.34"), "GBP", "en", False, "£12.34"),
        (D("1234.5"), "GBP", "en", False, "£1,234.50"),
        (D("12.5"), "GBP", "en", True, "£13"),
        (D("52"), "CNY", "en", False, "CN¥52.00"),
        (D("160.4"), "CNY", "en", True, "CN¥160"),
        (52.345, "CNY", "zh-CN", False, "52.35元"),  # a float is read by its shortest repr, then half up
    ],
)
def test_format_amount(amount: Decimal | float, currency: str, language: str, whole: bool, text: str) -> None:
    assert format_amount(amount, currency, language, whole=whole) == text


def test_unsupported_language_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        format_amount(D("1"), "EUR", "fr")


def test_money_clause_puts_money_first_in_whole_units() -> None:
    m = Money(currency="CNY", to_date=D("52.40"), projected=D("159.50"), same_period=D("47.99"))
    assert money_clause(m, "zh-CN") == "本期已用电约52元，按当前用量预计约160元，去年同期约48元"
    assert money_clause(m, "en") == (
        "so far this cycle about CN¥52, at this pace about CN¥160 for the cycle, "
        "same period last year about CN¥48"
    )
    assert money_clause(Money(currency="CNY", to_date=D("8.00")), "zh-CN") == "本期已用电约8元"


CURRENCIES = ["CNY", "GBP", "EUR", "USD", "JPY", "HKD"]


@settings(max_examples=400, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=4),
    currency=st.sampled_from(CURRENCIES),
    language=st.sampled_from(["zh-CN", "en"]),
    whole=st.booleans(),
)
def test_the_layout_path_writes_what_babel_writes(
    amount: Decimal, currency: str, language: str, whole: bool
) -> None:
    # format_amount skips Babel for the common layouts (fmt._layout); Babel itself is the reference
    q = amount.quantize(D(1) if whole else D("0.01"), rounding=ROUND_HALF_UP)
    assert format_amount(amount, currency, language, whole=whole) == fmt._babel_amount(
        q, currency, language, whole
    )


def test_the_layout_path_is_taken_for_the_shipped_currencies() -> None:
    # the reference test above would pass with Babel on every call too: this one fails if the shortcut is gone
    fmt._LAYOUTS.clear()
    for currency in ("CNY", "GBP"):
        for language in ("zh-CN", "en"):
            format_amount(D("52.3"), currency, language)
            assert fmt._LAYOUTS[(currency, language, False)], (currency, language)
    assert fmt._LAYOUTS[("CNY", "zh-CN", False)] == ("", "元")
