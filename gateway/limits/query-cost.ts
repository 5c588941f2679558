// Static query cost (issue 4, limits): what an operation may cost, computed from its document
// and variables before any resolver runs, so a small document that asks for a huge answer
// (hundreds of aliased reads, a fragment "bomb" that multiplies nested lists) is refused
// with a typed error instead of being executed.
//
// The model is an upper bound on the values a response can hold:
// - every selected field costs 1 (scalars included);
// - a list-typed field multiplies the cost of one element (1 + its selections) by the most
//   elements it can hold: the root field's `limit` argument where the list is the page of a
//   limited read (query, scan, listTables), else the documented maximum of that list (a
//   query/scan page: pageEntriesMax items; batchGetItem: 100 keys; batchWriteItem: 25
//   writes; indexes per table; projected attributes), else LIST_BOUND_DEFAULT;
// - aliases and fragment spreads count every time they appear (a fragment's cost is
//   computed once per root bound and reused, so the analysis itself stays linear in the
//   document even when its expansion is exponential).
// Fields the schema does not know cost 1 (validation reports them). Pure: no I/O.
import {
  Kind,
  getNamedType,
  getNullableType,
  isCompositeType,
  isListType,
  isObjectType,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from "graphql";
import {
  GLOBAL_INDEXES_MAX,
  LOCAL_INDEXES_MAX,
  PROJECTED_ATTRIBUTES_MAX,
} from "../../materializer/catalog/table.js";
import { pageEntriesMax } from "../../materializer/read/limits.js";
import { BATCH_GET_KEYS_MAX, BATCH_WRITE_REQUESTS_MAX } from "../resolvers/batch.js";

/** Elements assumed of a list field the tables below do not name. */
export const LIST_BOUND_DEFAULT = 100;

/** A list bounded by its root field's page size ("root"), or by a fixed maximum. */
type ListBound = number | "root";

/**
 * Most elements of each list field. Batch payloads nest a per-table list in a list of
 * tables; the total across tables is bounded (100 keys, 25 writes), so the outer list takes
 * the total and the inner one 1: outer × (fields + 1) bounds every way to split the total.
 */
const listBounds: Record<string, ListBound> = {
  "ReadPage.items": "root",
  "TableList.tableNames": "root",
  "BatchGetPayload.responses": BATCH_GET_KEYS_MAX,
  "BatchGetPayload.unprocessedKeys": BATCH_GET_KEYS_MAX,
  "BatchGetTableItems.items": 1,
  "BatchGetTableKeys.keys": 1,
  "BatchWritePayload.unprocessedItems": BATCH_WRITE_REQUESTS_MAX,
  "BatchWriteTableRequests.requests": 1,
  "Table.localIndexes": LOCAL_INDEXES_MAX,
  "Table.globalIndexes": GLOBAL_INDEXES_MAX,
  "Projection.nonKeyAttributes": PROJECTED_ATTRIBUTES_MAX,
};

/** A root field's page bound when its `limit` argument is absent: the most a page holds. */
export function rootPageBounds(listTablesLimitMax: number): Record<string, number> {
  return { query: pageEntriesMax, scan: pageEntriesMax, listTables: listTablesLimitMax };
}

export interface QueryCost {
  /** The operation's cost (may be Infinity for absurd documents). */
  cost: number;
  /** Root fields after expanding fragments (aliases counted, repeats too). */
  rootFields: number;
}

export interface CostInput {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  /** Root field → page bound when it has no `limit` (rootPageBounds). */
  rootBounds: Record<string, number>;
}

/** The operation a request runs; null when the document names none that fits. */
export function selectedOperation(
  document: DocumentNode,
  operationName: string | null | undefined,
): OperationDefinitionNode | null {
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  if (operationName === null || operationName === undefined || operationName === "") {
    return operations.length === 1 ? operations[0]! : null;
  }
  return operations.find((o) => o.name?.value === operationName) ?? null;
}

/** The cost and root field count of the selected operation; null: no operation to run. */
export function queryCost(input: CostInput): QueryCost | null {
  const operation = selectedOperation(input.document, input.operationName);
  if (operation === null) return null;
  const root = input.schema.getRootType(operation.operation) ?? null;
  const analysis = new CostAnalysis(input);
  return {
    cost: analysis.setCost(operation.selectionSet, root, 1),
    rootFields: analysis.rootFieldCount(operation.selectionSet, new Set()),
  };
}

class CostAnalysis {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  /** Fragment cost by "name/bound": the same fragment under the same bound costs the same. */
  private readonly memo = new Map<string, number>();
  private readonly rootMemo = new Map<string, number>();
  private readonly visiting = new Set<string>();

  constructor(private readonly input: CostInput) {
    for (const definition of input.document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) {
        this.fragments.set(definition.name.value, definition);
      }
    }
  }

  /** Cost of a selection set on `parent`; `bound` is the enclosing root field's page bound. */
  setCost(set: SelectionSetNode, parent: GraphQLCompositeType | null, bound: number): number {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        total += this.fieldCost(selection, parent, bound);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += this.setCost(selection.selectionSet, this.typeOf(selection, parent), bound);
      } else {
        total += this.spreadCost(selection.name.value, bound);
      }
    }
    return total;
  }

  private spreadCost(name: string, bound: number): number {
    const fragment = this.fragments.get(name);
    // A missing fragment or a cycle is a validation error of its own; it adds nothing here.
    if (fragment === undefined || this.visiting.has(name)) return 0;
    const key = `${name}/${bound}`;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    this.visiting.add(name);
    const cost = this.setCost(fragment.selectionSet, this.typeOf(fragment, null), bound);
    this.visiting.delete(name);
    this.memo.set(key, cost);
    return cost;
  }

  private typeOf(
    node: { typeCondition?: { name: { value: string } } | undefined },
    fallback: GraphQLCompositeType | null,
  ): GraphQLCompositeType | null {
    const name = node.typeCondition?.name.value;
    if (name === undefined) return fallback;
    const type = this.input.schema.getType(name);
    return type !== undefined && isCompositeType(type) ? type : null;
  }

  private fieldCost(node: FieldNode, parent: GraphQLCompositeType | null, bound: number): number {
    if (parent === null || !isObjectType(parent)) return 1;
    const field = parent.getFields()[node.name.value];
    if (field === undefined) return 1;
    const isRoot = this.isRootType(parent);
    const childBound = isRoot ? this.rootBound(node) : bound;
    const named = getNamedType(field.type);
    const children =
      node.selectionSet === undefined || !isCompositeType(named)
        ? 0
        : this.setCost(node.selectionSet, named, childBound);
    const elementCost = 1 + children;
    if (!isListType(getNullableType(field.type))) return elementCost;
    const listed = listBounds[`${parent.name}.${field.name}`] ?? LIST_BOUND_DEFAULT;
    return (listed === "root" ? bound : listed) * elementCost;
  }

  private isRootType(type: GraphQLCompositeType): boolean {
    const { schema } = this.input;
    return (
      type === schema.getQueryType() ||
      type === schema.getMutationType() ||
      type === schema.getSubscriptionType()
    );
  }

  /** A root field's page bound: its `limit` (literal or variable), capped by the maximum. */
  private rootBound(node: FieldNode): number {
    const maximum = this.input.rootBounds[node.name.value] ?? LIST_BOUND_DEFAULT;
    const argument = node.arguments?.find((a) => a.name.value === "limit");
    const limit = argument === undefined ? null : this.intValue(argument.value);
    return limit === null || limit < 1 ? maximum : Math.min(limit, maximum);
  }

  private intValue(value: ValueNode): number | null {
    if (value.kind === Kind.INT) return Number(value.value);
    if (value.kind !== Kind.VARIABLE) return null;
    const given = this.input.variables?.[value.name.value];
    return typeof given === "number" && Number.isInteger(given) ? given : null;
  }

  /** Root fields of a selection set, through fragments (memoized, cycles skipped). */
  rootFieldCount(set: SelectionSetNode, visiting: Set<string>): number {
    let count = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        count += 1;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        count += this.rootFieldCount(selection.selectionSet, visiting);
      } else {
        const name = selection.name.value;
        const fragment = this.fragments.get(name);
        if (fragment === undefined || visiting.has(name)) continue;
        let known = this.rootMemo.get(name);
        if (known === undefined) {
          visiting.add(name);
          known = this.rootFieldCount(fragment.selectionSet, visiting);
          visiting.delete(name);
          this.rootMemo.set(name, known);
        }
        count += known;
      }
    }
    return count;
  }
}
