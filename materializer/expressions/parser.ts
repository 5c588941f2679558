// Recursive-descent parsers for DynamoDB's five expression languages. Each entry point turns
// text into an AST (ast.ts) or throws ExpressionError with DynamoDB's message and the
// 1-based position of the fault.
//
// Like DynamoDB, the parser reports a syntax error before any other kind of fault: other
// faults (an unknown function, a reserved word, a repeated clause) are remembered when first
// seen and thrown only once the whole text has parsed. Checks that need the placeholder maps
// (undefined placeholders, operand types of values, overlapping paths) happen in
// validate.ts, because the same AST is evaluated against many maps.

import type {
  Comparator,
  Condition,
  ConditionExpression,
  ConditionFunctionName,
  ConditionOperand,
  ExpressionKind,
  PathElement,
  PathOperand,
  ProjectionExpression,
  SetValue,
  UpdateAction,
  UpdateClauseName,
  UpdateExpression,
  UpdateOperand,
  ValueOperand,
} from "./ast.js";
import { ExpressionError, expressionError } from "./errors.js";
import { nearText, tokenize, type Token } from "./lexer.js";
import { isReservedWord } from "./reserved-words.js";
import {
  EXPRESSION_LENGTH_MAX,
  EXPRESSION_OPERATORS_MAX,
  IN_OPERANDS_MAX,
} from "../values/limits.js";

const comparators: readonly string[] = ["=", "<>", "<", "<=", ">", ">="];
const conditionFunctions: Record<string, number> = {
  attribute_exists: 1,
  attribute_not_exists: 1,
  attribute_type: 2,
  begins_with: 2,
  contains: 2,
  size: 1,
};
const updateFunctions: Record<string, number> = { if_not_exists: 2, list_append: 2 };
const clauseNames: readonly string[] = ["SET", "REMOVE", "ADD", "DELETE"];
/** List indexes above this are refused; no list can be that long within 400 KB anyway. */
const LIST_INDEX_MAX = 2 ** 31 - 1;

/** A function call as parsed, before we know whether it is a condition or an operand. */
interface Call {
  kind: "call";
  name: string;
  args: ParsedOperand[];
  pos: number;
}
type ParsedOperand = PathOperand | ValueOperand | Call;
type Node = Condition | ConditionOperand;

export class Parser {
  private index = 0;
  private deferred: ExpressionError | undefined;
  private operators = 0;
  /** Nodes that were written inside their own parentheses, to spot "((x))". */
  private readonly parenthesized = new WeakSet<object>();
  private readonly tokens: Token[];

  constructor(
    private readonly text: string,
    readonly kind: ExpressionKind,
  ) {
    if (typeof text !== "string") {
      throw expressionError(kind, "The expression must be a string;");
    }
    if (text.length === 0) throw expressionError(kind, "The expression can not be empty;");
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > EXPRESSION_LENGTH_MAX) {
      throw expressionError(
        kind,
        "Expression size has exceeded the maximum allowed size; " +
          `expression size: ${bytes} bytes, limit: ${EXPRESSION_LENGTH_MAX} bytes`,
      );
    }
    this.tokens = tokenize(text, kind);
  }

  // ---- token helpers ----------------------------------------------------------------------

  private peek(offset = 0): Token {
    const last = this.tokens[this.tokens.length - 1] as Token;
    return this.tokens[this.index + offset] ?? last;
  }

  private advance(): Token {
    const token = this.peek();
    if (token.kind !== "eof") this.index++;
    return token;
  }

  private atPunct(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.kind === "punct" && token.text === text;
  }

  private atKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === "identifier" && token.text.toUpperCase() === word;
  }

  private expectPunct(text: string): Token {
    if (!this.atPunct(text)) throw this.syntaxError();
    return this.advance();
  }

  syntaxError(index = this.index): ExpressionError {
    const at = Math.min(index, this.tokens.length - 1);
    const token = this.tokens[at] as Token;
    const near = nearText(this.text, this.tokens, at);
    return expressionError(
      this.kind,
      `Syntax error; token: ${JSON.stringify(token.text)}, near: ${JSON.stringify(near)}`,
      token.pos,
    );
  }

  /** Remembers the first non-syntax fault; it is thrown when parsing has finished. */
  defer(message: string, pos: number): void {
    this.deferred ??= expressionError(this.kind, message, pos);
  }

  private countOperator(pos: number): void {
    this.operators++;
    if (this.operators === EXPRESSION_OPERATORS_MAX + 1) {
      this.defer(
        `The expression contains too many operators; limit: ${EXPRESSION_OPERATORS_MAX}`,
        pos,
      );
    }
  }

  /** Requires the end of the text, then throws any remembered fault. */
  finish(): void {
    if (this.peek().kind !== "eof") throw this.syntaxError();
    if (this.deferred !== undefined) throw this.deferred;
  }

  // ---- paths and operands -----------------------------------------------------------------

  parsePath(): PathOperand {
    const first = this.parsePathName();
    const elements: PathElement[] = [first];
    while (true) {
      if (this.atPunct(".")) {
        this.advance();
        elements.push(this.parsePathName());
      } else if (this.atPunct("[")) {
        elements.push(this.parseIndex());
      } else {
        return { kind: "path", elements, pos: first.pos };
      }
    }
  }

  private parsePathName(): PathElement {
    const token = this.peek();
    if (token.kind === "name-placeholder") {
      this.advance();
      return { kind: "placeholder", name: token.text, pos: token.pos };
    }
    if (token.kind !== "identifier") throw this.syntaxError();
    this.advance();
    if (isReservedWord(token.text)) {
      this.defer(
        `Attribute name is a reserved keyword; reserved keyword: ${token.text}`,
        token.pos,
      );
    }
    return { kind: "name", name: token.text, pos: token.pos };
  }

  private parseIndex(): PathElement {
    const open = this.advance();
    const token = this.peek();
    if (token.kind !== "number") throw this.syntaxError();
    this.advance();
    this.expectPunct("]");
    const index = Number(token.text);
    if (index > LIST_INDEX_MAX) {
      this.defer(`List index is too large; index: ${token.text}`, token.pos);
    }
    return { kind: "index", index: Math.min(index, LIST_INDEX_MAX), pos: open.pos };
  }

  /** An operand, possibly in parentheses: a path, a :value or a function call. */
  private parseOperandParens(): ParsedOperand {
    if (!this.atPunct("(")) return this.parseOperand();
    const open = this.advance();
    const inner = this.parseOperandParens();
    this.expectPunct(")");
    if (this.parenthesized.has(inner))
      this.defer("The expression has redundant parentheses;", open.pos);
    this.parenthesized.add(inner);
    return inner;
  }

  private parseOperand(): ParsedOperand {
    const token = this.peek();
    if (token.kind === "value-placeholder") {
      this.advance();
      return { kind: "value", name: token.text, pos: token.pos };
    }
    if (token.kind === "identifier" && this.atPunct("(", 1)) return this.parseCall();
    if (token.kind === "identifier" && isKeyword(token.text, this.kind)) throw this.syntaxError();
    return this.parsePath();
  }

  private parseCall(): Call {
    const nameToken = this.advance();
    this.advance(); // "("
    const args: ParsedOperand[] = [this.parseOperandParens()];
    while (this.atPunct(",")) {
      this.advance();
      args.push(this.parseOperandParens());
    }
    this.expectPunct(")");
    this.countOperator(nameToken.pos);
    return { kind: "call", name: nameToken.text, args, pos: nameToken.pos };
  }

  /** Checks a call's name and operand count against a function table. */
  checkCall(call: Call, table: Record<string, number>): boolean {
    const arity = table[call.name];
    if (arity === undefined) {
      this.defer(`Invalid function name; function: ${call.name}`, call.pos);
      return false;
    }
    if (arity !== call.args.length) {
      this.defer(
        "Incorrect number of operands for operator or function; " +
          `operator or function: ${call.name}, number of operands: ${call.args.length}`,
        call.pos,
      );
      return false;
    }
    return true;
  }

  /** The path a function requires as its first operand (or a stand-in after a fault). */
  private requirePath(operand: ParsedOperand | undefined, fn: string, pos: number): PathOperand {
    if (operand?.kind === "path") return operand;
    this.defer(`Operator or function requires a document path; operator or function: ${fn}`, pos);
    return { kind: "path", elements: [{ kind: "name", name: fn, pos }], pos };
  }

  // ---- conditions -------------------------------------------------------------------------

  parseConditionExpression(): ConditionExpression {
    const condition = this.parseOr(false) as Condition;
    this.finish();
    return { kind: "condition", condition };
  }

  /** `allowBare` lets a parenthesized operand through, e.g. the "(a)" of "(a) = :v". */
  private parseOr(allowBare: boolean): Node {
    let left = this.parseAnd(allowBare);
    while (this.atKeyword("OR")) {
      const token = this.advance();
      this.countOperator(token.pos);
      const right = this.parseAnd(false) as Condition;
      left = { kind: "or", left: left as Condition, right, pos: token.pos };
    }
    return left;
  }

  private parseAnd(allowBare: boolean): Node {
    let left = this.parseNot(allowBare);
    while (this.atKeyword("AND")) {
      const token = this.advance();
      this.countOperator(token.pos);
      const right = this.parseNot(false) as Condition;
      left = { kind: "and", left: left as Condition, right, pos: token.pos };
    }
    return left;
  }

  private parseNot(allowBare: boolean): Node {
    if (!this.atKeyword("NOT")) return this.parsePrimary(allowBare);
    const token = this.advance();
    this.countOperator(token.pos);
    const operand = this.parseNot(false) as Condition;
    return { kind: "not", operand, pos: token.pos };
  }

  private parsePrimary(allowBare: boolean): Node {
    if (this.atPunct("(")) return this.parseParenthesized(allowBare);
    const operand = this.parseOperand();
    if (operand.kind === "call" && operand.name !== "size") {
      const condition = this.conditionFunction(operand);
      if (!this.atComparison()) return condition;
      this.misused(operand);
      return this.parseComparisonRest(condition.path);
    }
    const node = this.toConditionOperand(operand);
    if (this.atComparison()) return this.parseComparisonRest(node);
    if (allowBare && this.atPunct(")")) return node;
    if (node.kind === "size") {
      this.defer(misusedMessage("size"), node.pos);
      return { kind: "function", name: "attribute_exists", path: node.path, pos: node.pos };
    }
    throw this.syntaxError();
  }

  private parseParenthesized(allowBare: boolean): Node {
    const open = this.advance();
    const inner = this.parseOr(true);
    this.expectPunct(")");
    if (this.parenthesized.has(inner))
      this.defer("The expression has redundant parentheses;", open.pos);
    this.parenthesized.add(inner);
    if (isConditionOperand(inner)) {
      if (this.atComparison()) return this.parseComparisonRest(inner);
      if (allowBare && this.atPunct(")")) return inner;
      throw this.syntaxError();
    }
    if (this.atComparison()) throw this.syntaxError();
    return inner;
  }

  private atComparison(): boolean {
    const token = this.peek();
    if (token.kind === "punct") return comparators.includes(token.text);
    return this.atKeyword("BETWEEN") || this.atKeyword("IN");
  }

  private parseComparisonRest(left: ConditionOperand): Condition {
    const token = this.advance();
    this.countOperator(token.pos);
    if (token.kind === "punct") {
      const right = this.conditionOperand(this.parseOperandParens());
      return { kind: "compare", op: token.text as Comparator, left, right, pos: token.pos };
    }
    if (token.text.toUpperCase() === "BETWEEN") {
      const low = this.conditionOperand(this.parseOperandParens());
      if (!this.atKeyword("AND")) throw this.syntaxError();
      this.advance();
      const high = this.conditionOperand(this.parseOperandParens());
      return { kind: "between", operand: left, low, high, pos: token.pos };
    }
    this.expectPunct("(");
    const list = [this.conditionOperand(this.parseOperandParens())];
    while (this.atPunct(",")) {
      this.advance();
      list.push(this.conditionOperand(this.parseOperandParens()));
    }
    this.expectPunct(")");
    if (list.length > IN_OPERANDS_MAX) {
      this.defer(
        "The IN operator is provided with too many operands; " +
          `number of operands: ${list.length}, limit: ${IN_OPERANDS_MAX}`,
        token.pos,
      );
    }
    return { kind: "in", operand: left, list, pos: token.pos };
  }

  /** An operand of a comparison: a condition function there is a fault. */
  private conditionOperand(operand: ParsedOperand): ConditionOperand {
    if (operand.kind === "call" && operand.name !== "size") {
      this.misused(operand);
      return {
        kind: "path",
        elements: [{ kind: "name", name: operand.name, pos: operand.pos }],
        pos: operand.pos,
      };
    }
    return this.toConditionOperand(operand);
  }

  private toConditionOperand(operand: ParsedOperand): ConditionOperand {
    if (operand.kind !== "call") return operand;
    this.checkCall(operand, conditionFunctions);
    for (const arg of operand.args) this.conditionOperand(arg);
    const path = this.requirePath(operand.args[0], "size", operand.pos);
    return { kind: "size", path, pos: operand.pos };
  }

  private misused(call: Call): void {
    if (conditionFunctions[call.name] === undefined) this.checkCall(call, conditionFunctions);
    else this.defer(misusedMessage(call.name), call.pos);
  }

  private conditionFunction(call: Call): Extract<Condition, { kind: "function" }> {
    this.checkCall(call, conditionFunctions);
    const args = call.args.map((arg) => this.conditionOperand(arg));
    const name = conditionFunctions[call.name] === undefined ? "contains" : call.name;
    const path = this.requirePath(call.args[0], call.name, call.pos);
    const node: Extract<Condition, { kind: "function" }> = {
      kind: "function",
      name: name as ConditionFunctionName,
      path,
      pos: call.pos,
    };
    const argument = args[1];
    if (argument !== undefined && call.args.length === 2) node.argument = argument;
    return node;
  }

  // ---- update -----------------------------------------------------------------------------

  parseUpdateExpression(): UpdateExpression {
    const actions: UpdateAction[] = [];
    const seen = new Set<string>();
    do {
      const token = this.peek();
      const clause = token.kind === "identifier" ? token.text.toUpperCase() : "";
      if (!clauseNames.includes(clause)) throw this.syntaxError();
      this.advance();
      if (seen.has(clause)) {
        this.defer(
          `The "${clause}" section can only be used once in an update expression;`,
          token.pos,
        );
      }
      seen.add(clause);
      actions.push(this.parseAction(clause as UpdateClauseName));
      while (this.atPunct(",")) {
        this.advance();
        actions.push(this.parseAction(clause as UpdateClauseName));
      }
    } while (this.peek().kind !== "eof");
    this.finish();
    return { kind: "update", actions };
  }

  private parseAction(clause: UpdateClauseName): UpdateAction {
    const path = this.parseActionPath();
    if (clause === "REMOVE") return { clause, path, pos: path.pos };
    if (clause === "SET") {
      this.expectPunct("=");
      return { clause, path, value: this.parseSetValue(), pos: path.pos };
    }
    const token = this.peek();
    if (token.kind !== "value-placeholder") throw this.syntaxError();
    this.advance();
    const value: ValueOperand = { kind: "value", name: token.text, pos: token.pos };
    return { clause, path, value, pos: path.pos };
  }

  private parseActionPath(): PathOperand {
    const token = this.peek();
    if (token.kind === "identifier" && clauseNames.includes(token.text.toUpperCase())) {
      throw this.syntaxError();
    }
    return this.parsePath();
  }

  private parseSetValue(): SetValue {
    let left: UpdateOperand;
    if (this.atPunct("(")) {
      const open = this.advance();
      const inner = this.parseSetValue();
      this.expectPunct(")");
      if (this.parenthesized.has(inner)) {
        this.defer("The expression has redundant parentheses;", open.pos);
      }
      this.parenthesized.add(inner);
      if (inner.kind === "plus" || inner.kind === "minus") return inner;
      left = inner as UpdateOperand;
    } else {
      left = this.updateOperand(this.parseOperand());
    }
    if (!this.atPunct("+") && !this.atPunct("-")) return left;
    const token = this.advance();
    this.countOperator(token.pos);
    const right = this.updateOperand(this.parseOperandParens());
    return { kind: token.text === "+" ? "plus" : "minus", left, right, pos: token.pos };
  }

  private updateOperand(operand: ParsedOperand): UpdateOperand {
    if (operand.kind !== "call") return operand;
    const valid = this.checkCall(operand, updateFunctions);
    const args = operand.args.map((arg) => this.updateOperand(arg));
    const [first, second] = args;
    if (!valid || first === undefined || second === undefined) {
      // A fault is deferred; a stand-in keeps parsing. A call always has a first argument.
      return first as UpdateOperand;
    }
    if (operand.name === "list_append") {
      return { kind: "list_append", left: first, right: second, pos: operand.pos };
    }
    const path = this.requirePath(operand.args[0], operand.name, operand.pos);
    return { kind: "if_not_exists", path, fallback: second, pos: operand.pos };
  }

  // ---- projection -------------------------------------------------------------------------

  parseProjectionExpression(): ProjectionExpression {
    const paths = [this.parseProjectionPath()];
    while (this.atPunct(",")) {
      this.advance();
      paths.push(this.parseProjectionPath());
    }
    this.finish();
    return { kind: "projection", paths };
  }

  private parseProjectionPath(): PathOperand {
    const token = this.peek();
    if (token.kind !== "identifier" && token.kind !== "name-placeholder") throw this.syntaxError();
    return this.parsePath();
  }
}

function misusedMessage(name: string): string {
  return `The function is not allowed to be used this way in an expression; function: ${name}`;
}

function isConditionOperand(node: Node): node is ConditionOperand {
  return node.kind === "path" || node.kind === "value" || node.kind === "size";
}

/** Words the condition grammar owns; they cannot start a path there. */
function isKeyword(word: string, kind: ExpressionKind): boolean {
  const upper = word.toUpperCase();
  if (kind === "UpdateExpression") return clauseNames.includes(upper);
  return (
    upper === "AND" || upper === "OR" || upper === "NOT" || upper === "BETWEEN" || upper === "IN"
  );
}
