// Change events of a table read over SSE from a gateway (`changes` subscriptions), for the
// end-to-end tests of resumable change streams.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

export interface Change {
  keys: { id: string };
  partition: number;
  offset: string;
  token: string;
}

/** A change's place in the log: equal for the same change however it was delivered. */
export const changeId = (e: Change): string => `${e.partition}/${e.offset}`;

export function changesSubscription(table: string): string {
  return `subscription($after: String) { changes(table: "${table}", after: $after) {
  keys partition offset token } }`;
}

/**
 * SSE events of `table` after `afterToken` until `enough` says so or `idleMs` pass without
 * one; while `patient` holds the idle wait is 30 s (a pause of the stream while the cluster
 * recovers is not its end).
 */
export async function sseChanges(
  url: string,
  table: string,
  afterToken: string,
  enough: (events: Change[]) => boolean,
  idleMs: number,
  patient: (events: Change[]) => boolean = () => false,
): Promise<Change[]> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: changesSubscription(table), variables: { after: afterToken } }),
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  const events: Change[] = [];
  let text = "";
  try {
    while (!enough(events)) {
      const wait = patient(events) ? 30_000 : idleMs;
      const chunk = await Promise.race([reader.read(), sleep(wait, null, { ref: false })]);
      if (chunk === null || chunk.done) break;
      text += Buffer.from(chunk.value).toString();
      let end: number;
      while ((end = text.indexOf("\n\n")) >= 0 && !enough(events)) {
        const data = text
          .slice(0, end)
          .split("\n")
          .find((l) => l.startsWith("data:"));
        text = text.slice(end + 2);
        if (data === undefined) continue;
        const payload = JSON.parse(data.slice(5)) as {
          data?: { changes: Change };
          errors?: unknown;
        };
        assert.equal(payload.errors, undefined, JSON.stringify(payload.errors));
        if (payload.data !== undefined) events.push(payload.data.changes);
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}
