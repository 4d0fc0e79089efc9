"""At most one probe, rotation or notification per key per cooldown window, across invocations.

A storm delivers thousands of failures for one secret within minutes. The first invocation to
claim ``probe#<secret>`` for the window (a DynamoDB conditional put) does the work and records its
diagnosis; the others tag their job with that diagnosis. A local cache of claims keeps a warm
container from asking DynamoDB again for every event of the storm.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Claim:
    """Who does the work for a key in this window, and what it found if it has finished."""

    owner: bool
    diagnosis: str | None = None


class Coalescer:
    """Claims keys for a window in a DynamoDB table (``pk`` string key, TTL on ``expires_at``).

    Without a table, claims are local to this process (CLI, tests of one invocation)."""

    def __init__(
        self,
        ddb: Any | None,
        table: str | None,
        window_s: int,
        *,
        now: Callable[[], float] = time.time,
        cache_size: int = 4096,
        refresh_s: float = 30.0,
    ) -> None:
        self._ddb = ddb
        self._table = table
        self.window_s = window_s
        self._now = now
        self._cache_size = cache_size
        self._refresh_s = refresh_s
        # key -> (window end, diagnosis, owned here, when DynamoDB was last read for it)
        self._local: OrderedDict[str, tuple[float, str | None, bool, float]] = OrderedDict()
        self.ddb_calls = 0
        # The sweep claims from a thread pool: the local cache is shared.
        self._lock = threading.RLock()

    def _remember(self, key: str, until: float, diagnosis: str | None, owned: bool) -> None:
        with self._lock:
            self._local[key] = (until, diagnosis, owned, self._now())
            self._local.move_to_end(key)
            if len(self._local) > self._cache_size:
                self._local.popitem(last=False)

    def claim(self, key: str) -> Claim:
        """Claim ``key`` for the current window; ``owner`` is True for exactly one caller."""
        if self._ddb is None or self._table is None:
            with self._lock:  # the local claim is a check-and-set
                return self._claim(key)
        return self._claim(key)

    def _claim(self, key: str) -> Claim:
        now = self._now()
        known = self._local.get(key)
        if known and known[0] > now:
            until_known, diagnosis, owned, read_at = known
            # Another container holds the claim and had not recorded its finding when we looked.
            if diagnosis is None and not owned and self._ddb is not None and now - read_at >= self._refresh_s:
                return self._read_claim(key, until_known)
            return Claim(owner=False, diagnosis=diagnosis)
        until = now + self.window_s
        if self._ddb is None or self._table is None:
            self._remember(key, until, None, True)
            return Claim(owner=True)
        try:
            self.ddb_calls += 1
            self._ddb.put_item(
                TableName=self._table,
                Item={"pk": {"S": key}, "expires_at": {"N": str(int(until))}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return self._read_claim(key, until)
        self._remember(key, until, None, True)
        return Claim(owner=True)

    def _read_claim(self, key: str, until: float) -> Claim:
        """The claim another invocation holds, and its diagnosis once recorded."""
        assert self._ddb is not None
        self.ddb_calls += 1
        response = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=True)
        item = response.get("Item") or {}
        diagnosis: str | None = item.get("diagnosis", {}).get("S")
        self._remember(key, float(item.get("expires_at", {}).get("N", until)), diagnosis, False)
        return Claim(owner=False, diagnosis=diagnosis)

    def release(self, key: str) -> None:
        """Give up a claim this process owns (its work failed), so that a retry may claim the key at once.
        In DynamoDB only if the record is still ours (its window end is the one we wrote)."""
        with self._lock:
            known = self._local.pop(key, None)
        if known is None or not known[2] or self._ddb is None or self._table is None:
            return
        self.ddb_calls += 1
        # Not ours any more (ConditionalCheckFailed): another claim replaced it, and stays.
        with contextlib.suppress(self._ddb.exceptions.ConditionalCheckFailedException):
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET expires_at = :zero",
                ConditionExpression="expires_at = :ours",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":ours": {"N": str(int(known[0]))}},
            )

    def record(self, key: str, diagnosis: str) -> None:
        """Store what the owner of ``key`` found, for the invocations that lost the claim."""
        known = self._local.get(key)
        until = known[0] if known else self._now() + self.window_s
        self._remember(key, until, diagnosis, True)
        if self._ddb is None or self._table is None:
            return
        self.ddb_calls += 1
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": key}},
            UpdateExpression="SET diagnosis = :d",
            ExpressionAttributeValues={":d": {"S": diagnosis}},
        )
