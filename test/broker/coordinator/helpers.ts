// Shared fixtures for the coordinator tests: a silent logger, a coordinator on a FakeClock with
// an in-memory offset store and predictable member ids, and request builders with defaults.
import { FakeClock } from "../../../services/shared/clock.js";
import type { Logger } from "../../../services/shared/log.js";
import {
  GroupCoordinator,
  type GroupCoordinatorOptions,
  type JoinRequest,
  type SyncRequest,
} from "../../../services/broker/coordinator/group-coordinator.js";
import { MemoryOffsetStore } from "../../../services/broker/coordinator/offset-store.js";

export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

export interface Harness {
  clock: FakeClock;
  coordinator: GroupCoordinator;
  store: MemoryOffsetStore;
}

export async function harness(options: Partial<GroupCoordinatorOptions> = {}): Promise<Harness> {
  const clock = new FakeClock(1_000_000);
  const store = new MemoryOffsetStore();
  let issued = 0;
  const coordinator = await GroupCoordinator.open({
    clock,
    offsetStore: store,
    limits: { groupMembersMax: 10, groupsMax: 100, offsetMetadataBytesMax: 16 },
    logger: silentLogger,
    initialRebalanceDelayMs: 0,
    newMemberId: (clientId) => `${clientId}-${++issued}`,
    ...options,
  });
  return { clock, coordinator, store };
}

export function joinRequest(overrides: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: "g",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: "",
    groupInstanceId: null,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: Buffer.from("meta") }],
    requireKnownMemberId: false,
    clientId: "c",
    clientHost: "/127.0.0.1",
    ...overrides,
  };
}

export function syncRequest(overrides: Partial<SyncRequest> = {}): SyncRequest {
  return {
    groupId: "g",
    generationId: 1,
    memberId: "",
    groupInstanceId: null,
    protocolType: null,
    protocolName: null,
    assignments: [],
    ...overrides,
  };
}

/** Lets resolved promises' continuations run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, for asserting that a request is being held. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { promise, done: () => settled };
}
