// A validation rule that refuses operations nested deeper than `depthMax` selection sets,
// following fragment spreads (each fragment is measured once, and a fragment cycle, which
// graphql-js reports separately, cannot loop here). Depth counts fields: `{ a { b } }`
// is 2. The schema is shallow (payloads, then scalars), so a small limit costs nothing and
// stops hostile documents before execution.
import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";

export function depthLimitRule(depthMax: number) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) {
        fragments.set(definition.name.value, definition);
      }
    }
    const memo = new Map<string, number>();
    const depthOf = (set: SelectionSetNode, visiting: Set<string>): number => {
      let deepest = 0;
      for (const selection of set.selections) {
        let depth = 0;
        if (selection.kind === Kind.FIELD) {
          depth = 1 + (selection.selectionSet ? depthOf(selection.selectionSet, visiting) : 0);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          depth = depthOf(selection.selectionSet, visiting);
        } else {
          const name = selection.name.value;
          const fragment = fragments.get(name);
          if (fragment === undefined || visiting.has(name)) continue;
          const known = memo.get(name);
          if (known !== undefined) {
            depth = known;
          } else {
            visiting.add(name);
            depth = depthOf(fragment.selectionSet, visiting);
            visiting.delete(name);
            memo.set(name, depth);
          }
        }
        if (depth > deepest) deepest = depth;
        if (deepest > depthMax) return deepest;
      }
      return deepest;
    };
    return {
      OperationDefinition(node) {
        const depth = depthOf(node.selectionSet, new Set());
        if (depth > depthMax) {
          context.reportError(
            new GraphQLError(`Query depth ${depth} exceeds the maximum of ${depthMax}`, {
              nodes: [node],
              extensions: { code: "VALIDATION", retriable: false },
            }),
          );
        }
      },
    };
  };
}
