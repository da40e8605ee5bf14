"""Currency formatting (Babel) in zh-CN and en, and the money clause of a customer text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from baselines.tariffs import format_amount, money_clause
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
