"""confluent-kafka (librdkafka) against a logkv broker; run by test/e2e/python-clients.test.ts.

AdminClient create_topics / list_topics, an idempotent acks=all Producer per compression.type
with a delivery callback per message, then a group Consumer that reads everything, commits
synchronously and closes, and a second consumer of the same group that must find nothing.

Prints one JSON object on stdout. Every wait is bounded by a deadline.
"""

import argparse
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--codecs", default="none,gzip,snappy,lz4,zstd")
    parser.add_argument("--deadline-s", type=float, default=40)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline_s
    remaining = lambda: max(0.5, deadline - time.monotonic())
    out = {"version": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0]}
    codecs = args.codecs.split(",")
    topics = ["ck-" + c for c in codecs]

    # --- admin -------------------------------------------------------------------------
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in topics],
        operation_timeout=10,
    )
    created = {}
    for topic, future in futures.items():
        try:
            future.result(timeout=remaining())
            created[topic] = "ok"
        except Exception as error:  # noqa: BLE001 - reported to the test as data
            created[topic] = str(error)
    out["create_topics"] = created
    again = admin.create_topics(
        [NewTopic(topics[0], num_partitions=args.partitions, replication_factor=1)]
    )
    try:
        again[topics[0]].result(timeout=remaining())
        out["create_existing"] = "no error"
    except confluent_kafka.KafkaException as error:
        out["create_existing"] = error.args[0].name()
    metadata = admin.list_topics(timeout=remaining())
    out["brokers"] = {str(b.id): "%s:%d" % (b.host, b.port) for b in metadata.brokers.values()}
    out["list_topics"] = {
        name: {
            "error": None if t.error is None else t.error.name(),
            "partitions": sorted(
                [p.id, p.leader, list(p.replicas), list(p.isrs)] for p in t.partitions.values()
            ),
        }
        for name, t in metadata.topics.items()
    }

    # --- produce -----------------------------------------------------------------------
    produced = {}
    delivery_errors = []
    for codec, topic in zip(codecs, topics):
        producer = Producer(
            {
                "bootstrap.servers": args.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": codec,
                "linger.ms": 20,
            }
        )
        records = []
        # Delivery reports come back in produce order per partition; keep them as they arrive.
        def on_delivery(err, msg, records=records, topic=topic):
            if err is not None:
                delivery_errors.append("%s: %s" % (topic, err.name()))
                return
            records.append(
                {
                    "key": msg.key().decode(),
                    "value": msg.value().decode(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                }
            )

        for i in range(args.messages):
            key = "key-%d" % (i % 50)
            value = "%s-%d-%s" % (codec, i, "payload" * 6)
            while True:
                try:
                    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        out.setdefault("unflushed", {})[topic] = producer.flush(remaining())
        records.sort(key=lambda r: int(r["value"].split("-")[1]))
        produced[topic] = records
    out["produced"] = produced
    out["delivery_errors"] = delivery_errors

    # --- consume with a group, commit ----------------------------------------------------
    def group_consumer():
        consumer = Consumer(
            {
                "bootstrap.servers": args.bootstrap,
                "group.id": "ck-group",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 10000,
                "fetch.wait.max.ms": 100,
            }
        )
        consumer.subscribe(topics)
        return consumer

    expected = sum(len(r) for r in produced.values())
    consumer = group_consumer()
    consumed = {t: [] for t in topics}
    consumer_errors = []
    count = 0
    while count < expected and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=500, timeout=0.5):
            if m.error() is not None:
                consumer_errors.append(m.error().name())
                continue
            consumed[m.topic()].append(
                {
                    "key": m.key().decode(),
                    "value": m.value().decode(),
                    "partition": m.partition(),
                    "offset": m.offset(),
                }
            )
            count += 1
    consumer.commit(asynchronous=False)
    committed = consumer.committed(
        [TopicPartition(t, p) for t in topics for p in range(args.partitions)], timeout=remaining()
    )
    out["committed"] = {"%s:%d" % (tp.topic, tp.partition): tp.offset for tp in committed}
    consumer.close()
    out["consumed"] = consumed
    out["consumer_errors"] = consumer_errors

    # A second consumer of the same group finds nothing left after the commit.
    again = group_consumer()
    leftovers = 0
    assigned_deadline = min(deadline, time.monotonic() + 10)
    while not again.assignment() and time.monotonic() < assigned_deadline:
        leftovers += len([m for m in again.consume(num_messages=100, timeout=0.2) if m.error() is None])
    out["second_consumer_assignment"] = len(again.assignment())
    quiet_until = min(deadline, time.monotonic() + 1.5)
    while time.monotonic() < quiet_until:
        leftovers += len([m for m in again.consume(num_messages=100, timeout=0.2) if m.error() is None])
    out["second_consumer_leftovers"] = leftovers
    again.close()

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
