"""The customer segments (at most ``MW_MAX_SEGMENTS``, default 7) of the online segmenter."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import Ctx
from api.errors import error_responses
from meterwatch.contracts import SegmentSummary

router = APIRouter(prefix="/v1", tags=["segments"])


@router.get(
    "/segments",
    response_model=list[SegmentSummary],
    summary="Every customer segment",
    description=(
        "Every segment with its `id`, `label`, `size` (customers assigned), `centroid` "
        "(the segment's centre over the named features) and `characteristics` (what sets it "
        "apart, in words). Readable by both roles. An empty list until the segmenter has "
        "published its first model."
    ),
    responses=error_responses(401, 429, 503),
)
async def get_segments(caller: Ctx) -> Response:
    keys = caller.rt.keys
    (raw,) = await caller.read(lambda p: p.get(keys.segments))
    return Response(raw if raw is not None else b"[]", media_type="application/json")
