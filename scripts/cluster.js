#!/usr/bin/env node
// `npm run cluster`: a local three-broker Raft cluster. Broker N listens for Kafka clients
// on 127.0.0.1:909(1+N) and for its peers on 127.0.0.1:919(1+N), with its data in
// ./data/cluster/nN. Clients bootstrap from any of them, e.g. --brokers 127.0.0.1:9092.
// Ctrl-C stops all three (each flushes and closes cleanly).
import { spawn } from "node:child_process";
import { join } from "node:path";

const size = 3;
const peers = Array.from({ length: size }, (_, i) => `${i + 1}@127.0.0.1:${9192 + i}`).join(",");
const children = [];
for (let i = 0; i < size; i++) {
  const args = [
    join("dist", "services", "cli.js"),
    "broker",
    "--node-id",
    String(i + 1),
    "--data",
    join("data", "cluster", `n${i + 1}`),
    "--listen",
    `127.0.0.1:${9092 + i}`,
    "--raft-listen",
    `127.0.0.1:${9192 + i}`,
    "--peers",
    peers,
  ];
  const child = spawn(process.execPath, args, { stdio: "inherit" });
  child.on("exit", (code, signal) => {
    console.log(`broker ${i + 1} exited (${signal ?? code})`);
  });
  children.push(child);
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const child of children) child.kill("SIGTERM");
  });
}
