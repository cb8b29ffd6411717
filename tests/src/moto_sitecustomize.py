# sitecustomize for the tests' moto_server (see tests/src/moto.rs).
# 1. It handles one request at a time (DynamoDB isolates transactions; moto
#    takes no lock). 2. A TransactWriteItems copies, for its rollback, only the
#    items it names, instead of every table it names (with the stream's
#    records): the same rollback at DynamoDB's cost.
import copy as _copy_module
import sys
import threading

try:
    import werkzeug.serving as _serving
except Exception:  # not moto's interpreter: change nothing
    _serving = None
if _serving is not None:
    _run_simple, _lock = _serving.run_simple, threading.Lock()

    def _serialised(app):
        def handle(environ, start_response):
            with _lock:
                result = app(environ, start_response)
                try:
                    return [b"".join(result)]
                finally:
                    if hasattr(result, "close"):
                        result.close()
        return handle

    def run_simple(hostname, port, application, *args, **kwargs):
        sys.stderr.write(SERIAL_MARKER + "\n")
        sys.stderr.flush()
        return _run_simple(hostname, port, _serialised(application), *args, **kwargs)

    _serving.run_simple = run_simple

try:
    import moto.dynamodb.models as _models
    from moto.dynamodb.models.dynamo_type import DynamoType as _DynamoType
    from moto.dynamodb.models.table import Table as _Table
except Exception:  # not moto's interpreter (or another moto): change nothing
    _models = None
if _models is not None:
    class _TablesUncopied:
        """moto.dynamodb.models' `copy`, except that a Table is not copied."""
        def __getattr__(self, name):
            return getattr(_copy_module, name)
        @staticmethod
        def deepcopy(x, memo=None):
            if isinstance(x, _Table):
                return x
            return _copy_module.deepcopy(x, memo)
    # The stock transact_write_items then keeps the tables themselves as its
    # "backup" (putting them back is a no-op); the wrapper below undoes.
    _models.copy = _TablesUncopied()
    _transact = _models.DynamoDBBackend.transact_write_items

    def _journal(backend, transact_items):
        """A copy of each item the transaction names (None: absent), and
        each touched table's stream length, before anything is written."""
        entries, seen, streams = [], set(), {}
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = backend.tables.get(op.get("TableName"))
                if table is None:
                    continue
                key = op.get("Key")
                if key is None:
                    attrs = op.get("Item") or {}
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                h = _DynamoType(key[table.hash_key_attr])
                r = _DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except Exception:
                continue  # malformed: the real call reports it, before any write
            ident = (id(table), str(h), str(r))
            if ident in seen:
                continue
            seen.add(ident)
            current = table.get_item(h, r)
            entries.append((table, h, r, _copy_module.deepcopy(current)))
            if table.stream_shard is not None and id(table) not in streams:
                streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        return entries, streams

    def _undo(entries, streams):
        """Puts back the journal's items and drops the stream's new records."""
        for table, h, r, before in reversed(entries):
            if r is None:
                if before is None:
                    table.items.pop(h, None)
                else:
                    table.items[h] = before
            else:
                if before is None:
                    ranges = table.items.get(h)
                    if ranges is not None:
                        ranges.pop(r, None)
                        if not ranges:
                            table.items.pop(h, None)
                else:
                    table.items[h][r] = before
        for shard, length in streams.values():
            del shard.items[length:]

    def transact_write_items(self, transact_items):
        entries, streams = _journal(self, transact_items)
        try:
            return _transact(self, transact_items)
        except BaseException:
            _undo(entries, streams)
            raise

    _models.DynamoDBBackend.transact_write_items = transact_write_items
    sys.stderr.write(JOURNAL_MARKER + "\n")
    sys.stderr.flush()
