"""Amounts as customers read them, formatted with Babel (CLDR data), in zh-CN and en.

* zh-CN, yuan: the amount and 元, as a Chinese SMS writes it: ``52.00元``,
  or with ``whole=True`` (the SMS's "约52元") ``52元``; grouping from CLDR
  (``1,234.50元``). Other currencies in zh-CN: CLDR's zh_CN currency format
  (``£12.34``).
* en: CLDR's English currency format: ``£12.34``, ``CN¥52.00`` (the symbol
  that tells yuan from yen); ``whole=True`` gives ``£12``.

Rounding: amounts are rounded half up (as bills round) to 0.01, or to a whole
unit with ``whole=True``, before Babel formats them.

>>> from decimal import Decimal
>>> format_amount(Decimal("52"), "CNY", "zh-CN"), format_amount(Decimal("51.5"), "CNY", "zh-CN", whole=True)
('52.00元', '52元')
>>> format_amount(Decimal("12.345"), "GBP", "en"), format_amount(Decimal("52"), "CNY", "en")
('£12.35', 'CN¥52.00')
>>> format_amount(Decimal("1234.5"), "CNY", "zh-CN"), format_amount(Decimal("12.5"), "GBP", "en", whole=True)
('1,234.50元', '£13')
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from babel import Locale
from babel.numbers import NumberPattern, parse_pattern

if TYPE_CHECKING:
    from meterwatch.contracts import Money

_LOCALES = {"zh-CN": "zh_CN", "en": "en"}
_CENT = Decimal("0.01")
_ONE = Decimal(1)
# Babel parses a locale and a pattern on every format_* call (~0.5 ms); parse once, apply many times
_PARSED: dict[str, Locale] = {}
_YUAN = (parse_pattern("#,##0.00"), parse_pattern("#,##0"))
_WHOLE_CURRENCY = parse_pattern("¤#,##0")
# unit prices (per kWh): at least 2 and at most 4 decimals
_PRICE = (parse_pattern("#,##0.00##"), parse_pattern("¤#,##0.00##"))


def _locale(language: str) -> Locale:
    loc = _PARSED.get(language)
    if loc is None:
        try:
            loc = _PARSED[language] = Locale.parse(_LOCALES[language])
        except KeyError:
            raise ValueError(f"unsupported language {language!r}; use one of {sorted(_LOCALES)}") from None
    return loc


_STANDARD: dict[str, NumberPattern] = {}


def _standard_currency(loc: Locale) -> NumberPattern:
    """The locale's standard currency pattern (looked up once per locale: Babel's lookup is slow)."""
    key = str(loc)
    pattern = _STANDARD.get(key)
    if pattern is None:
        found = loc.currency_formats["standard"]
        assert isinstance(found, NumberPattern)
        pattern = _STANDARD[key] = found
    return pattern


def format_amount(
    amount: Decimal | float,
    currency: str,
    language: str = "zh-CN",
    *,
    whole: bool = False,
    digits: int = 2,
) -> str:
    """``amount`` of ``currency`` for a reader of ``language`` (``zh-CN`` or ``en``); see the module doc.

    ``digits=4`` is for unit prices (2 to 4 decimals, rounded half up):

    >>> format_amount(Decimal("0.0283"), "CNY", "zh-CN", digits=4)
    '0.0283元'
    >>> format_amount(Decimal("0.05"), "GBP", "en", digits=4)
    '£0.05'
    """
    q = Decimal(str(amount)) if isinstance(amount, float) else amount
    if digits != 2 and not whole:
        q = q.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        return _price(q, currency, language)
    q = q.quantize(_ONE if whole else _CENT, rounding=ROUND_HALF_UP)
    if not q.is_signed():  # the common case: Babel's output for this layout, without Babel (see _layout)
        layout = _LAYOUTS.get((currency, language, whole))
        if layout is None:
            layout = _LAYOUTS[(currency, language, whole)] = _layout(currency, language, whole)
        if layout:
            return f"{layout[0]}{q:,f}{layout[1]}"
    return _babel_amount(q, currency, language, whole)


# (currency, language, whole) -> (text before, text after) the grouped digits, or () where the
# layout is not "#,##0[.00]" with the digits as Python's ``{:,f}`` writes them
_LAYOUTS: dict[tuple[str, str, bool], tuple[str, str] | tuple[()]] = {}
_PROBE = Decimal("1234567.89")


def _layout(currency: str, language: str, whole: bool) -> tuple[str, str] | tuple[()]:
    """What Babel writes around the number, found once by formatting a probe amount with Babel.

    >>> _layout("CNY", "zh-CN", False), _layout("GBP", "en", True)
    (('', '元'), ('£', ''))
    """
    q = _PROBE.quantize(_ONE if whole else _CENT, rounding=ROUND_HALF_UP)
    text = _babel_amount(q, currency, language, whole)
    digits = f"{q:,f}"
    if text.count(digits) != 1:
        return ()
    before, after = text.split(digits)
    if any(ch.isdigit() for ch in before + after):
        return ()
    return before, after


@lru_cache(maxsize=256)
def _price(q: Decimal, currency: str, language: str) -> str:
    """A unit price (few distinct values: cached)."""
    loc = _locale(language)
    if language == "zh-CN" and currency == "CNY":
        return str(_PRICE[0].apply(q, loc)) + "元"
    return str(_PRICE[1].apply(q, loc, currency=currency, currency_digits=False))


def _babel_amount(q: Decimal, currency: str, language: str, whole: bool) -> str:
    """``q`` (rounded already) formatted by Babel."""
    loc = _locale(language)
    if language == "zh-CN" and currency == "CNY":
        return str(_YUAN[whole].apply(q, loc)) + "元"
    if whole:
        return str(_WHOLE_CURRENCY.apply(q, loc, currency=currency, currency_digits=False))
    return str(_standard_currency(loc).apply(q, loc, currency=currency))


def money_clause(money: Money, language: str = "zh-CN") -> str:
    """The money part of a customer text (whole units, approximate), money first.

    >>> from decimal import Decimal
    >>> from meterwatch.contracts import Money
    >>> m = Money(currency="CNY", to_date=Decimal("51.80"), projected=Decimal("160.35"),
    ...           same_period=Decimal("48.20"))
    >>> money_clause(m, "zh-CN")
    '本期已用电约52元，按当前用量预计约160元，去年同期约48元'
    >>> money_clause(m.model_copy(update={"currency": "GBP", "same_period": None}), "en")
    'so far this cycle about £52, at this pace about £160 for the cycle'
    """

    def f(x: Decimal) -> str:
        return format_amount(x, money.currency, language, whole=True)

    if _locale(language).language == "zh":
        parts = [f"本期已用电约{f(money.to_date)}"]
        if money.projected is not None:
            parts.append(f"按当前用量预计约{f(money.projected)}")
        if money.same_period is not None:
            parts.append(f"去年同期约{f(money.same_period)}")
        return "，".join(parts)
    parts = [f"so far this cycle about {f(money.to_date)}"]
    if money.projected is not None:
        parts.append(f"at this pace about {f(money.projected)} for the cycle")
    if money.same_period is not None:
        parts.append(f"same period last year about {f(money.same_period)}")
    return ", ".join(parts)
