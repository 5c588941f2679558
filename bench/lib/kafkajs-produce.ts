// Produce load from kafkajs: `producers` independent kafkajs producers (each kafka.producer()
// has its own connections), each in a loop that sends `batchSize` messages per send() call
// and awaits the acknowledgement before the next call, until the deadline. batchSize 1 is the
// "one message per send" application pattern whose group commit the broker must batch; a
// larger batchSize is the batched variant. Counts acknowledged messages only.
//
// Lifecycle: connect() connects every producer and sends one warm-up batch each, outside
// any timed window (connection setup and metadata are not the log's throughput); run() is
// the timed part; disconnect() closes them.
import { Kafka, logLevel, type Message, type Producer } from "kafkajs";

export interface KafkajsLoadOptions {
  address: string;
  topic: string;
  producers: number;
  batchSize: number;
  messageBytes: number;
  acks: 1 | -1;
}

export interface LoadOutcome {
  messages: number;
  errors: number;
  firstError: string | null;
}

/** Send errors after which a producer gives up; the run then reports what it had. */
const PRODUCER_ERRORS_MAX = 10;

export class KafkajsLoad {
  private readonly producers: Producer[] = [];
  private readonly messages: Message[];

  constructor(private readonly options: KafkajsLoadOptions) {
    const value = Buffer.alloc(options.messageBytes, 0x78);
    this.messages = Array.from({ length: options.batchSize }, () => ({ value }));
  }

  async connect(): Promise<void> {
    const kafka = new Kafka({
      clientId: "logkv-bench",
      brokers: [this.options.address],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100 },
    });
    for (let i = 0; i < this.options.producers; i++) {
      this.producers.push(kafka.producer({ allowAutoTopicCreation: false, idempotent: false }));
    }
    await Promise.all(this.producers.map((producer) => producer.connect()));
    await Promise.all(this.producers.map((producer) => this.send(producer)));
  }

  private send(producer: Producer): Promise<unknown> {
    const { topic, acks } = this.options;
    return producer.send({ topic, acks, messages: this.messages });
  }

  async run(durationMs: number): Promise<LoadOutcome> {
    const deadline = performance.now() + durationMs;
    const outcome: LoadOutcome = { messages: 0, errors: 0, firstError: null };
    const loop = async (producer: Producer): Promise<void> => {
      let errors = 0;
      while (performance.now() < deadline && errors < PRODUCER_ERRORS_MAX) {
        try {
          await this.send(producer);
          outcome.messages += this.options.batchSize;
        } catch (error) {
          errors++;
          outcome.errors++;
          outcome.firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    };
    await Promise.all(this.producers.map(loop));
    return outcome;
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled(this.producers.map((producer) => producer.disconnect()));
  }
}
