"""Who is counted where: the segmenter's record of customers, votes for moves, changes to persist.

The stream hands the segmenter each customer's features together with the segment the
customer's partition believes it is in (``current``). That belief can be stale (an earlier
assignment still in flight), so the model keeps its own record, ``members`` (customer ->
segment id as assigned; ids of merged segments resolve to their successors), counts every
customer once, and hands an assignment out again whenever its own record changed.

Hysteresis across updates: a customer moves only after ``votes`` consecutive updates all
preferred the same other segment; the pending votes are bounded (``max_pending``, oldest
dropped first) and part of the persisted state.

A version-1 state had no membership: for a customer the record does not know, the caller's
``current`` is trusted (it was counted there) — ``adopt_current``.

>>> m = Membership(votes=2, max_pending=10)
>>> m.vote("c1", 3), m.vote("c1", 3), m.pending
(False, True, {})
>>> m.set("c1", 3); m.take_changes(), m.take_changes()
({'c1': 3}, {})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

Resolve = Callable[[int | None], int | None]


class Membership:
    """customer -> segment, pending votes and the changes since the last :meth:`take_changes`."""

    def __init__(self, votes: int = 2, max_pending: int = 20000) -> None:
        self.votes = votes
        self.max_pending = max_pending
        self.members: dict[str, int] = {}
        # insertion order = age (the oldest vote is dropped first when over max_pending)
        self.pending: dict[str, tuple[int, int]] = {}
        self.changes: dict[str, int | None] = {}
        self.adopt_current = False

    def counted_in(self, customer_id: str, current: int | None, resolve: Resolve) -> int | None:
        """The live segment the model counts ``customer_id`` in (None: not counted).

        >>> m = Membership(); m.set("a", 1)
        >>> m.counted_in("a", None, lambda k: k), m.counted_in("b", 2, lambda k: k)
        (1, None)
        """
        k = self.members.get(customer_id)
        if k is not None:
            return resolve(k)
        if self.adopt_current and current is not None:
            r = resolve(current)
            if r is not None:
                self.set(customer_id, r)  # counted in the sizes by the version-1 model already
            return r
        return None

    def set(self, customer_id: str, segment: int | None) -> None:
        """Record ``customer_id`` in ``segment`` (None: not counted any more).

        >>> m = Membership(); m.set("a", 2); m.set("b", 1); m.set("b", None); m.members, m.changes
        ({'a': 2}, {'a': 2, 'b': None})
        """
        if segment is None:
            self.members.pop(customer_id, None)
        else:
            self.members[customer_id] = segment
        self.changes[customer_id] = segment

    def vote(self, customer_id: str, candidate: int) -> bool:
        """One more update prefers ``candidate``: True when ``votes`` consecutive ones agree
        (the move happens now), else the vote is remembered.

        >>> m = Membership(votes=3, max_pending=1)
        >>> m.vote("a", 1), m.vote("b", 2), list(m.pending)  # bounded: the oldest is dropped
        (False, False, ['b'])
        """
        if self.votes <= 1:
            self.pending.pop(customer_id, None)
            return True
        cand, n = self.pending.pop(customer_id, (candidate, 0))
        n = n + 1 if cand == candidate else 1
        if n >= self.votes:
            return True
        self.pending[customer_id] = (candidate, n)
        while len(self.pending) > self.max_pending:
            self.pending.pop(next(iter(self.pending)))
        return False

    def drop_vote(self, customer_id: str) -> None:
        """The customer's updates stopped agreeing on a move.

        >>> m = Membership(votes=2); _ = m.vote("a", 1); m.drop_vote("a"); m.pending
        {}
        """
        self.pending.pop(customer_id, None)

    def forget(self, customer_id: str | None, current: int | None, resolve: Resolve) -> int | None:
        """Drop a deleted customer; returns the live segment it was counted in (to shrink).

        With ``customer_id`` the record decides (idempotent); ``current`` alone (the caller's
        belief) is used without an id, or for a customer a version-1 state does not know.

        >>> m = Membership(); m.set("a", 1)
        >>> m.forget("a", None, lambda k: k), m.forget("a", None, lambda k: k)
        (1, None)
        """
        if customer_id is None:
            return resolve(current)
        self.pending.pop(customer_id, None)
        if customer_id in self.members:
            k = resolve(self.members[customer_id])
            self.set(customer_id, None)
            return k
        return resolve(current) if self.adopt_current else None

    def take_changes(self) -> dict[str, int | None]:
        """Customers whose membership changed since the last call (None: forgotten).

        >>> m = Membership(); m.set("a", 1); m.take_changes(), m.take_changes()
        ({'a': 1}, {})
        """
        out, self.changes = self.changes, {}
        return out

    def install(self, members: Mapping[str, int], resolve: Resolve) -> None:
        """Replace the record (e.g. read back per customer); ids that resolve to nothing are left out.

        >>> m = Membership(); m.install({"a": 1, "b": 9}, lambda k: None if k == 9 else k); m.members
        {'a': 1}
        """
        self.members = {str(c): int(k) for c, k in members.items() if resolve(int(k)) is not None}
        self.changes = {}
        self.adopt_current = False

    def clear(self) -> None:
        """Forget every member (recorded as changes), e.g. before a new batch fit.

        >>> m = Membership(); m.set("a", 1); _ = m.take_changes(); m.clear(); m.members, m.take_changes()
        ({}, {'a': None})
        """
        for customer_id in list(self.members):
            self.set(customer_id, None)
        self.adopt_current = False

    def sizes(self, live: list[int], resolve: Resolve) -> dict[int, int]:
        """Members per live segment.

        >>> m = Membership(); m.set("a", 1); m.set("b", 5); m.set("c", 1)
        >>> m.sizes([1, 2], lambda k: 1 if k == 5 else k)
        {1: 3, 2: 0}
        """
        out = dict.fromkeys(live, 0)
        for k in self.members.values():
            r = resolve(k)
            if r is not None:
                out[r] = out.get(r, 0) + 1
        return out
