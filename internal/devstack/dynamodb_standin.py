# moto's server as the local stand-in for DynamoDB: one request at a time (DynamoDB applies each write to an item
# atomically; moto's threaded server does not), and a Query reads only its partition, as DynamoDB's does (moto
# 5.2 reads every item of the table for each Query). Usage: python3 dynamodb_standin.py PORT
import base64
import inspect
import json
import sys
import threading

from moto.dynamodb.models.table import Item, SecondaryIndex, Table
from moto.dynamodb.responses import DynamoResult
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive",
         "DescribeContinuousBackups", "ListTagsOfResource"}

# partitions[(table, index)] maps a partition's key values to its items, sorted as moto sorts an index's once a
# Query has; built on a Query's first use, dropped by any request that is not a read (moto updates items in place,
# moving them between an index's partitions).
partitions = {}
running = None  # the running Query's partition: {"items": [...], "sorted": bool}; None: every item

_query, _all_items, _sorted_items, _project = Table.query, Table.all_items, Table.sorted_items, SecondaryIndex.project
signature = inspect.signature(_query)


def all_items(self):
    return _all_items(self) if running is None else running["items"]


def sorted_items(self, hash_attrs, range_attrs, items):
    if running is None or len(items) != len(running["items"]):  # moto's filters left some out: sort these
        return _sorted_items(self, hash_attrs, range_attrs, items)
    if not running["sorted"]:
        # the whole partition, in the order moto gives it: kept (a copy: moto may reverse its list in place)
        running["items"], running["sorted"] = list(_sorted_items(self, hash_attrs, range_attrs, items)), True
    return list(running["items"])


def query(self, *args, **kwargs):
    global running
    call = signature.bind(self, *args, **kwargs).arguments
    index_name = call.get("index_name")
    if index_name is None:
        names, keys, values = None, None, (call["hash_key"],)
    else:
        index = {i.name: i for i in self.all_indexes()}.get(index_name)
        names = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] if index else []
        keys = [k["AttributeName"] for k in index.schema] if index else []
        conds = dict(call.get("hash_key_conditions") or [])
        if not names or set(conds) != set(names):
            return _query(self, *args, **kwargs)
        values = tuple(conds[n] for n in names)
    key = (id(self), index_name)
    if key not in partitions:
        groups = {}
        for item in _all_items(self):
            if not isinstance(item, Item):
                continue
            if names is None:
                groups.setdefault((item.hash_key,), {"items": [], "sorted": False})["items"].append(item)
            elif all(item.attrs.get(n) is not None for n in keys):  # in the index: every key attribute set
                groups.setdefault(tuple(item.attrs[n] for n in names), {"items": [], "sorted": False})["items"].append(item)
        partitions[key] = groups
    running = partitions[key].get(values, {"items": [], "sorted": True})
    try:
        return _query(self, *args, **kwargs)
    finally:
        running = None


def project(self, item):
    """An index's projection of item: moto's, which turns the item into JSON once per projected attribute."""
    kind = (self.projection or {}).get("ProjectionType")
    if kind not in ("KEYS_ONLY", "INCLUDE"):
        return _project(self, item)
    allowed = set(self.table_key_attrs) | {k["AttributeName"] for k in self.schema}
    if kind == "INCLUDE":
        allowed |= set(self.projection.get("NonKeyAttributes", []))
    out = Item(item.hash_key, item.range_key, {})
    for name, value in item.attrs.items():  # item is already moto's copy of the stored one
        if name in allowed:
            out.attrs[name] = value
    return out


# Item reads answered with json.dumps: their answers hold only JSON values and binary ones (B, BS: base64), and
# moto's generic serializer, which walks the API's shapes, takes most of a page's time.
ITEM_READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
_execute_result = DynamoResult.execute_result


def execute_result(self, context):
    if context.operation_model.name not in ITEM_READS or not isinstance(self.result, dict):
        return _execute_result(self, context)
    body = json.dumps(self.result, separators=(",", ":"), default=lambda b: base64.b64encode(b).decode())
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


Table.all_items, Table.sorted_items, Table.query = all_items, sorted_items, query
DynamoResult.execute_result = execute_result
SecondaryIndex.project = project

app, lock = DomainDispatcherApplication(create_backend_app), threading.Lock()


def serial(environ, start_response):
    op = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    with lock:
        if op not in READS:
            partitions.clear()
        return list(app(environ, start_response))


run_simple("127.0.0.1", int(sys.argv[1]), serial, threaded=True)
