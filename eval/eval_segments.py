"""Evaluate the online segmenter on the 3,500 London households.

Run:  python eval/eval_segments.py [--as-of 2013-06-30] [--seed 0] [--limit N] [--json]

Prints: the segment-size distribution (share of customers per segment; the issue asks
for at most 7 segments, none under 5 % or over 40 %), each segment's label and what
characterises it, and stability:

* pass stability: share of customers whose segment changes on one more pass over the
  same features (after three passes);
* month stability: share of customers whose segment changes when their features move
  on by one month (features as of ``as-of`` -> as of ``as-of`` + 1 month);
* no-hysteresis reference: the same month figure with ``margin = 0`` (measured in the
  same run), reported as a ratio, so the effect of hysteresis is visible.

Also reports the throughput of ``Segmenter.observe`` (updates/s) against a reference
loop measured in the same run (computing plain squared distances to 7 centres in Python).
Machine: 2 cores shared with other jobs; figures are ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from baselines.segments import Segmenter, SegmenterConfig  # noqa: E402
from meterwatch.cli.segment_features import london_engine_features  # noqa: E402


def _next_month(d: dt.date) -> dt.date:
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    # last day of the next month
    first_after = dt.date(y + 1, 1, 1) if m == 12 else dt.date(y, m + 1, 1)
    return first_after - dt.timedelta(days=1)


def run_passes(
    cfg: SegmenterConfig, feats1: dict[str, dict[str, float]], feats2: dict[str, dict[str, float]], seed: int
) -> dict[str, object]:
    seg = Segmenter(cfg)
    current: dict[str, int | None] = {}
    ids = sorted(feats1)
    rng = random.Random(seed)
    order = ids[:]
    rng.shuffle(order)

    def one_pass(feats: dict[str, dict[str, float]], order: list[str]) -> int:
        changed = 0
        for cid in order:
            if cid not in feats:
                continue
            for a in seg.observe(cid, feats[cid], current.get(cid)):
                if current.get(a.customer_id) is not None:
                    changed += 1
                current[a.customer_id] = seg.resolve(a.segment.id)
        # merges: customers of a retired segment now belong to its successor
        for cid, k in current.items():
            current[cid] = seg.resolve(k)
        return changed

    t0 = time.perf_counter()
    one_pass(feats1, order)
    updates = len(order)
    elapsed = time.perf_counter() - t0
    for _ in range(2):  # settle: moves that wait for a second vote, centres that still learn
        rng.shuffle(order)
        one_pass(feats1, order)
    before = dict(current)
    rng.shuffle(order)
    one_pass(feats1, order)
    pass_change = sum(1 for c in ids if current.get(c) != before.get(c)) / len(ids)
    before = dict(current)
    rng.shuffle(order)
    one_pass(feats2, order)
    common = [c for c in ids if c in feats2]
    month_change = sum(1 for c in common if current.get(c) != before.get(c)) / max(len(common), 1)
    rng.shuffle(order)
    one_pass(feats2, order)  # the same new features once more: moves that waited for a second vote
    month_settled = sum(1 for c in common if current.get(c) != before.get(c)) / max(len(common), 1)
    sizes = Counter(v for v in current.values() if v is not None)
    return {
        "segmenter": seg,
        "sizes": sizes,
        "n": sum(sizes.values()),
        "pass_change": pass_change,
        "month_change": month_change,
        "month_settled": month_settled,
        "updates_per_s": updates / elapsed,
    }


def reference_rate(feats: dict[str, dict[str, float]], k: int = 7) -> float:
    """Updates/s of a minimal loop: squared distance of each customer to k fixed centres."""
    rows = [list(f.values()) for f in feats.values()]
    centres = [rows[i] for i in range(k)]
    t0 = time.perf_counter()
    acc = 0
    for _ in range(2):
        for r in rows:
            dists = [sum((a - b) ** 2 for a, b in zip(r, c, strict=True)) for c in centres]
            acc += dists.index(min(dists))
    return 2 * len(rows) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2013, 6, 30))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N households")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    f1, f2 = london_engine_features([args.as_of, _next_month(args.as_of)], limit=args.limit)
    t_feat = time.perf_counter() - t0

    cfg = SegmenterConfig(seed=args.seed)
    res = run_passes(cfg, f1, f2, args.seed)
    ref = run_passes(SegmenterConfig(seed=args.seed, margin=0.0, votes=1), f1, f2, args.seed)
    base_rate = reference_rate(f1)
    seg = res["segmenter"]
    assert isinstance(seg, Segmenter)
    sizes: Counter[int] = res["sizes"]  # type: ignore[assignment]
    n = int(res["n"])  # type: ignore[call-overload]
    shares = {k: sizes[k] / n for k in sorted(sizes)}
    ok = len(shares) <= 7 and all(0.05 <= s <= 0.40 for s in shares.values())
    summary = {
        "households": len(f1),
        "as_of": args.as_of.isoformat(),
        "segments": [
            {
                "id": s.id,
                "share": round(shares.get(s.id, 0.0), 4),
                "size": sizes.get(s.id, 0),
                "label": s.label,
                "label_zh": seg.labels_of(s.id)["zh-CN"],
                "kind": s.kind,
                "characteristics": s.characteristics,
            }
            for s in seg.summaries()
        ],
        "size_bounds_ok": ok,
        "pass_change_share": round(float(res["pass_change"]), 4),  # type: ignore[arg-type]
        "month_change_share": round(float(res["month_change"]), 4),  # type: ignore[arg-type]
        "month_change_share_settled": round(float(res["month_settled"]), 4),  # type: ignore[arg-type]
        "month_change_share_without_hysteresis": round(float(ref["month_change"]), 4),  # type: ignore[arg-type]
        "observe_rate_vs_reference_loop": round(float(res["updates_per_s"]) / base_rate, 3),  # type: ignore[arg-type]
        "feature_seconds": round(t_feat, 1),
        "model_version": seg.model_version,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        return 0 if ok else 1
    print(
        f"London households: {summary['households']} (features as of {summary['as_of']}, "
        f"engine features: {', '.join(sorted(next(iter(f1.values()))))})"
    )
    print(f"{'id':>3} {'share':>6} {'size':>5}  label")
    for s in summary["segments"]:
        print(
            f"{s['id']:>3} {s['share']:>6.1%} {s['size']:>5}  {s['label']} / {s['label_zh']}  [{s['kind']}]"
        )
        for c in s["characteristics"]:
            print(f"{'':>18}- {c}")
    print(f"size bounds (<=7 segments, each 5%..40%): {'OK' if ok else 'VIOLATED'}")
    print(f"changed segment on a 4th pass over the same features: {summary['pass_change_share']:.2%}")
    print(
        f"changed segment after a month more data: {summary['month_change_share']:.2%} after one update, "
        f"{summary['month_change_share_settled']:.2%} after a second one "
        f"(without hysteresis: {summary['month_change_share_without_hysteresis']:.2%})"
    )
    print(
        f"observe() throughput vs a bare 7-centre distance loop in the same run: "
        f"{summary['observe_rate_vs_reference_loop']:.3f}x (2 shared cores)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
