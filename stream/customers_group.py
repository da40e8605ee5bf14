r"""One by-customer message per partition and batch of registry records (decision 0004, as readings).

The `customers` stage (stream/customers_in.py) sends the valid records and the tombstones of one
consumer batch that belong to one partition of ``<app>-by-customer`` as ONE message, kind
``customers``, with at most :data:`RECORDS_PER_MESSAGE` items ``[customer_id, record]`` in the
order they were read; ``record`` is the validated record's JSON as a JSON string (decoding the
group then builds no dicts; the profile stage validates each string in one pydantic call and
stores it as is), null for a tombstone. The profile stage then pays Faust's
per-event cost per group, not per record (a registry of 100 k customers at start-up).

>>> body = encode_group([item("c1", b'{"customer_id":"c1"}'), item("c2", None)])
>>> body
b'{"kind":"customers","items":[["c1","{\\"customer_id\\":\\"c1\\"}"],["c2",null]]}'
>>> is_group(body), decode_group(body)
(True, [['c1', '{"customer_id":"c1"}'], ['c2', None]])
>>> decode_group(b'{"kind":"customers"}') is None, is_group(b'{"kind":"customer"}')
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

__all__ = [
    "BYTES_PER_MESSAGE",
    "RECORDS_PER_MESSAGE",
    "decode_group",
    "encode_group",
    "encode_groups",
    "is_group",
    "item",
]

RECORDS_PER_MESSAGE = 500
BYTES_PER_MESSAGE = 256 * 1024  # far below the broker's 1 MB limit (a single larger record goes alone)
_HEAD = b'{"kind":"customers"'


def item(customer_id: str, record_json: bytes | None) -> bytes:
    """One item: the customer and its validated record's JSON (None: a tombstone)."""
    body = b"null" if record_json is None else orjson.dumps(record_json.decode())
    return b"[%b,%b]" % (orjson.dumps(customer_id), body)


def encode_group(items: list[bytes]) -> bytes:
    """One ``customers`` message of ``items`` (all of one by-customer partition)."""
    return b'{"kind":"customers","items":[%b]}' % b",".join(items)


def encode_groups(items: list[bytes]) -> Iterator[bytes]:
    """``items`` in order, in messages of at most RECORDS_PER_MESSAGE items and about
    BYTES_PER_MESSAGE bytes.

    >>> [len(decode_group(g) or []) for g in encode_groups([item(f"c{i}", None) for i in range(1001)])]
    [500, 500, 1]
    >>> big = item("c1", b"x" * BYTES_PER_MESSAGE)
    >>> len(list(encode_groups([item("c0", None), big, item("c2", None)])))
    3
    """
    chunk: list[bytes] = []
    size = 0
    for it in items:
        if chunk and (len(chunk) >= RECORDS_PER_MESSAGE or size + len(it) > BYTES_PER_MESSAGE):
            yield encode_group(chunk)
            chunk, size = [], 0
        chunk.append(it)
        size += len(it) + 1
    if chunk:
        yield encode_group(chunk)


def is_group(value: bytes | None) -> bool:
    """Whether a by-customer value is a registry group."""
    return value is not None and value.startswith(_HEAD)


def decode_group(value: bytes) -> list[Any] | None:
    """The items of a group, or None when it is not one."""
    try:
        return list(orjson.loads(value)["items"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
