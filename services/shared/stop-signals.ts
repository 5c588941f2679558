// How every logkv process stops: SIGTERM and SIGINT run its stop, then it exits 0 (1 if
// stopping failed or took longer than LOGKV_STOP_TIMEOUT_MS, default 30 s).
import type { Logger } from "./log.js";

/** Stops cleanly on SIGTERM and SIGINT, then exits 0 (1 if stopping failed). */
export function onStopSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    // A stop that hangs (a Raft apply waiting for a quorum that is gone, say) must not keep
    // the process alive: past the limit it exits as after a crash, which loses nothing
    // acknowledged (every part recovers from its log).
    const asked = Number(process.env["LOGKV_STOP_TIMEOUT_MS"]);
    const limitMs = Number.isFinite(asked) && asked > 0 ? asked : 30_000;
    setTimeout(() => {
      logger.error("stop timed out: exiting without a clean stop", { limitMs });
      process.exit(1);
    }, limitMs).unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("unclean stop", { error });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => handle("SIGTERM"));
  process.on("SIGINT", () => handle("SIGINT"));
}
