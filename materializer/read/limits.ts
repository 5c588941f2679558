// Bounds on one read request (GetItem, Query, Scan). Every page loop in read/ stops at one
// of them, so a request's work is bounded whatever the data looks like.
//
// DynamoDB bounds a Query or Scan page by Limit (items evaluated) and by 1 MB of data read;
// it documents no maximum Limit. logkv keeps both and adds a cap on the index entries read
// per page, because 1 MiB of tiny items is hundreds of thousands of entries to decode. A
// page that stops at any bound returns a cursor, which DynamoDB clients already handle
// (a page may always end early with a LastEvaluatedKey), so no cap rejects a request.
import { assert } from "../../services/shared/assert.js";
import { ITEM_SIZE_BYTES_MAX } from "../values/limits.js";
import { SCAN_SEGMENTS_MAX } from "../store/layout.js";

/** Data read per Query or Scan page (item sizes, DynamoDB's rules), as DynamoDB's 1 MB. */
export const queryPageBytesMax = 1024 * 1024;

/**
 * Entries read per page, expired ones included. At 10,000 a page of small items decodes in
 * tens of milliseconds; a page of 100-byte items reaches DynamoDB's 1 MB at about the same
 * count, so clients see pages of the size they would from DynamoDB.
 */
export const pageEntriesMax = 10_000;

/**
 * The largest Limit accepted: DynamoDB's Limit is a 32-bit integer >= 1. Larger values are
 * refused as DynamoDB would; any accepted value is further bounded by the two caps above.
 */
export const readLimitMax = 2 ** 31 - 1;

/**
 * Characters of a cursor. The longest store key (a GSI entry: two partition keys of 2 KB
 * and two sort keys of 1 KB, each at most doubled by escaping, plus two 255-byte names) is
 * under 14 KB; base64url makes that under 19 KB; 32 KiB leaves room and bounds decoding.
 */
export const cursorCharsMax = 32 * 1024;

/** Parallel scan: TotalSegments may be 1..this (DynamoDB's maximum). */
export const scanSegmentsMax = SCAN_SEGMENTS_MAX;

// The caps must let every page make progress: one item of the largest size fits in a page.
assert(queryPageBytesMax >= ITEM_SIZE_BYTES_MAX, "a page holds at least one largest item");
assert(pageEntriesMax >= 1, "a page reads at least one entry");
assert(readLimitMax >= pageEntriesMax, "Limit is not the tighter cap by construction");
assert(Number.isSafeInteger(readLimitMax), "readLimitMax is a safe integer");
assert(cursorCharsMax >= 19 * 1024, "a cursor fits the longest store key");
