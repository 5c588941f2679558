"""kafka-python 2.0 against a logkv broker; run by test/e2e/python-clients.test.ts.

Admin (create_topics, list_topics, describe_configs), an acks='all' producer per available
compression codec, then a consumer group that reads everything once and commits, and a second
consumer of the same group that must find nothing left. api_version is never set, so every
client auto-detects the broker version (ApiVersions v0, Metadata v0/v1 probes).

Prints one JSON object on stdout. Every wait is bounded by a deadline.
"""

import argparse
import json
import sys
import time

import kafka
import kafka.codec
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

CODEC_AVAILABLE = {
    "none": lambda: True,
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--codecs", default="none,gzip,lz4")
    parser.add_argument("--deadline-s", type=float, default=40)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline_s
    out = {"kafka_python_version": kafka.__version__}

    # --- admin -------------------------------------------------------------------------
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="kpy-admin")
    out["admin_api_version"] = list(admin.config["api_version"])
    codecs = args.codecs.split(",")
    out["skipped_codecs"] = [c for c in codecs if not CODEC_AVAILABLE[c]()]
    codecs = [c for c in codecs if CODEC_AVAILABLE[c]()]
    out["codecs"] = codecs
    topics = ["kpy-" + c for c in codecs]
    admin.create_topics(
        [NewTopic(name=t, num_partitions=args.partitions, replication_factor=1) for t in topics]
    )
    try:
        admin.create_topics(
            [NewTopic(name=topics[0], num_partitions=args.partitions, replication_factor=1)]
        )
        out["create_existing"] = "no error"
    except TopicAlreadyExistsError as error:
        out["create_existing"] = type(error).__name__
    out["list_topics"] = sorted(admin.list_topics())
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topics[0])]
    )
    configs = {}
    for response in described:
        for error_code, _message, _type, name, entries in response.resources:
            configs[name] = {"error_code": error_code, "entries": {e[0]: e[1] for e in entries}}
    out["describe_configs"] = configs
    metadata = admin.describe_topics(topics)
    out["describe_topics"] = {
        t["topic"]: {"error_code": t["error_code"], "partitions": len(t["partitions"])}
        for t in metadata
    }
    admin.close()

    # --- produce -----------------------------------------------------------------------
    produced = {}
    for codec, topic in zip(codecs, topics):
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            compression_type=None if codec == "none" else codec,
            linger_ms=20,
            retries=3,
            max_in_flight_requests_per_connection=1,
            client_id="kpy-producer-" + codec,
        )
        out.setdefault("producer_api_version", list(producer.config["api_version"]))
        futures = []
        for i in range(args.messages):
            key = "key-%d" % (i % 50)
            value = "%s-%d-%s" % (codec, i, "payload" * 6)
            futures.append((key, value, producer.send(topic, key=key.encode(), value=value.encode())))
        producer.flush(timeout=max(1, deadline - time.monotonic()))
        records = []
        for key, value, future in futures:
            meta = future.get(timeout=max(1, deadline - time.monotonic()))
            records.append({"key": key, "value": value, "partition": meta.partition, "offset": meta.offset})
        produced[topic] = records
        producer.close(timeout=5)
    out["produced"] = produced

    # --- consume with a group, commit ----------------------------------------------------
    def group_consumer(client_id):
        return KafkaConsumer(
            *topics,
            bootstrap_servers=args.bootstrap,
            group_id="kpy-group",
            client_id=client_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )

    expected = sum(len(r) for r in produced.values())
    consumer = group_consumer("kpy-consumer-1")
    out["consumer_api_version"] = list(consumer.config["api_version"])
    consumed = {t: [] for t in topics}
    count = 0
    while count < expected and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for tp, messages in batch.items():
            for m in messages:
                consumed[tp.topic].append(
                    {
                        "key": m.key.decode(),
                        "value": m.value.decode(),
                        "partition": m.partition,
                        "offset": m.offset,
                    }
                )
                count += 1
    consumer.commit()
    committed = {}
    for t in topics:
        for p in range(args.partitions):
            committed["%s:%d" % (t, p)] = consumer.committed(TopicPartition(t, p))
    out["committed"] = committed
    out["end_offsets"] = {
        "%s:%d" % (tp.topic, tp.partition): offset
        for tp, offset in consumer.end_offsets(
            [TopicPartition(t, p) for t in topics for p in range(args.partitions)]
        ).items()
    }
    consumer.close()
    out["consumed"] = consumed

    # A second member of the same group finds nothing left after the commit.
    again = group_consumer("kpy-consumer-2")
    leftovers = 0
    assigned_deadline = min(deadline, time.monotonic() + 10)
    while not again.assignment() and time.monotonic() < assigned_deadline:
        leftovers += sum(len(v) for v in again.poll(timeout_ms=200).values())
    quiet_until = min(deadline, time.monotonic() + 1.5)
    while time.monotonic() < quiet_until:
        leftovers += sum(len(v) for v in again.poll(timeout_ms=200).values())
    out["second_consumer_assignment"] = len(again.assignment())
    out["second_consumer_leftovers"] = leftovers
    again.close()

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
