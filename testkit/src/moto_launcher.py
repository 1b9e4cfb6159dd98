# Starts moto's server for one test process and exits when that process's
# pipe (our stdin) closes, so no moto outlives its tests.
#
# Fixes to moto's DynamoDB emulation, all toward real DynamoDB semantics:
# - a conditional write and a transaction are atomic with respect to each
#   other (moto's threaded server can interleave them), and a GetItem, Query
#   or Scan never sees an item half written (moto's UpdateItem builds a new
#   item in steps);
# - TransactWriteItems rolls back only the items it touched. moto deep-copies
#   every table the transaction names, once per operation, and on failure puts
#   the copies back, which is O(table size) per transaction and also erases
#   writes that other requests made meanwhile;
# - transaction conflicts, which moto does not emulate at all. DynamoDB
#   refuses a transaction that touches an item another transaction is still
#   writing (TransactionCanceledException, reason "TransactionConflict" on
#   that item, "None" on the others), and a plain PutItem/UpdateItem/
#   DeleteItem on such an item (TransactionConflictException). Source: the
#   DynamoDB developer guide, "Transaction conflict handling in DynamoDB", and
#   the TransactWriteItems API reference (CancellationReasons codes);
# - throttling on a hot item: above a rate of write units per second on one
#   item, a plain write gets ProvisionedThroughputExceededException and a
#   transaction is cancelled with reason "ThrottlingError" on that item.
#   Source: the developer guide's partition limit of 1,000 write units a
#   second and its pricing of a transactional write at 2 units per KB.
#   ASSUMPTION: the limit is applied per item (one hot item is the case that
#   matters here; real DynamoDB applies it per partition).
#
# Switches, per table, as tags on the table (set them with TagResource):
# - va-double:tx-hold-ms (default 0): how long a transaction holds its items
#   before it commits. A low local rate times a long hold gives the conflict
#   odds of a high real rate times a real hold;
# - va-double:item-wcu-per-s (default 1000): the throttling threshold;
# - va-double:conflicts (default "on"): "off" turns conflicts off;
# - va-double:unavailable (default "off"): "on" answers every read and write
#   on the table with a 500 InternalServerError, the shape DynamoDB gives a
#   server-side failure (API reference, "Error handling with DynamoDB").
#
# Fixes to moto's EventBridge (each cites the API below): a disabled rule
# delivers nothing (moto 5.2.5 delivers whatever the rule's state), and a
# partner bus's name, which holds slashes, names that bus.
#
# Speed, not semantics:
# - a Query on the table's own key reads only its partition. moto 5.2.5's
#   Table.query builds its candidates from Table.all_items(), which sorts every
#   item of the table, then keeps those whose hash key matches: the cost of one
#   Query grew with the whole table (77.5% of moto's CPU in the quick start,
#   BENCHMARKS.md). Here all_items() answers, for that one call, with the
#   partition's items (moto's query sorts them); moto's query runs unchanged
#   (its hash-key check, sort, ScanIndexForward, pagination, filters,
#   projections and ConsumedCapacity). Index queries are untouched. The
#   environment variable VA_MOTO_QUERY_BY_PARTITION=0 turns this off;
#   `moto::patched_query_answers_as_moto_does` compares the two.
# - moto's dispatcher lists moto's package folder (listdir, then isdir on
#   each of ~150 entries) twice per request to learn its service names; the
#   list never changes while the server runs, so it is read once.
# - werkzeug logs a line per request to stderr, which the harness only
#   drains; the start-up banner (the harness reads the port from it) stays.
import collections
import copy
import itertools
import os
import sys
import threading
import time

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

import moto.dynamodb.models as ddb_models
from moto.dynamodb.exceptions import (
    DynamodbException,
    ERROR_TYPE_PREFIX,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_real_deepcopy = copy.deepcopy


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB models."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(x, memo=None):
        if isinstance(x, Table):
            return x
        return _real_deepcopy(x, memo)


ddb_models.copy = _NoTableCopy()
_lock = threading.RLock()


class TransactionConflictException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "TransactionConflictException"

    def __init__(self):
        super().__init__(
            self.error_type,
            message="Transaction is ongoing for the item",
        )


class InternalServerError(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "InternalServerError"
    code = 500

    def __init__(self):
        super().__init__(self.error_type, message="Internal server error")
        self.code = 500


class ProvisionedThroughputExceededException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException"

    def __init__(self):
        super().__init__(
            self.error_type,
            message="The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        )


# Items held by in-flight transactions: (table, key) -> transaction id.
_held = {}
_held_lock = threading.Lock()
_tx_ids = itertools.count(1)
_in_tx = threading.local()
# Write units spent per item in the last second: (table, key) -> deque of (t, units).
_spent = collections.defaultdict(collections.deque)


def _switches(backend, table_name):
    table = backend.tables.get(table_name)
    tags = {t.get("Key"): t.get("Value") for t in (getattr(table, "tags", None) or [])}
    def number(name, default):
        try:
            return float(tags.get(name, default))
        except (TypeError, ValueError):
            return default
    return {
        "hold_s": max(0.0, number("va-double:tx-hold-ms", 0.0)) / 1000.0,
        "wcu_per_s": number("va-double:item-wcu-per-s", 1000.0),
        "conflicts": tags.get("va-double:conflicts", "on") != "off",
        "unavailable": tags.get("va-double:unavailable", "off") == "on",
    }


def _available(backend, table_name):
    if _switches(backend, table_name)["unavailable"]:
        raise InternalServerError()


def _item_id(table_name, key):
    return (table_name, tuple(sorted((k, repr(v)) for k, v in key.items())))


def _over_limit(item, units, limit, now, spend=True):
    """Spends `units` on `item` unless that would pass `limit` in the last second."""
    window = _spent[item]
    while window and window[0][0] <= now - 1.0:
        window.popleft()
    if sum(u for _, u in window) + units > limit:
        return True
    if spend:
        window.append((now, units))
    return False


def _key_of(backend, op):
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None, None
    if "Key" in op:
        return table, op["Key"]
    item = op.get("Item")
    if item is None or table.hash_key_attr not in item:
        return table, None
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in item:
        key[table.range_key_attr] = item[table.range_key_attr]
    return table, key


def _single_write(method, key_arg):
    def wrapper(self, table_name, *args, **kwargs):
        if getattr(_in_tx, "id", None) is None:
            _available(self, table_name)
            key = kwargs.get(key_arg) if key_arg in kwargs else (args[0] if args else None)
            if key_arg == "item_attrs" and key is not None:
                _, key = _key_of(self, {"TableName": table_name, "Item": key})
            if key is not None:
                switches = _switches(self, table_name)
                item = _item_id(table_name, key)
                with _held_lock:
                    if switches["conflicts"] and item in _held:
                        raise TransactionConflictException()
                    if _over_limit(item, 1, switches["wcu_per_s"], time.monotonic()):
                        raise ProvisionedThroughputExceededException()
        with _lock:
            return method(self, table_name, *args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


_original_transact = DynamoDBBackend.transact_write_items
# The rollback snapshot reads past the double's own switches: an outage
# switched on mid-transaction must not read as "no item" and delete it.
_original_get_item = DynamoDBBackend.get_item


def _transact_write_items(self, transact_items):
    # The items, in request order; None for an entry that names none.
    items = []
    hold_s = 0.0
    for entry in transact_items:
        item = None
        if len(entry) == 1:
            _, op = next(iter(entry.items()))
            _, key = _key_of(self, op)
            if key is not None:
                switches = _switches(self, op["TableName"])
                hold_s = max(hold_s, switches["hold_s"])
                item = (_item_id(op["TableName"], key), switches)
        items.append(item)
    for entry in transact_items:
        if len(entry) == 1:
            _available(self, next(iter(entry.values())).get("TableName"))
    tx = next(_tx_ids)
    with _held_lock:
        reasons = []
        now = time.monotonic()
        for entry in items:
            if entry is None:
                reasons.append((None, None, None))
            elif entry[1]["conflicts"] and entry[0] in _held:
                reasons.append(("TransactionConflict", "Transaction is ongoing for the item", None))
            else:
                reasons.append((None, None, None))
        if not any(code for code, _, _ in reasons):
            # Check every item first; spend only when the whole transaction passes.
            for i, entry in enumerate(items):
                if entry is not None and _over_limit(entry[0], 2, entry[1]["wcu_per_s"], now, spend=False):
                    reasons[i] = ("ThrottlingError", "Throughput exceeds the current capacity for one or more items in the transaction.", None)
            if not any(code for code, _, _ in reasons):
                for entry in items:
                    if entry is not None:
                        _over_limit(entry[0], 2, entry[1]["wcu_per_s"], now)
        if any(code for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        for entry in items:
            if entry is not None:
                _held[entry[0]] = tx
    try:
        if hold_s > 0:
            time.sleep(hold_s)
        with _lock:
            _in_tx.id = tx
            try:
                return _apply_transaction(self, transact_items)
            finally:
                _in_tx.id = None
    finally:
        with _held_lock:
            for entry in items:
                if entry is not None and _held.get(entry[0]) == tx:
                    del _held[entry[0]]


def _apply_transaction(self, transact_items):
    saved = []
    for entry in transact_items:
        if len(entry) != 1:
            continue
        _, op = next(iter(entry.items()))
        table, key = _key_of(self, op)
        if table is None or key is None:
            continue
        current = _original_get_item(self, op["TableName"], key)
        saved.append((op["TableName"], key, _real_deepcopy(current.to_json()["Attributes"]) if current else None))
    try:
        return _original_transact(self, transact_items)
    except Exception:
        for table_name, key, attrs in saved:
            try:
                if attrs is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            except Exception:
                pass
        raise


def _read(method):
    # Under the writers' lock: moto's UpdateItem creates a missing item with
    # its key alone and then applies the update's actions one by one, so a
    # read in another thread could see an item no write ever made. DynamoDB
    # writes an item atomically: a read sees it before or after, never half
    # (developer guide, "Read consistency"; "UpdateItem ... edits an
    # existing item's attributes, or adds a new item").
    def wrapper(self, table_name, *args, **kwargs):
        _available(self, table_name)
        with _lock:
            return method(self, table_name, *args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


_partition = threading.local()
_original_all_items = Table.all_items
_original_table_query = Table.query


def _all_items(self):
    hint = getattr(_partition, "hint", None)
    if hint is None or hint[0] is not self:
        return _original_all_items(self)
    # A defaultdict: .get never inserts (a concurrent delete cannot make it).
    part = self.items.get(hint[1])
    if part is None:
        return []
    # Unsorted: moto's query sorts its candidates by range key itself.
    return list(part.values()) if self.range_key_attr else [part]


def _table_query(self, hash_key, *args, **kwargs):
    # Positional order of moto 5.2.5's Table.query after hash_key.
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name or hash_key is None:
        return _original_table_query(self, hash_key, *args, **kwargs)
    _partition.hint = (self, hash_key)
    try:
        return _original_table_query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hint = None


# EventBridge: a disabled rule matches no event. The API reference's
# DisableRule: "A disabled rule won't match any events". moto 5.2.5's
# Rule.send_to_targets delivers whatever the rule's state; here a rule
# that is not ENABLED delivers nothing (`va-admin org offboard` stops an
# org's events by disabling its rule).
from moto.events.models import Rule as EventsRule

_original_send_to_targets = EventsRule.send_to_targets


def _send_to_targets(self, *args, **kwargs):
    if self.state != "ENABLED":
        return None
    return _original_send_to_targets(self, *args, **kwargs)


EventsRule.send_to_targets = _send_to_targets

# EventBridge: a bus is named by its name or its ARN, and a partner bus's
# name holds slashes (`aws.partner/genesys.com/cloud/<orgId>/<suffix>`; the
# API reference's EventBusName: "The name or ARN of the event bus", pattern
# `(arn:aws[\w-]*:events:...:event-bus\/)?[/\.\-_A-Za-z0-9]+`). moto 5.2.5
# keeps only the text after the last slash, so no rule of a partner bus
# could be put, listed or disabled; here an ARN loses its prefix only.
from moto.events.models import EventsBackend


def _normalize_event_bus_arn(self, event_bus_arn):
    if event_bus_arn is None:
        return "default"
    return event_bus_arn.split(":event-bus/")[-1]


EventsBackend._normalize_event_bus_arn = _normalize_event_bus_arn

import moto.backends as moto_backends
import werkzeug.serving

_moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _moto_modules
werkzeug.serving.WSGIRequestHandler.log_request = lambda self, code="-", size="-": None

if os.environ.get("VA_MOTO_QUERY_BY_PARTITION", "1") != "0":
    Table.all_items = _all_items
    Table.query = _table_query

DynamoDBBackend.get_item = _read(DynamoDBBackend.get_item)
DynamoDBBackend.query = _read(DynamoDBBackend.query)
DynamoDBBackend.scan = _read(DynamoDBBackend.scan)
DynamoDBBackend.transact_write_items = _transact_write_items
DynamoDBBackend.put_item = _single_write(DynamoDBBackend.put_item, "item_attrs")
DynamoDBBackend.update_item = _single_write(DynamoDBBackend.update_item, "key")
DynamoDBBackend.delete_item = _single_write(DynamoDBBackend.delete_item, "key")

from moto.server import main

main(["-H", "127.0.0.1", "-p", "0"])
