// The read API the gateway calls: GetItem, Query and Scan as pure functions over a
// KvReader (a live store or a KvSnapshot). See README.md.
export { getItem, type GetItemOptions } from "./get-item.js";
export { query, type QueryOptions } from "./query.js";
export { scan, type ScanOptions } from "./scan.js";
export type { ReadPage } from "./page.js";
export { decodeCursor, encodeCursor } from "./cursor.js";
export * from "./limits.js";
