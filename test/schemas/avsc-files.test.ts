// Goal: the .avsc files under schemas/avro/ are the source of truth and what ships is
// exactly them, and every one of them belongs to a registered published version.
// Method: compare each file with its embedded copy in schemas/avro/sources.ts (tsc copies no
// .avsc files to dist/); run with LOGKV_REWRITE=1 to regenerate sources.ts after adding a
// file. Check file names and the type each file defines, and that PUBLISHED uses every file.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { AVSC_SOURCES } from "../../schemas/avro/sources.js";
import { PUBLISHED, type PublishedVersion } from "../../schemas/avro/published.js";

// Tests run from dist/test/schemas; the schema files stay in the source tree.
const AVRO_DIR = new URL("../../../schemas/avro/", import.meta.url);

function readAvscFiles(): Map<string, string> {
  const names = readdirSync(AVRO_DIR)
    .filter((name) => name.endsWith(".avsc"))
    .sort();
  return new Map(names.map((name) => [name, readFileSync(new URL(name, AVRO_DIR), "utf8")]));
}

/** The text of sources.ts for `files`; prettier leaves it as it is. */
function renderSources(files: Map<string, string>): string {
  const lines = [
    "// Generated: the exact text of every schemas/avro/*.avsc file, so that the schemas ship in",
    "// dist/ (tsc copies no .avsc files). The .avsc files are the source;",
    "// test/schemas/avsc-files.test.ts fails when the two differ, and rewrites this file when",
    "// run with LOGKV_REWRITE=1.",
    "",
    "export const AVSC_SOURCES: Readonly<Record<string, string>> = {",
  ];
  for (const [name, text] of files) {
    assert.ok(!/[`\\]|\$\{/.test(text), `${name} holds a character a template literal escapes`);
    lines.push(`  ${JSON.stringify(name)}: \`${text}\`,`);
  }
  lines.push("};", "");
  return lines.join("\n");
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

describe("schemas/avro", () => {
  const files = readAvscFiles();

  it("sources.ts embeds every .avsc file exactly", () => {
    if (process.env.LOGKV_REWRITE === "1") {
      writeFileSync(new URL("sources.ts", AVRO_DIR), renderSources(files));
      return;
    }
    assert.deepStrictEqual(
      Object.keys(AVSC_SOURCES).sort(),
      [...files.keys()],
      "file list differs; run the test with LOGKV_REWRITE=1",
    );
    for (const [name, text] of files) {
      assert.equal(AVSC_SOURCES[name], text, `${name} differs; run with LOGKV_REWRITE=1`);
    }
  });

  it("each file defines the logkv type its name says, at a version", () => {
    for (const [name, text] of files) {
      const match = /^([a-z0-9-]+)-v([1-9][0-9]*)\.avsc$/.exec(name);
      assert.ok(match !== null, `${name} is not <type>-v<N>.avsc`);
      const schema = JSON.parse(text) as { name: string; namespace: string };
      assert.equal(schema.namespace, "logkv", name);
      assert.equal(kebab(schema.name), match[1], name);
    }
  });

  it("every file belongs to a published version, and every version's files exist", () => {
    const used = new Set<string>();
    for (const versions of Object.values(PUBLISHED) as (readonly PublishedVersion[])[]) {
      for (const version of versions) {
        for (const file of [version.root, ...version.parts]) {
          assert.ok(files.has(file), `published file ${file} is missing`);
          used.add(file);
        }
      }
    }
    assert.deepStrictEqual([...used].sort(), [...files.keys()]);
  });
});
