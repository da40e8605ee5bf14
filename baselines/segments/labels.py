"""Segment labels and kinds: what distinguishes a segment's centre, in words (en, zh-CN).

A centre is described from its z-scores (standard units of every feature): the features
furthest from the average customer (|z| >= 0.5) name it, through a small vocabulary keyed
on words in the feature names (``level``, ``variab``, ``season``, ``trend``, ``night``,
``weekend``, ``zero``, ``arrears``, ``complaint``, ``rented``, ``tariff``). Its *kind* puts
it in the source documents' terms: ordinary, premium, potential, sensitive, risk.

>>> unique_labels({0: {"level_kwh_day": 1.2}, 1: {"level_kwh_day": 1.1}, 2: {"level_kwh_day": 0.0}})[1][:2]
('high use (1)', '用电量大（1）')
"""

from __future__ import annotations

from collections.abc import Mapping

Label = tuple[str, str, list[str]]  # (en, zh-CN, characteristics)

# keyword in the feature name -> (high en, high zh, low en, low zh); None = no label on that side
_VOCAB: list[tuple[tuple[str, ...], tuple[str | None, str | None, str | None, str | None]]] = [
    (("level",), ("high use", "用电量大", "low use", "用电量小")),
    (("variab", "volatil", "cv"), ("volatile", "波动大", "steady", "用电平稳")),
    (("season",), ("strongly seasonal", "季节性强", "flat across seasons", "四季平稳")),
    (("trend", "growth"), ("growing use", "用电增长", "declining use", "用电下降")),
    (("night",), ("night-time use", "夜间用电多", "daytime use", "白天用电为主")),
    (("weekend",), ("home at weekends", "周末用电多", "weekday use", "工作日用电多")),
    (("zero", "vacan"), ("often vacant", "常有空置", None, None)),
    (("arrears",), ("in arrears", "有欠费", None, None)),
    (("complaint",), ("complaint-prone", "投诉较多", None, None)),
    (("rented", "occupancy"), ("renters", "租户", "homeowners", "自有住房")),
    (("tariff",), ("commercial/industrial", "工商业", "residential", "居民")),
]


_USE_ADJECTIVES = frozenset({"volatile", "steady"})


def _vocab(name: str) -> tuple[str | None, str | None, str | None, str | None]:
    for keys, words in _VOCAB:
        if any(k in name for k in keys):
            return words
    return (f"high {name}", f"{name}高", f"low {name}", f"{name}低")


def describe(z: Mapping[str, float], threshold: float = 0.5, top: int = 2) -> tuple[str, str, list[str]]:
    """Label a centre from its z-scores: (label en, label zh-CN, characteristics).

    >>> describe({"level_kwh": 1.2, "variability": 0.8, "trend": 0.1})[:2]
    ('high, volatile use', '用电量大、波动大')
    >>> describe({"level_kwh": -0.1, "variability": 0.2})[:2]
    ('ordinary, typical use', '普通用电')
    >>> describe({"level_kwh": -0.9, "arrears_amount": 2.0})[:2]
    ('in arrears, low use', '有欠费、用电量小')
    >>> describe({"level_kwh": 0.9, "weekend_ratio": 0.6})[0]
    'high use, home at weekends'
    """
    ranked = sorted(z.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    en: list[str] = []
    zh: list[str] = []
    chars: list[str] = []
    for name, value in ranked:
        hi_en, hi_zh, lo_en, lo_zh = _vocab(name)
        word_en, word_zh = (hi_en, hi_zh) if value > 0 else (lo_en, lo_zh)
        if abs(value) >= threshold and word_en is not None and word_zh is not None:
            chars.append(f"{word_en} ({name} {value:+.1f} sd)")
            if len(en) < top and word_en not in en:
                en.append(word_en)
                zh.append(word_zh)
    if not en:
        return "ordinary, typical use", "普通用电", chars or ["close to the average customer"]
    # "high use" + "volatile" reads better as "high, volatile use"; "high use" + "renters" does not
    if len(en) == 2 and en[0].endswith(" use") and en[1].endswith(" use"):
        label = f"{en[0][:-4]}, {en[1]}"
    elif len(en) == 2 and en[0].endswith(" use") and en[1] in _USE_ADJECTIVES:
        label = f"{en[0][:-4]}, {en[1]} use"
    else:
        label = ", ".join(en)
    return label, "、".join(zh), chars


KINDS = ("ordinary", "premium", "potential", "sensitive", "risk")


def kind_of(z: Mapping[str, float], threshold: float = 0.5) -> str:
    """The segment's kind in the source documents' terms, from its centre's z-scores.

    risk: in arrears (credit risk); sensitive: complaint-prone, or volatile / strongly
    seasonal use (bill shocks); potential: growing use; premium: high, steady use;
    ordinary: the rest.

    >>> kind_of({"level_kwh_day": 1.0, "variability": -0.2}), kind_of({"trend": 0.9, "level_kwh_day": 0.8})
    ('premium', 'potential')
    >>> kind_of({"arrears_amount": 1.2, "trend": 2.0}), kind_of({"variability": 0.7}), kind_of({})
    ('risk', 'sensitive', 'ordinary')
    """

    def top(*keys: str) -> float:
        vals = [v for n, v in z.items() if any(k in n for k in keys)]
        return max(vals) if vals else 0.0

    if top("arrears") >= threshold:
        return "risk"
    if top("complaint") >= threshold:
        return "sensitive"
    if top("trend", "growth") >= threshold:
        return "potential"
    if top("level") >= threshold and top("variab", "volatil") < threshold:
        return "premium"
    if top("variab", "volatil") >= threshold or top("season") >= 2 * threshold:
        return "sensitive"
    return "ordinary"


def unique_labels(zcentres: Mapping[int, Mapping[str, float]]) -> dict[int, Label]:
    """Labels of all segments at once, in id order; a repeated label gets the segment id as a suffix.

    >>> [v[0] for v in unique_labels({0: {"trend": 0.9}, 1: {"trend": 1.0}, 2: {"trend": -1.0}}).values()]
    ['growing use', 'growing use (1)', 'declining use']
    """
    out: dict[int, Label] = {}
    taken: set[str] = set()
    for k in sorted(zcentres):
        en, zh, chars = describe(zcentres[k])
        if en in taken:
            en, zh = f"{en} ({k})", f"{zh}（{k}）"
        taken.add(en)
        out[k] = (en, zh, chars)
    return out
