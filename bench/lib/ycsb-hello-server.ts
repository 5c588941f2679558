// The baseline for the YCSB benchmark: a bare graphql-yoga server on node:http answering
// `{ hello }`, nothing else (no express, no plugins, no store). Run as a child process by
// bench/ycsb.ts (`node dist/bench/lib/ycsb-hello-server.js [PORT]`); prints
// `hello: http://127.0.0.1:PORT/graphql` once listening and stops on SIGTERM.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createSchema, createYoga } from "graphql-yoga";

const yoga = createYoga({
  schema: createSchema({
    typeDefs: "type Query { hello: String! }",
    resolvers: { Query: { hello: () => "world" } },
  }),
  graphiql: false,
  logging: false,
});

const server = createServer(yoga);
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  console.log(`hello: http://127.0.0.1:${port}/graphql`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
