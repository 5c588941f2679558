// The table definition: what the catalog knows about a table. It travels inside the catalog
// events (CreateTable, UpdateTable) and is stored on its own under key c<table>.
// Schemas: key-attribute-v1, projection-v1, local-secondary-index-v1,
// global-secondary-index-v1, table-definition-v1 (schemas/avro/).

import type { KeyType } from "../materializer/values/attribute-value.js";
import { AV, fromAvroOptional, int32, toAvroOptional, type AvroUnion } from "./avro-values.js";

export interface KeyAttribute {
  name: string;
  type: KeyType;
}

export type ProjectionType = "ALL" | "KEYS_ONLY" | "INCLUDE";

/** Which attributes an index copies; nonKeyAttributes is empty unless type is INCLUDE. */
export interface Projection {
  type: ProjectionType;
  nonKeyAttributes: string[];
}

/** Same partition key as the table, another sort key. */
export interface LocalSecondaryIndex {
  name: string;
  sortKey: KeyAttribute;
  projection: Projection;
}

/** Another partition key and optional sort key, maintained from change events. */
export interface GlobalSecondaryIndex {
  name: string;
  partitionKey: KeyAttribute;
  sortKey: KeyAttribute | null;
  projection: Projection;
}

export interface TableDefinition {
  name: string;
  partitionKey: KeyAttribute;
  sortKey: KeyAttribute | null;
  localIndexes: LocalSecondaryIndex[];
  globalIndexes: GlobalSecondaryIndex[];
  /** The attribute holding an item's expiry (epoch seconds), or null when TTL is off. */
  ttlAttribute: string | null;
  /** Partition count of the table's topic, an int32 > 0. */
  partitions: number;
}

interface AvroKeyAttribute {
  name: string;
  type: KeyType;
}

interface AvroGlobalIndex {
  name: string;
  partitionKey: AvroKeyAttribute;
  sortKey: AvroUnion | null;
  projection: Projection;
}

export interface AvroTableDefinition {
  name: string;
  partitionKey: AvroKeyAttribute;
  sortKey: AvroUnion | null;
  localIndexes: { name: string; sortKey: AvroKeyAttribute; projection: Projection }[];
  globalIndexes: AvroGlobalIndex[];
  ttlAttribute: AvroUnion | null;
  partitions: number;
}

const KEY_ATTRIBUTE = `${AV}KeyAttribute`;

function keyAttribute(key: AvroKeyAttribute): KeyAttribute {
  return { name: key.name, type: key.type };
}

function projection(p: Projection): Projection {
  return { type: p.type, nonKeyAttributes: [...p.nonKeyAttributes] };
}

export function toAvroGlobalIndex(index: GlobalSecondaryIndex): AvroGlobalIndex {
  return {
    name: index.name,
    partitionKey: keyAttribute(index.partitionKey),
    sortKey: toAvroOptional(KEY_ATTRIBUTE, index.sortKey && keyAttribute(index.sortKey)),
    projection: projection(index.projection),
  };
}

export function fromAvroGlobalIndex(index: AvroGlobalIndex): GlobalSecondaryIndex {
  return {
    name: index.name,
    partitionKey: keyAttribute(index.partitionKey),
    sortKey: fromAvroOptional(index.sortKey, KEY_ATTRIBUTE, keyAttribute),
    projection: projection(index.projection),
  };
}

export function toAvroTableDefinition(table: TableDefinition): AvroTableDefinition {
  return {
    name: table.name,
    partitionKey: keyAttribute(table.partitionKey),
    sortKey: toAvroOptional(KEY_ATTRIBUTE, table.sortKey && keyAttribute(table.sortKey)),
    localIndexes: table.localIndexes.map((index) => ({
      name: index.name,
      sortKey: keyAttribute(index.sortKey),
      projection: projection(index.projection),
    })),
    globalIndexes: table.globalIndexes.map(toAvroGlobalIndex),
    ttlAttribute: toAvroOptional("string", table.ttlAttribute),
    partitions: int32(table.partitions, "partitions"),
  };
}

export function fromAvroTableDefinition(table: AvroTableDefinition): TableDefinition {
  return {
    name: table.name,
    partitionKey: keyAttribute(table.partitionKey),
    sortKey: fromAvroOptional(table.sortKey, KEY_ATTRIBUTE, keyAttribute),
    localIndexes: table.localIndexes.map((index) => ({
      name: index.name,
      sortKey: keyAttribute(index.sortKey),
      projection: projection(index.projection),
    })),
    globalIndexes: table.globalIndexes.map(fromAvroGlobalIndex),
    ttlAttribute: fromAvroOptional(table.ttlAttribute, "string", (s: string) => s),
    partitions: table.partitions,
  };
}
