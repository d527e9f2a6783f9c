"""Runs moto's server for the local stack and exits as soon as the process that started it is
gone, so an interrupted stack or test run never leaves an emulator holding a port.

It also mends what keeps moto from holding load (issue 16), where the cost arises, so that the
emulator's time and memory per request stay flat as its state grows:

- DynamoDB `TransactWriteItems` deep-copied every table it touched before each transaction, to
  roll back on failure: a transaction on a table of N items cost O(N) time and a full copy of
  the table in memory. Here it saves only the items the transaction names and puts back just
  those, which is also what DynamoDB promises (other writers' items are never rolled back).
- SQS kept every receipt handle of every deleted message forever, to answer a repeated
  DeleteMessage kindly: memory that grows with every message the queue ever carried. Here it
  keeps the most recent ones, more than any caller retries.
- EventBridge built a JSONPath parser (with yacc tables) eight times for every event and every
  rule target, to read the event's fields: several milliseconds per PutEvents per rule. Here a
  parsed path is kept and reused, as the expressions are the same few every time.
- An EventBridge archive kept a deep copy of every archived event in a list; here it keeps the
  most recent `RELAY_LOCAL_ARCHIVE_KEEP` (10,000), enough to show replay locally.

And one thing it does not do as AWS does: DynamoDB checks a conditional write's condition and
writes in one step, while moto, serving requests on threads, could let two conditional writes
pass their checks at once. Every write here takes one lock.

`tests/emulator.rs` fails if the time per request grows with the state again, or if two
conditional writes at once can both pass. Not mended:
a cancelled transaction on a table with a stream leaves the stream records of its writes and
their undoing (Relay's tables have no streams).
"""
import collections
import copy
import os
import sys
import threading
import time

PARENT = os.getppid()


def watch_parent() -> None:
    while True:
        if os.getppid() != PARENT:
            os._exit(0)
        time.sleep(0.5)


threading.Thread(target=watch_parent, daemon=True).start()


def set_on_every_new(cls, attribute, make) -> None:
    """Wraps `cls.__init__` so that every new instance's `attribute` is `make()`."""
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        setattr(self, attribute, make())

    cls.__init__ = __init__


def transactions_save_only_their_items() -> None:
    import moto.dynamodb.models as dynamodb
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TablesAreNotCopied:
        """`copy` as moto's DynamoDB backend sees it, but a Table "deep-copies" to itself, so
        the backend's whole-table backup and its restore (an assignment) both cost nothing."""

        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    dynamodb.copy = TablesAreNotCopied()
    backend = dynamodb.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            for op in entry.values():
                try:
                    # By name or ARN, as the original finds it.
                    table = self.get_table(op["TableName"])
                    attrs = op.get("Item") or op.get("Key") or {}
                    h = DynamoType(attrs[table.hash_key_attr])
                    r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
                    saved.append((table, h, r, copy.deepcopy(table.get_item(h, r))))
                except Exception:
                    continue  # malformed: the original refuses it, with its own error

        try:
            return original(self, transact_items)
        except Exception:
            # Newest first, so an item named twice ends as it was before the transaction.
            for table, h, r, item in reversed(saved):
                if item is None:
                    table.delete_item(h, r)
                elif r is not None:
                    table.items[h][r] = item
                else:
                    table.items[h] = item
            raise

    backend.transact_write_items = transact_write_items


def sqs_forgets_old_receipt_handles() -> None:
    from moto.sqs.models import Queue

    class RecentHandles(collections.OrderedDict):
        """A set of the newest receipt handles, with the methods moto's Queue uses."""

        LIMIT = 100_000

        def add(self, handle):
            self[handle] = None
            self.move_to_end(handle)
            while len(self) > self.LIMIT:
                self.popitem(last=False)

        def update(self, handles):
            for handle in handles:
                self.add(handle)

    set_on_every_new(Queue, "deleted_messages", RecentHandles)


def archives_keep_recent_events() -> None:
    from moto.events.models import Archive

    keep = int(os.environ.get("RELAY_LOCAL_ARCHIVE_KEEP", "10000"))

    class RecentEvents(list):
        """A list (a replay iterates it while events arrive) that drops its oldest tenth once
        it holds more than `keep`."""

        def append(self, event):
            super().append(event)
            if len(self) > keep + keep // 10:
                del self[: len(self) - keep]

    set_on_every_new(Archive, "events", RecentEvents)


def sqs_sends_skip_counting() -> None:
    """moto's SendMessage reads the queue's whole attribute map to learn one FIFO flag, and that
    map counts every message in the queue three times (visible, delayed, in flight); its
    ReceiveMessage builds the map again for every message it hands out, to read the retention
    period. So each send and each received message cost time in proportion to the queue, and a
    queue that filled (10,000 payslip events) slowed the whole emulator to a crawl. A send now
    reads the flag alone and a receive the retention period alone; GetQueueAttributes still
    builds the whole map."""
    import threading

    from moto.sqs.models import Queue, SQSBackend

    sending = threading.local()
    whole = Queue.attributes.fget

    def attributes(self):
        if getattr(sending, "on", False):
            if not self.fifo_queue:
                return {}
            return {"ContentBasedDeduplication": str(bool(self.content_based_deduplication)).lower()}
        return whole(self)

    Queue.attributes = property(attributes)
    send = SQSBackend.send_message

    def send_message(self, *args, **kwargs):
        outer = getattr(sending, "on", False)
        sending.on = True
        try:
            return send(self, *args, **kwargs)
        finally:
            sending.on = outer

    SQSBackend.send_message = send_message

    # ReceiveMessage checked each message's retention through GetQueueAttributes, which builds
    # the whole map (three counts of the queue) up to three times: per message received.
    from moto.core.utils import unix_time

    def is_message_valid_based_on_retention_period(self, queue_name, message):
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def dynamodb_writes_are_atomic() -> None:
    # DynamoDB checks a write's condition and writes in one step; moto's server handles requests
    # on threads and does not, so two conditional writes at once could both pass their check
    # (fifty tenants placed at once put eight on a VPS of seven). One lock around every write
    # makes each check-and-write whole again, as in DynamoDB.
    import functools

    import moto.dynamodb.models as dynamodb

    lock = threading.RLock()
    backend = dynamodb.DynamoDBBackend
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(backend, name, None)
        if original is None:
            continue

        def locked(*args, __original=original, **kwargs):
            with lock:
                return __original(*args, **kwargs)

        setattr(backend, name, functools.wraps(original)(locked))


def jsonpaths_are_parsed_once() -> None:
    import functools

    import jsonpath_ng.ext

    # moto imports `parse` inside the function that uses it, so this is the one it gets.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


transactions_save_only_their_items()
dynamodb_writes_are_atomic()
jsonpaths_are_parsed_once()
sqs_forgets_old_receipt_handles()
sqs_sends_skip_counting()
archives_keep_recent_events()

from moto.server import main  # noqa: E402  (after the watcher, so a slow import is covered too)

main(sys.argv[1:])
