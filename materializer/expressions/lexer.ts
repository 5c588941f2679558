// Splits expression text into tokens with 1-based positions. The lexer knows no keywords:
// AND, SET, BETWEEN... are identifiers that the parser recognizes where they may appear, as
// DynamoDB matches them case-insensitively and only in their places.

import type { ExpressionKind } from "./ast.js";
import { expressionError } from "./errors.js";

export type TokenKind =
  "identifier" | "name-placeholder" | "value-placeholder" | "number" | "punct" | "eof";

export interface Token {
  kind: TokenKind;
  /** The token's text; "<EOF>" for the end. */
  text: string;
  /** 1-based position of the first character. */
  pos: number;
  /** 0-based offset just past the last character. */
  end: number;
}

const punctuation = ["<>", "<=", ">=", "(", ")", "[", "]", ",", ".", "=", "<", ">", "+", "-"];

function isIdentifierStart(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
}

function isIdentifierPart(c: string): boolean {
  return isIdentifierStart(c) || (c >= "0" && c <= "9");
}

/** Tokenizes `text`; an unexpected character is a syntax error at its position. */
export function tokenize(text: string, kind: ExpressionKind): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
      continue;
    }
    const start = i;
    let tokenKind: TokenKind;
    if (isIdentifierStart(c)) {
      tokenKind = "identifier";
      i = scanWhile(text, i + 1, isIdentifierPart);
    } else if (c >= "0" && c <= "9") {
      tokenKind = "number";
      i = scanWhile(text, i + 1, (d) => d >= "0" && d <= "9");
    } else if (c === "#" || c === ":") {
      tokenKind = c === "#" ? "name-placeholder" : "value-placeholder";
      i = scanWhile(text, i + 1, isIdentifierPart);
      if (i === start + 1) throw unexpected(text, start, kind, tokens);
    } else {
      const match = punctuation.find((p) => text.startsWith(p, i));
      if (match === undefined) throw unexpected(text, start, kind, tokens);
      tokenKind = "punct";
      i += match.length;
    }
    tokens.push({ kind: tokenKind, text: text.slice(start, i), pos: start + 1, end: i });
  }
  tokens.push({ kind: "eof", text: "<EOF>", pos: text.length + 1, end: text.length });
  return tokens;
}

function scanWhile(text: string, from: number, accept: (c: string) => boolean): number {
  let i = from;
  while (i < text.length && accept(text[i] as string)) i++;
  return i;
}

function unexpected(text: string, offset: number, kind: ExpressionKind, before: Token[]) {
  // Report the whole code point, not half of a surrogate pair.
  const bad = String.fromCodePoint(text.codePointAt(offset) ?? 0);
  const previous = before[before.length - 1];
  const nearStart = previous === undefined ? offset : previous.pos - 1;
  const near = text.slice(nearStart, offset + bad.length);
  return expressionError(
    kind,
    `Syntax error; token: ${JSON.stringify(bad)}, near: ${JSON.stringify(near)}`,
    offset + 1,
  );
}

/** DynamoDB's "near" text: the previous, the offending and the next token. */
export function nearText(text: string, tokens: Token[], index: number): string {
  // At the end there is no next token, so show one more token before instead.
  const atEnd = tokens[index]?.kind === "eof";
  const first = tokens[Math.max(0, index - (atEnd ? 2 : 1))];
  let lastIndex = Math.min(tokens.length - 1, index + 1);
  while (lastIndex > 0 && tokens[lastIndex]?.kind === "eof") lastIndex--;
  const last = tokens[lastIndex];
  if (first === undefined || last === undefined || last.end < first.pos - 1) return "";
  return text.slice(first.pos - 1, last.end);
}
