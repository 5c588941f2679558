// A document path inside an item after placeholders are resolved: attribute and map key
// names are strings, list indexes are numbers. Errors about values and expressions name the
// place they are about with formatAttributePath.

export type AttributePath = readonly (string | number)[];

/** Renders a path the way a user would write it: a.b[2].c (names with dots are quoted). */
export function formatAttributePath(path: AttributePath): string {
  let text = "";
  for (const element of path) {
    if (typeof element === "number") {
      text += `[${element}]`;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(element) ? element : JSON.stringify(element);
    text += text.length === 0 ? name : `.${name}`;
  }
  return text;
}

/**
 * Sets `map[name] = value` as an own, enumerable property even for the name "__proto__",
 * which a plain assignment would turn into a prototype change. Attribute names are user
 * data, so every write of one goes through here; maps stay plain objects so that they
 * compare and serialize as usual.
 */
export function setEntry<T>(map: Record<string, T>, name: string, value: T): void {
  if (name === "__proto__") {
    Object.defineProperty(map, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    map[name] = value;
  }
}
