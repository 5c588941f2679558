// The stateless gateway's backend (gateway/backend.ts): every read, wait and outcome goes to
// a materializer that owns the partitions, chosen from the routing view
// (services/routing/), over the internal RPC (materializer/rpc/).
//
// Routing: the live owners of every partition a request spans, least lagging first. On
// NOT_OWNER, an unreachable node, a lost connection or a node gone from the view, the
// request goes to the next owner, and once all were tried, waits a little for the view to
// change and starts over, until the request's deadline. A read carries its fence (the
// offsets STRONG and SESSION need), and the owner that serves it waits for them on its own
// applied offsets, so whichever owner answers, it has applied what the read must see.
//
// The catalog: every node applies it, and the gateway keeps a copy (table() and tables()
// are synchronous), refreshed from any live node when the view shows a newer catalog, when
// a catalog wait asks for a newer one, and after each DDL outcome.
//
// Scans of a table or LSI fan out per partition to each partition's owners (remote-scan.ts);
// GSI queries and scans go to any node, fenced in two halves (globalIndexRead).
// Transactions: the gateway runs the coordinator itself, and `participants` reads the votes
// and applied offsets at each partition's owners and the prepared entries of every live node.
// Change streams: one long poll per followed partition at its owners (remote-changes.ts).
//
// Lifecycle: start() follows the view and waits for the first catalog; stop() closes the
// RPC connections and the follower. Single event loop.
import type { TlsClientFiles } from "../../services/shared/tls.js";
import { readFileSync } from "node:fs";
import type { ReadPage } from "../../materializer/read/index.js";
import { CATALOG_TOPIC, tableTopic, type CatalogEntry } from "../../materializer/state/records.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { RpcBusy, RpcClient, RpcUnreachable } from "../../materializer/rpc/client.js";
import type { PayloadEncoding } from "../../materializer/rpc/payload.js";
import type { RpcMethod } from "../../materializer/rpc/protocol.js";
import type { Outcome } from "../../schemas/records.js";
import { RoutingFollower } from "../../services/routing/follower.js";
import type { RoutedNode } from "../../services/routing/view.js";
import { DbError, isDbError } from "../../services/shared/errors.js";
import type { Logger } from "../../services/shared/log.js";
import type {
  ChangeCursor,
  ChangeCursorOptions,
  GatewayBackend,
  ReadAnswer,
  ReadFence,
} from "../backend.js";
import type { ChangeEvent } from "../../schemas/records.js";
import type { PreparedEntry, TxnParticipants } from "../../services/transactions/coordinator.js";
import type { TxnOutcome } from "../../schemas/transactions.js";
import { PAGE_MAX, RemoteChangeStream } from "./remote-changes.js";
import {
  BackupUnavailableError,
  type BackupInfo,
} from "../../materializer/restore/restore-service.js";
import { scanAcross, scanPartitionsInFlight, type ScanPageStats } from "./remote-scan.js";
import { remoteRestoreApi } from "./remote-restore.js";
import type { RestoreOp } from "../../materializer/rpc/restore-api.js";
import type { PartitionPage } from "../../materializer/rpc/scan-partition.js";
import { partitionOf } from "../consistency/partition.js";
import { throttledIfLimit } from "../errors.js";
import { RemoteProbe, type RetryReason } from "./remote-probe.js";

export interface RemoteBackendOptions {
  brokers: string[];
  /** SSL to the brokers, for the routing follower; absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  logger: Logger;
  /** PEM CA file trusted for materializers that serve RPC over TLS. */
  rpcTlsCaFile?: string;
  encoding?: PayloadEncoding;
  /** How long start() waits for a live node and its catalog. */
  startTimeoutMs?: number;
  /** Pause before trying the owners again once all have failed. */
  retryPauseMs?: number;
  goneAfterMs?: number;
  /** Partition pages one scan page reads at once (remote-scan.ts); default 4, 1 = in turn. */
  scanPartitionsInFlight?: number;
  /**
   * The owners' half of a STRONG/SESSION GSI read's fence (RPC `published`); default true.
   * false only shows what it prevents (test/gateway/remote/gsi-fence.test.ts).
   */
  globalIndexOwnersFence?: boolean;
}

export class RemoteBackend implements GatewayBackend {
  readonly remote = true;
  readonly follower: RoutingFollower;
  readonly probe: RemoteProbe;
  private readonly clients = new Map<string, Promise<RpcClient>>();
  private readonly tlsCa: Buffer | undefined;
  private catalog = new Map<string, CatalogEntry>();
  private catalogApplied = 0n;
  private catalogRefresh: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Nodes that were unreachable lately -> until when they go last among owners. */
  private readonly suspects = new Map<string, number>();
  /** Spreads requests over owners that are equally caught up. */
  private turn = 0;

  constructor(private readonly options: RemoteBackendOptions) {
    this.tlsCa = options.rpcTlsCaFile === undefined ? undefined : readTlsCa(options.rpcTlsCaFile);
    this.follower = new RoutingFollower({
      brokers: options.brokers,
      kafkaTls: options.kafkaTls,
      logger: options.logger.child("routing"),
      clientId: "logkv-gateway-routing",
      goneAfterMs: options.goneAfterMs,
      onBadRecord: () => this.probe.badRecord(),
    });
    this.probe = new RemoteProbe(
      () => this.follower.view.ageSeconds(Date.now()),
      () => this.follower.view.liveNodes(Date.now()).length,
    );
  }

  async start(): Promise<void> {
    await this.follower.start();
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 30_000);
    await this.refreshCatalog(0n, deadline);
    // Tables created through other gateways show up within a heartbeat.
    this.timer = setInterval(() => this.followCatalog(), 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.follower.stop();
    for (const client of this.clients.values())
      void client.then(
        (c) => c.close(),
        () => undefined,
      );
    this.clients.clear();
  }

  // ---- the catalog --------------------------------------------------------------------

  table(name: string): CatalogEntry | undefined {
    return this.catalog.get(name);
  }

  tables(): CatalogEntry[] {
    return [...this.catalog.values()];
  }

  /** A table missing from the copy: fetch the newest catalog an owner has, once. */
  async catalogMiss(): Promise<void> {
    const running = this.catalogRefresh;
    if (running !== null) return running.catch(() => undefined);
    const refresh = this.fetchCatalog(0n, Date.now() + 1_000);
    this.catalogRefresh = refresh;
    try {
      await refresh;
    } catch {
      // The read answers NOT_FOUND from the copy it has.
    } finally {
      if (this.catalogRefresh === refresh) this.catalogRefresh = null;
    }
  }

  private followCatalog(): void {
    const newest = this.follower.view.bestApplied(CATALOG_TOPIC, 0, Date.now());
    if (newest <= this.catalogApplied || this.catalogRefresh !== null) return;
    this.refreshCatalog(newest, Date.now() + 5_000).catch((error: unknown) =>
      this.options.logger.warn("catalog refresh failed", { error }),
    );
  }

  /** Brings the catalog copy to at least `atLeast` (a catalog offset), from any live node. */
  private async refreshCatalog(atLeast: bigint, deadline: number): Promise<void> {
    while (this.catalogApplied < atLeast || this.catalogApplied === 0n) {
      const running = this.catalogRefresh;
      if (running !== null) {
        await running;
        if (this.catalogApplied >= atLeast && atLeast > 0n) return;
      }
      const refresh = this.fetchCatalog(atLeast, deadline);
      this.catalogRefresh = refresh;
      try {
        await refresh;
      } finally {
        if (this.catalogRefresh === refresh) this.catalogRefresh = null;
      }
      if (atLeast === 0n) return;
    }
  }

  private async fetchCatalog(atLeast: bigint, deadline: number): Promise<void> {
    const answer = (await this.route("catalog", CATALOG_TOPIC, [0], deadline, (timeoutMs) => ({
      atLeast,
      timeoutMs,
    }))) as { applied: bigint; entries: CatalogEntry[] };
    if (answer.applied < this.catalogApplied) return;
    this.catalog = new Map(answer.entries.map((e) => [e.definition.name, e]));
    this.catalogApplied = answer.applied;
  }

  // ---- offsets, waits, outcomes -------------------------------------------------------

  appliedOffset(topic: string, partition: number): bigint {
    if (topic === CATALOG_TOPIC && partition === 0) return this.catalogApplied;
    return this.follower.view.bestApplied(topic, partition, Date.now());
  }

  async waitApplied(topic: string, partition: number, offset: bigint, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    if (topic === CATALOG_TOPIC) return this.refreshCatalog(offset, deadline);
    await this.route("waitApplied", topic, [partition], deadline, (ms) => ({
      topic,
      partition,
      offset,
      timeoutMs: ms,
    }));
  }

  /**
   * Waits until an owner of the table's partition has applied every record below `offset`
   * and sent their change events to the changes topic (RPC `published`): what a restore run
   * by a replica-set member waits for before the target serves (materializer/restore).
   */
  async waitPublished(
    table: string,
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.route("published", topic, [partition], deadline, (ms) => ({
      table,
      partition,
      offset,
      timeoutMs: ms,
    }));
  }

  async awaitOutcome(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<Outcome> {
    const deadline = Date.now() + timeoutMs;
    const outcome = (await this.route("awaitOutcome", topic, [partition], deadline, (ms) => ({
      topic,
      partition,
      offset,
      timeoutMs: ms,
    }))) as Outcome;
    // A DDL's resolver reads the catalog right after its outcome.
    if (topic === CATALOG_TOPIC) await this.refreshCatalog(offset + 1n, deadline);
    return outcome;
  }

  // ---- reads --------------------------------------------------------------------------

  getItem(table: string, key: Item, options: Record<string, unknown>, fence?: ReadFence) {
    const entry = this.entry(table);
    const pk = key[entry.definition.partitionKey.name];
    if (pk === undefined) throw new DbError("INVALID_ARGUMENT", "key lacks its partition key");
    const partitions = fence?.partitions ?? [partitionOf(pk, entry.definition.partitions)];
    return this.tableRead<{ item: Item | null }>("getItem", entry, partitions, fence, {
      key,
      options,
    });
  }

  query(table: string, options: Record<string, unknown>, fence?: ReadFence) {
    const entry = this.entry(table);
    if (isGlobalIndex(entry, options.index))
      return this.globalIndexRead("query", entry, options, fence);
    const partitions = fence?.partitions ?? allOf(entry);
    return this.tableRead<ReadPage>("query", entry, partitions, fence, { options });
  }

  /** A GSI scan goes to any node; a base or LSI scan fans out per partition (remote-scan.ts). */
  async scan(table: string, options: Record<string, unknown>, fence?: ReadFence) {
    const entry = this.entry(table);
    if (isGlobalIndex(entry, options.index))
      return this.globalIndexRead("scan", entry, options, fence);
    const topic = tableTopic(entry.definition.name, entry.generation);
    // One deadline for the whole page, however many partitions it reads.
    const deadline = Date.now() + (fence?.timeoutMs ?? 5_000);
    const stats: ScanPageStats = { sent: 0, unused: 0, reread: 0, inFlightMax: 0 };
    try {
      const { result, offsets } = await scanAcross(
        entry,
        options,
        fence,
        (partition, page, floor) =>
          this.tableRead<PartitionPage>(
            "scanPartition",
            entry,
            [partition],
            {
              timeoutMs: Math.max(1, deadline - Date.now()),
              ...(floor !== undefined && { floor: new Map([[partition, floor]]) }),
            },
            { options: page },
          ),
        this.options.scanPartitionsInFlight ?? scanPartitionsInFlight,
        stats,
      );
      return { result, topic, offsets };
    } finally {
      this.probe.scanPage(stats);
    }
  }

  /**
   * A read of a global index. Every node holds every GSI whole (it applies every changes
   * partition), so any node may serve it, but a STRONG or SESSION fence names base-partition
   * offsets that only their owners apply. The fence is therefore taken in two halves: first
   * each base partition's owner waits until it has applied its floor AND sent the change
   * events below it to the changes topic (RPC `published`); only then does the serving node
   * read the changes topic's end offsets and wait until its index has applied them
   * (`waitGlobalIndexes`). Every change below the floor was acknowledged by the log before
   * those end offsets were read, so they cover it, and the index the node reads reflects it.
   * EVENTUAL reads skip both halves. The token reports the floor (what the fence proved).
   */
  private async globalIndexRead(
    method: "query" | "scan",
    entry: CatalogEntry,
    options: Record<string, unknown>,
    fence: ReadFence | undefined,
  ): Promise<ReadAnswer<ReadPage>> {
    const name = entry.definition.name;
    const topic = tableTopic(name, entry.generation);
    const deadline = Date.now() + (fence?.timeoutMs ?? 5_000);
    const fenced = fence?.globalIndexes === true;
    const owners = fenced && this.options.globalIndexOwnersFence !== false;
    const floor = owners ? [...(fence.floor ?? [])].filter(([, offset]) => offset > 0n) : [];
    await Promise.all(
      floor.map(([partition, offset]) =>
        this.route("published", topic, [partition], deadline, (timeoutMs) => ({
          table: name,
          partition,
          offset,
          timeoutMs,
        })),
      ),
    );
    // Any node that applies the catalog (every node) holds the index: rank by the catalog.
    const answer = (await this.route(method, CATALOG_TOPIC, [0], deadline, (timeoutMs) => ({
      options,
      table: name,
      // The node knows the table at least as the gateway's copy does (it may lag behind it).
      catalog: this.catalogApplied,
      partitions: [],
      fence: { globalIndexes: fenced },
      timeoutMs,
    }))) as ReadAnswer<ReadPage>;
    const proven = new Map(floor);
    return { ...answer, topic, offsets: allOf(entry).map((p) => proven.get(p) ?? 0n) };
  }

  /** The table's changes, polled from each partition's owners (remote-changes.ts). */
  changes(table: string, options: ChangeCursorOptions = {}): ChangeCursor {
    const entry = this.entry(table);
    const topic = tableTopic(entry.definition.name, entry.generation);
    const poll = async (partition: number, from: bigint | null) => {
      const deadline = Date.now() + CHANGES_POLL_MS + 1_000;
      return (await this.route(
        "changes",
        topic,
        [partition],
        deadline,
        (ms) => ({
          table: entry.definition.name,
          partition,
          from,
          limit: PAGE_MAX,
          timeoutMs: Math.min(ms, CHANGES_POLL_MS),
        }),
        "changes",
      )) as { changes: ChangeEvent[]; next: bigint };
    };
    const partitions = options.partitions ?? allOf(entry);
    return new RemoteChangeStream(poll, partitions, options.from, () =>
      this.probe.retried("no_owner"),
    );
  }

  // ---- restores, backups, time travel: forwarded to a `--restore` node ----------------

  readonly restoreApi = remoteRestoreApi((op, args, timeoutMs) =>
    this.restoreCall(op, args, timeoutMs),
  );
  /** Per node id, whether its RPC server runs restores (its `hello`), by its start time. */
  private readonly restoreCapable = new Map<string, { startedAtMs: number; restore: boolean }>();

  /**
   * One RestoreApi call at the live `--restore` node with the smallest id (the same node for
   * every gateway while it lives: directory backups are in its folder); an unreachable one
   * is skipped for the next. Its answer, errors included, is returned as it is.
   */
  private async restoreCall(op: RestoreOp, args: Record<string, unknown>, timeoutMs: number) {
    const nodes = await this.restoreNodes();
    if (nodes.length === 0) {
      throw new DbError(
        "INVALID_ARGUMENT",
        "restore is not enabled on this gateway: no live materializer runs restores " +
          "(start one with --restore)",
      );
    }
    const folder = args.location === null || args.location === undefined;
    if (op === "listBackups" && folder) {
      // Another node's folder backup is available when that node serves restores now.
      const serving = new Set(nodes.map((n) => n.record.node));
      const listed = (await this.restoreCallAt(nodes, op, args, timeoutMs)) as BackupInfo[];
      return listed.map((b) =>
        !b.available && b.node !== null && serving.has(b.node) ? { ...b, available: true } : b,
      );
    }
    if ((op === "restoreBackup" || op === "deleteBackup") && folder) {
      // A folder backup is restored or deleted by the node whose folder holds it.
      const name = op === "restoreBackup" ? args.backup : args.name;
      const listed = (await this.restoreCallAt(
        nodes,
        "listBackups",
        { location: null },
        timeoutMs,
      )) as BackupInfo[];
      const found = listed.find((b) => b.name === name && b.location === null);
      if (found !== undefined && !found.available && found.node !== null) {
        const holder = nodes.find((n) => n.record.node === found.node);
        if (holder === undefined) throw new BackupUnavailableError(found.name, found.node, true);
        return this.restoreCallAt([holder], op, args, timeoutMs);
      }
    }
    return this.restoreCallAt(nodes, op, args, timeoutMs);
  }

  /** The call at the first of `nodes` that is reachable; its answer or error as it is. */
  private async restoreCallAt(
    nodes: RoutedNode[],
    op: RestoreOp,
    args: Record<string, unknown>,
    timeoutMs: number,
  ) {
    let last: unknown = null;
    for (const node of nodes) {
      try {
        return await this.call(node, "restore", { op, args, timeoutMs });
      } catch (error) {
        if (!(error instanceof RpcUnreachable)) throw error;
        last = error;
        this.probe.retried("unreachable");
        this.clients.delete(`requests:${node.record.rpc}`);
      }
    }
    throw last;
  }

  /** Live nodes that run restores, smallest node id first (asks each new node's `hello`). */
  private async restoreNodes(): Promise<RoutedNode[]> {
    const live = this.follower.view.liveNodes(Date.now());
    await Promise.all(
      live.map(async (node) => {
        const known = this.restoreCapable.get(node.record.node);
        if (known?.startedAtMs === node.record.startedAtMs) return;
        try {
          const hello = (await this.call(node, "hello", { timeoutMs: 2_000 })) as {
            restore?: boolean;
          };
          this.restoreCapable.set(node.record.node, {
            startedAtMs: node.record.startedAtMs,
            restore: hello.restore === true,
          });
        } catch {
          // Unreachable now: not a candidate this time, asked again next time.
        }
      }),
    );
    return live
      .filter((n) => this.restoreCapable.get(n.record.node)?.restore === true)
      .sort((a, b) => (a.record.node < b.record.node ? -1 : a.record.node > b.record.node ? 1 : 0));
  }

  // ---- transactions: the coordinator's participants ----------------------------------

  readonly participants: TxnParticipants = {
    voteAt: async (topic, partition, offset, timeoutMs) => {
      const answer = (await this.route(
        "txnVote",
        topic,
        [partition],
        Date.now() + timeoutMs,
        (ms) => ({ topic, partition, offset, timeoutMs: ms }),
      )) as { vote: TxnOutcome | null };
      return answer.vote ?? undefined;
    },
    waitApplied: (topic, partition, offset, timeoutMs) =>
      this.waitApplied(topic, partition, offset, timeoutMs),
    partitionsOf: (table) => this.catalog.get(table)?.definition.partitions,
    prepared: () => this.prepared(),
  };

  /**
   * Every participant entry still prepared, from every live node (each lists the partitions
   * it owns). A node that cannot answer is skipped: recovery sweeps again a second later.
   */
  private async prepared(): Promise<PreparedEntry[]> {
    const nodes = this.follower.view.liveNodes(Date.now());
    const answers = await Promise.all(
      nodes.map((node) =>
        this.call(node, "txnPrepared", {}).then(
          (answer) => (answer as { entries: PreparedEntry[] }).entries,
          () => [] as PreparedEntry[],
        ),
      ),
    );
    const found = new Map<string, PreparedEntry>();
    for (const entry of answers.flat()) {
      found.set(`${entry.topic}/${entry.partition}/${entry.txnId}`, entry);
    }
    return [...found.values()];
  }

  private entry(table: string): CatalogEntry {
    const entry = this.catalog.get(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    return entry;
  }

  private async tableRead<T>(
    method: RpcMethod,
    entry: CatalogEntry,
    partitions: readonly number[],
    fence: ReadFence | undefined,
    body: Record<string, unknown>,
  ): Promise<ReadAnswer<T>> {
    const topic = tableTopic(entry.definition.name, entry.generation);
    const deadline = Date.now() + (fence?.timeoutMs ?? 5_000);
    const wireFence = {
      // Only the floor of the partitions this request spans travels with it.
      ...(fence?.floor !== undefined && {
        floor: new Map([...fence.floor].filter(([p]) => partitions.includes(p))),
      }),
      globalIndexes: fence?.globalIndexes === true,
    };
    return (await this.route(method, topic, partitions, deadline, (timeoutMs) => ({
      ...body,
      table: entry.definition.name,
      partitions: [...partitions],
      fence: wireFence,
      timeoutMs,
    }))) as ReadAnswer<T>;
  }

  // ---- routing ------------------------------------------------------------------------

  /**
   * Sends one request to an owner of every partition in `partitions`, and again to another
   * owner on a retriable failure, until `deadline`. The body is rebuilt per attempt with
   * the time left, so an owner never waits past the request's deadline.
   */
  private async route(
    method: RpcMethod,
    topic: string,
    partitions: readonly number[],
    deadline: number,
    body: (timeoutMs: number) => Record<string, unknown>,
    lane: Lane = "requests",
  ): Promise<unknown> {
    const tried = new Set<string>();
    let last: unknown = null;
    // This round's owners that answered "trimmed" (changes not kept there), and the last such
    // answer: surfaced only once every owner tried in a round gave it.
    let trimmed = 0;
    let trimmedError: unknown = null;
    for (;;) {
      const now = Date.now();
      const owners = this.rank(topic, partitions, now).filter((n) => !tried.has(n.record.node));
      const node = owners[0];
      if (node === undefined) {
        if (trimmedError !== null && (trimmed === tried.size || now >= deadline))
          throw trimmedError;
        if (now >= deadline) throw throttledIfLimit(lastOr(last, topic, partitions));
        // Everyone was tried (or nobody owns it yet): wait for the view to change.
        this.probe.retried("no_owner");
        tried.clear();
        trimmed = 0;
        await pause(Math.min(this.options.retryPauseMs ?? 50, Math.max(1, deadline - now)));
        continue;
      }
      tried.add(node.record.node);
      try {
        return await this.call(node, method, body(Math.max(1, deadline - now)), lane);
      } catch (error) {
        // A change-stream resume below what this owner keeps (a member seeded from a
        // checkpoint holds no change events below its seed; retention): another owner that
        // replayed the log may still have them.
        if (method === "changes" && isDbError(error, "OFFSET_OUT_OF_RANGE")) {
          trimmed++;
          trimmedError = error;
          this.probe.retried("trimmed");
          continue;
        }
        const reason = retryReason(error);
        if (reason === null) throw error;
        // Busy everywhere until the deadline: the client sees THROTTLED (retriable).
        if (Date.now() >= deadline) throw throttledIfLimit(error);
        last = error;
        this.probe.retried(reason);
        if (reason === "unreachable") {
          this.clients.delete(`${lane}:${node.record.rpc}`);
          this.suspects.set(node.record.node, Date.now() + SUSPECT_MS);
        }
      }
    }
  }

  /**
   * The owners in the order to try: those caught up (within LAG_SLACK records of the best,
   * by the view) taking turns, then the laggards, then nodes unreachable lately.
   */
  private rank(topic: string, partitions: readonly number[], now: number): RoutedNode[] {
    const owners = this.follower.view.owners(topic, partitions, now);
    const appliedOf = (n: RoutedNode) =>
      partitions.reduce((sum, p) => sum + (n.applied.get(`${topic}/${p}`) ?? 0n), 0n);
    const suspect = (n: RoutedNode) => (this.suspects.get(n.record.node) ?? 0) > now;
    const healthy = owners.filter((n) => !suspect(n));
    const best = healthy[0] === undefined ? 0n : appliedOf(healthy[0]);
    const slack = LAG_SLACK * BigInt(partitions.length);
    const caughtUp = healthy.filter((n) => appliedOf(n) + slack >= best);
    const start = caughtUp.length === 0 ? 0 : this.turn++ % caughtUp.length;
    const turns = [...caughtUp.slice(start), ...caughtUp.slice(0, start)];
    return [...turns, ...healthy.slice(caughtUp.length), ...owners.filter(suspect)];
  }

  private async call(
    node: RoutedNode,
    method: RpcMethod,
    body: Record<string, unknown>,
    lane: Lane = "requests",
  ) {
    const client = await this.client(node, lane);
    const timeoutMs = typeof body.timeoutMs === "number" ? body.timeoutMs : 5_000;
    this.probe.started();
    const started = performance.now();
    let code = "OK";
    try {
      return await client.call(method, body, timeoutMs);
    } catch (error) {
      code = isDbError(error)
        ? error instanceof RpcUnreachable
          ? "UNREACHABLE"
          : error.code
        : "INTERNAL";
      throw error;
    } finally {
      this.probe.done(method, code, (performance.now() - started) / 1000);
    }
  }

  private client(node: RoutedNode, lane: Lane): Promise<RpcClient> {
    const address = node.record.rpc;
    const id = `${lane}:${address}`;
    const open = this.clients.get(id);
    if (open !== undefined) {
      return open.then((client) => {
        if (!client.closed) return client;
        this.clients.delete(id);
        return this.client(node, lane);
      });
    }
    const colon = address.lastIndexOf(":");
    if (node.record.tls && this.tlsCa === undefined) {
      // A configuration fault, not a node fault: no retry elsewhere hides it.
      const message = `${node.record.node} serves RPC over TLS: start with --rpc-tls-ca`;
      return Promise.reject(new DbError("INVALID_CONFIG", message));
    }
    const connecting = RpcClient.connect({
      host: address.slice(0, colon),
      port: Number(address.slice(colon + 1)),
      encoding: this.options.encoding,
      ...(node.record.tls && { tlsCa: this.tlsCa }),
    });
    this.clients.set(id, connecting);
    connecting.catch(() => {
      if (this.clients.get(id) === connecting) this.clients.delete(id);
    });
    return connecting;
  }
}

/**
 * Connections per node: requests (reads, waits, votes) and change polls, which stay in
 * flight up to CHANGES_POLL_MS each, so that open subscriptions never use up the in-flight
 * bound that reads need.
 */
type Lane = "requests" | "changes";
/** How long an owner holds a changes poll open when nothing new is applied. */
const CHANGES_POLL_MS = 5_000;
/** How long a node that could not be reached goes last (it leaves the view within 5 s). */
const SUSPECT_MS = 5_000;
/** Owners this close (records per partition) to the most caught-up one share the load. */
const LAG_SLACK = 1_000n;

function isGlobalIndex(entry: CatalogEntry, index: unknown): boolean {
  return entry.definition.globalIndexes.some((gsi) => gsi.name === index);
}

function allOf(entry: CatalogEntry): number[] {
  return Array.from({ length: entry.definition.partitions }, (_, p) => p);
}

function retryReason(error: unknown): RetryReason | null {
  if (error instanceof RpcUnreachable) return "unreachable";
  if (error instanceof RpcBusy) return "busy";
  if (isDbError(error, "NOT_OWNER")) return "not_owner";
  return null;
}

function lastOr(last: unknown, topic: string, partitions: readonly number[]): unknown {
  if (last !== null) return last;
  return new DbError("NOT_OWNER", `no live materializer owns ${topic}/${partitions.join(",")}`);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readTlsCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `cannot read the RPC TLS CA ${file}`, { cause: error });
  }
}
