// The executable schema: the SDL (schemas/graphql/schema.graphql, embedded in sdl.ts) with
// the resolvers and the JSON scalar.
import { createSchema } from "graphql-yoga";
import type { GatewayContext } from "../context.js";
import { batchMutations, batchQueries } from "../resolvers/batch.js";
import { itemMutations } from "../resolvers/items.js";
import { itemQueries } from "../resolvers/reads.js";
import { tableMutations, tableQueries } from "../resolvers/tables.js";
import { restoreMutations, restoreQueries } from "../resolvers/restore.js";
import { transactionMutations, transactionQueries } from "../resolvers/transactions.js";
import { JsonScalar } from "./json-scalar.js";
import { typeDefs } from "./sdl.js";

export { typeDefs };

export function gatewaySchema() {
  return createSchema<GatewayContext>({
    typeDefs,
    resolvers: {
      JSON: JsonScalar,
      Query: {
        ...tableQueries,
        ...itemQueries,
        ...batchQueries,
        ...transactionQueries,
        ...restoreQueries,
      },
      Mutation: {
        ...tableMutations,
        ...itemMutations,
        ...batchMutations,
        ...transactionMutations,
        ...restoreMutations,
      },
    },
  });
}
