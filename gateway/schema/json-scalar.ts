// The JSON scalar: any JSON value, passed to resolvers as it came (they convert items, keys
// and placeholder values with gateway/json-items.ts, which knows what each one must be).
// Inline literals are read exactly: an integer or float literal that a double cannot hold
// becomes {"$N": "<its text>"} instead of silently losing digits.
import { GraphQLScalarType, Kind, type ValueNode } from "graphql";
import { DbError } from "../../services/shared/errors.js";
import { exactNumber, type JsonObject, type JsonValue } from "../json-items.js";
import { parseDecimal } from "../../materializer/values/decimal.js";
import { setEntry } from "../../materializer/values/path.js";

function literal(
  node: ValueNode,
  variables: Record<string, unknown> | null | undefined,
): JsonValue {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.ENUM:
      return node.value;
    case Kind.BOOLEAN:
      return node.value;
    case Kind.NULL:
      return null;
    case Kind.INT:
    case Kind.FLOAT: {
      const text = parseDecimal(node.value);
      return exactNumber(text) ?? { $N: text };
    }
    case Kind.LIST:
      return node.values.map((value) => literal(value, variables));
    case Kind.OBJECT: {
      const object: JsonObject = {};
      for (const field of node.fields)
        setEntry(object, field.name.value, literal(field.value, variables));
      return object;
    }
    case Kind.VARIABLE:
      return (variables?.[node.name.value] ?? null) as JsonValue;
  }
}

export const JsonScalar = new GraphQLScalarType({
  name: "JSON",
  description: "A JSON value; items use the encoding in gateway/README.md.",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (node, variables) => {
    try {
      return literal(node, variables);
    } catch (error) {
      if (error instanceof DbError) throw error;
      throw new DbError("INVALID_ARGUMENT", "Invalid JSON literal");
    }
  },
});
