// Measures what the broker did during one timed section of a benchmark: its CPU (whole
// process and event-loop thread, from /proc), the deltas of its Prometheus counters
// (messages and bytes appended; group-commit fsync rounds, which the fsync histogram
// observes once each), its fsync system calls (count, durations and the fraction of the
// window with one in flight, traced with perf), plus the CPU the benchmark client spent
// (this process and any children it reaped, such as kcat). The timed body returns how many
// messages it had acknowledged.
//
// Order matters: the tracer attaches first (perf needs a moment, and the broker is idle
// then), then counters and CPU are sampled around the body only.
import type { BenchBroker } from "./bench-broker.js";
import { FsyncTracer, type FsyncTrace } from "./fsync-trace.js";
import { metricDelta } from "./metrics.js";
import { childrenCpuSeconds, sampleCpu, selfCpuSeconds } from "./proc-cpu.js";
import { ratio } from "./stats.js";

export interface BrokerUsage {
  /** CPU seconds of the whole broker process (all threads) during the window. */
  cpuSeconds: number;
  /** CPU seconds of the broker's main thread (its event loop). */
  mainThreadCpuSeconds: number;
  /** mainThreadCpuSeconds / wall seconds: 1.0 means the event loop never idled. */
  mainThreadBusy: number;
  /** Fraction of the window the event loop was runnable but had no core (machine busy). */
  mainThreadRunqueue: number;
  /** Group-commit fsync rounds: observations of logkv_broker_fsync_seconds. */
  fsyncRounds: number;
  fsyncRoundsPerSecond: number;
  /** messagesIn / fsyncRounds, or null when there was no round. */
  messagesPerFsync: number | null;
  /** fsync + fdatasync system calls (perf; a round may sync several files), or null. */
  fsyncCalls: number | null;
  /** Fraction of the window with an fsync call in flight (perf): near 1.0 is disk-bound. */
  fsyncBusy: number | null;
  /** Durations of the fsync calls (perf). */
  fsyncP50Ms: number | null;
  fsyncP99Ms: number | null;
  messagesIn: number;
  bytesIn: number;
}

export interface WindowResult<T> {
  body: T;
  seconds: number;
  broker: BrokerUsage;
  clientCpuSeconds: number;
}

export async function measureWindow<T>(
  broker: BenchBroker,
  scratchDir: string,
  body: () => Promise<T>,
): Promise<WindowResult<T>> {
  const tracer = await FsyncTracer.start(broker.pid, scratchDir);
  const window = { startNs: process.hrtime.bigint(), endNs: process.hrtime.bigint() };
  try {
    const metricsBefore = await broker.scrape();
    const cpuBefore = sampleCpu(broker.pid);
    const clientBefore = selfCpuSeconds() + childrenCpuSeconds();
    window.startNs = process.hrtime.bigint();
    const result = await body();
    window.endNs = process.hrtime.bigint();
    const seconds = Number(window.endNs - window.startNs) / 1e9;
    const clientCpuSeconds = selfCpuSeconds() + childrenCpuSeconds() - clientBefore;
    const cpuAfter = sampleCpu(broker.pid);
    const metricsAfter = await broker.scrape();
    const trace = tracer === null ? null : await tracer.stop(window);
    if (cpuBefore === null || cpuAfter === null) throw new Error("broker exited during a run");
    const mainThreadCpuSeconds = cpuAfter.mainThreadSeconds - cpuBefore.mainThreadSeconds;
    const messagesIn = metricDelta(metricsBefore, metricsAfter, "logkv_broker_messages_in_total");
    const fsyncRounds = metricDelta(
      metricsBefore,
      metricsAfter,
      "logkv_broker_fsync_seconds_count",
    );
    return {
      body: result,
      seconds,
      clientCpuSeconds,
      broker: {
        cpuSeconds: cpuAfter.processSeconds - cpuBefore.processSeconds,
        mainThreadCpuSeconds,
        mainThreadBusy: mainThreadCpuSeconds / seconds,
        mainThreadRunqueue:
          (cpuAfter.mainThreadRunqueueSeconds - cpuBefore.mainThreadRunqueueSeconds) / seconds,
        fsyncRounds,
        fsyncRoundsPerSecond: fsyncRounds / seconds,
        messagesPerFsync: ratio(messagesIn, fsyncRounds),
        ...traceFigures(trace, seconds),
        messagesIn,
        bytesIn: metricDelta(metricsBefore, metricsAfter, "logkv_broker_bytes_in_total"),
      },
    };
  } finally {
    // On an early throw perf must still go; after a normal run this returns the same trace.
    if (tracer !== null) await tracer.stop(window);
  }
}

function traceFigures(trace: FsyncTrace | null, seconds: number) {
  if (trace === null)
    return { fsyncCalls: null, fsyncBusy: null, fsyncP50Ms: null, fsyncP99Ms: null };
  return {
    fsyncCalls: trace.fsyncs,
    fsyncBusy: trace.busySeconds / seconds,
    fsyncP50Ms: trace.fsyncs > 0 ? trace.p50Ms : null,
    fsyncP99Ms: trace.fsyncs > 0 ? trace.p99Ms : null,
  };
}
