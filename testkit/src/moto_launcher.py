# Starts moto's server for one test process and exits when that process's
# pipe (our stdin) closes, so no moto outlives its tests.
#
# Two fixes to moto's DynamoDB emulation, both toward real DynamoDB semantics:
# - writes are serialized, so a conditional write and a transaction are atomic
#   with respect to each other (moto's threaded server can interleave them);
# - TransactWriteItems rolls back only the items it touched. moto deep-copies
#   every table the transaction names, once per operation, and on failure puts
#   the copies back, which is O(table size) per transaction and also erases
#   writes that other requests made meanwhile.
import copy
import os
import sys
import threading

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

import moto.dynamodb.models as ddb_models
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


def _serialized(method):
    def wrapper(self, *args, **kwargs):
        with _lock:
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


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


_original_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    with _lock:
        saved = []
        for entry in transact_items:
            if len(entry) != 1:
                continue
            _, op = next(iter(entry.items()))
            table, key = _key_of(self, op)
            if table is None or key is None:
                continue
            try:
                current = self.get_item(op["TableName"], key)
            except Exception:
                current = None
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


DynamoDBBackend.transact_write_items = _transact_write_items
for _name in ("put_item", "update_item", "delete_item"):
    setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

from moto.server import main

main(["-H", "127.0.0.1", "-p", "0"])
