"""confluent-kafka (librdkafka) transactions against a logkv broker; run by
test/e2e/transactions-python.test.ts.

A transactional Producer commits one transaction, aborts one, and commits a sentinel. A
read_committed and a read_uncommitted consumer then read the topic back. Finally a
consume-transform-produce step: a read_committed group consumer reads the committed records,
and one transaction writes them transformed to a second topic together with the consumer's
offsets (send_offsets_to_transaction), after which the group's committed offsets must be
the input's end offsets.

Prints one JSON object on stdout. Every wait is bounded by a deadline.
"""

import argparse
import json
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def read_all(bootstrap, topic, isolation, until, deadline, group=None, commit=False):
    """Reads topic from the beginning until until(values) holds or the deadline passes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or "reader-%s-%f" % (isolation, time.time()),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    consumer.subscribe([topic])
    values = []
    settle_until = None
    while time.monotonic() < deadline:
        if settle_until is None and until(values):
            # Keep reading a little: records that must not be there get a chance to show.
            settle_until = time.monotonic() + 1.0
        if settle_until is not None and time.monotonic() > settle_until:
            break
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                raise confluent_kafka.KafkaException(message.error())
            continue
        values.append(message.value().decode())
    return consumer, values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--deadline-s", type=float, default=40)
    # A Raft cluster of three brokers gives every topic 3 replicas and refuses other values.
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline_s
    remaining = lambda: max(0.5, deadline - time.monotonic())
    out = {"librdkafka": confluent_kafka.libversion()[0]}
    topic, topic_out = "ck-txn", "ck-txn-out"

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=2, replication_factor=args.replication_factor) for t in (topic, topic_out)]
    ).values():
        future.result(timeout=remaining())

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "transactional.id": "ck-txn-producer",
            "transaction.timeout.ms": 20000,
        }
    )
    producer.init_transactions(remaining())
    producer.begin_transaction()
    for i in range(20):
        producer.produce(topic, key="k%d" % i, value="committed-%d" % i)
    producer.commit_transaction(remaining())
    producer.begin_transaction()
    for i in range(20):
        producer.produce(topic, key="k%d" % i, value="aborted-%d" % i)
    producer.flush(remaining())
    producer.abort_transaction(remaining())
    producer.begin_transaction()
    producer.produce(topic, key="k0", value="sentinel")
    producer.commit_transaction(remaining())

    # 21 committed records; the settle time after them would reveal any aborted one.
    consumer, committed = read_all(
        args.bootstrap, topic, "read_committed", lambda v: len(v) >= 21, deadline
    )
    consumer.close()
    out["read_committed"] = sorted(committed)
    consumer, everything = read_all(
        args.bootstrap, topic, "read_uncommitted", lambda v: len(v) >= 41, deadline
    )
    consumer.close()
    out["read_uncommitted"] = sorted(everything)

    # Consume-transform-produce: one transaction carries the output and the offsets.
    consumer, values = read_all(
        args.bootstrap, topic, "read_committed", lambda v: len(v) >= 21, deadline, group="ck-eos"
    )
    producer.begin_transaction()
    for value in values:
        producer.produce(topic_out, value="T(%s)" % value)
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(
        positions, consumer.consumer_group_metadata(), remaining()
    )
    producer.commit_transaction(remaining())
    committed_offsets = consumer.committed(
        [TopicPartition(topic, p) for p in range(2)], timeout=remaining()
    )
    out["positions"] = sorted([p.partition, p.offset] for p in positions)
    out["committed"] = sorted([p.partition, p.offset] for p in committed_offsets)
    consumer.close()
    _, transformed = read_all(
        args.bootstrap, topic_out, "read_committed", lambda v: len(v) >= 21, deadline
    )
    out["transformed"] = sorted(transformed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
