// A serializability checker over a history of committed operations (Adya's direct
// serialization graph). Each operation lists the versions it read and wrote, per key, with
// versions numbered 1, 2, ... in each key's install order (0 = the initial state). Edges:
//   ww: writer of v -> writer of v+1
//   wr: writer of v -> every reader of v
//   rw: every reader of v -> writer of v+1 (anti-dependency)
// The history is conflict-serializable iff the graph has no cycle; findCycle returns one
// (as operation ids, in order) or null.

export interface HistoryOp {
  id: string;
  reads: Map<string, number>;
  writes: Map<string, number>;
}

export interface HistoryProblem {
  kind: "cycle" | "malformed";
  detail: string;
}

/** The direct serialization graph of `ops`, or a malformed-history problem. */
function buildGraph(ops: readonly HistoryOp[]): Map<string, Set<string>> | HistoryProblem {
  const writer = new Map<string, string>(); // "key@version" -> op id
  for (const op of ops) {
    for (const [key, version] of op.writes) {
      const id = `${key}@${version}`;
      if (writer.has(id)) return { kind: "malformed", detail: `two writers of ${id}` };
      writer.set(id, op.id);
    }
  }
  const edges = new Map<string, Set<string>>(ops.map((op) => [op.id, new Set<string>()]));
  const edge = (from: string | undefined, to: string | undefined) => {
    if (from !== undefined && to !== undefined && from !== to) edges.get(from)!.add(to);
  };
  for (const op of ops) {
    for (const [key, version] of op.writes) {
      if (version > 1 && !writer.has(`${key}@${version - 1}`)) {
        return { kind: "malformed", detail: `${op.id} wrote ${key}@${version} after a gap` };
      }
      edge(writer.get(`${key}@${version - 1}`), op.id);
    }
    for (const [key, version] of op.reads) {
      if (version > 0 && !writer.has(`${key}@${version}`)) {
        return { kind: "malformed", detail: `${op.id} read ${key}@${version}, never written` };
      }
      edge(writer.get(`${key}@${version}`), op.id);
      edge(op.id, writer.get(`${key}@${version + 1}`));
    }
  }
  return edges;
}

/** A cycle of the graph (iterative DFS with colours), or null. */
function cycleOf(edges: Map<string, Set<string>>): string[] | null {
  const colour = new Map<string, 1 | 2>();
  for (const start of edges.keys()) {
    if (colour.has(start)) continue;
    const path: string[] = [];
    const stack: { node: string; next: Iterator<string> }[] = [];
    const enter = (node: string) => {
      colour.set(node, 1);
      path.push(node);
      stack.push({ node, next: edges.get(node)!.values() });
    };
    enter(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const step = top.next.next();
      if (step.done === true) {
        colour.set(top.node, 2);
        stack.pop();
        path.pop();
        continue;
      }
      const seen = colour.get(step.value);
      if (seen === 1) return [...path.slice(path.indexOf(step.value)), step.value];
      if (seen === undefined) enter(step.value);
    }
  }
  return null;
}

/** null when the history is serializable, else what is wrong with it. */
export function checkSerializable(ops: readonly HistoryOp[]): HistoryProblem | null {
  const graph = buildGraph(ops);
  if (!(graph instanceof Map)) return graph;
  const cycle = cycleOf(graph);
  return cycle === null ? null : { kind: "cycle", detail: cycle.join(" -> ") };
}

export function op(
  id: string,
  reads: Record<string, number>,
  writes: Record<string, number> = {},
): HistoryOp {
  return { id, reads: new Map(Object.entries(reads)), writes: new Map(Object.entries(writes)) };
}
