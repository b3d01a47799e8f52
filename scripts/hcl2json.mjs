#!/usr/bin/env node
// Converts Terraform HCL files to JSON with @cdktf/hcl2json (a WebAssembly
// build of HashiCorp's HCL parser), installed in tools/node_modules.
//
//   node scripts/hcl2json.mjs FILE.tf            -> the file as JSON
//   node scripts/hcl2json.mjs FILE.tf FILE2.tf   -> {"FILE.tf": {...}, "FILE2.tf": {...}}
//
// Blocks come out as {"variable": {"name": [{...}]}}; expressions as
// "${...}" strings. A file that does not parse is reported on stderr as
// "hcl2json: FILE: <parser message>" and makes the exit status 1 (the other
// files are still converted and printed).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tools", "package.json"));

let hcl2json;
try {
    hcl2json = require("@cdktf/hcl2json");
} catch (e) {
    console.error("hcl2json: @cdktf/hcl2json is not installed in tools/node_modules; run scripts/install-deps (or: cd tools && npm install)");
    process.exit(2);
}

const files = process.argv.slice(2);
if (files.length === 0) {
    console.error("usage: node scripts/hcl2json.mjs FILE.tf [FILE.tf ...]");
    process.exit(2);
}

let failed = false;
const out = {};
for (const file of files) {
    let text;
    try {
        text = readFileSync(file, "utf8");
    } catch (e) {
        console.error(`hcl2json: ${file}: ${e.message}`);
        failed = true;
        continue;
    }
    try {
        // The name only labels the parser's diagnostics.
        out[file] = await hcl2json.parse(basename(file), text);
    } catch (e) {
        console.error(`hcl2json: ${file}: ${String(e.message || e).replace(/^parse config: /, "")}`);
        failed = true;
    }
}

process.stdout.write(JSON.stringify(files.length === 1 ? (out[files[0]] ?? null) : out) + "\n");
process.exit(failed ? 1 : 0);
