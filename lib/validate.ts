// Argument validation with one message shape: "Expected <what> for <name> but received <value>".
// TypeError for a wrong type, RangeError for a right type with a value outside what is accepted.

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return typeof value;
}

export function invalidType(name: string, expected: string, actual: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

export function invalidRange(name: string, expected: string, actual: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

export function checkObject(name: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidType(name, 'an object', value);
}

/** An integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidType(name, `an integer >= ${min}`, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRange(name, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

/** A finite number with value > min (exclusive) or >= min (inclusive). */
export function checkNumber(name: string, value: unknown, min: number, inclusive: boolean): number {
  const expected = `a finite number ${inclusive ? '>=' : '>'} ${min}`;
  if (typeof value !== 'number') throw invalidType(name, expected, value);
  if (!Number.isFinite(value) || (inclusive ? value < min : value <= min)) throw invalidRange(name, expected, value);
  return value;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  const expected = `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidType(name, expected, value);
  if (!(allowed as readonly string[]).includes(value)) throw invalidRange(name, expected, value);
  return value as T;
}

/** Rejects keys that the options type does not know, which are almost always typos. */
export function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw invalidRange(`${name}.${key}`, `one of the options ${known.join(', ')}`, key);
  }
}

/**
 * Wraps one promise-returning native call. Errors the addon rejects with are created on a later turn of
 * the event loop and carry no user frames; re-attach the caller's stack so that a rejected
 * `await model.train()` points at user code. Only native calls go through here, never user callbacks.
 */
export async function withJsStack<T>(work: () => Promise<T>): Promise<T> {
  const here = new Error();
  try {
    return await work();
  } catch (err) {
    if (err instanceof Error && here.stack) {
      err.stack = `${err.name}: ${err.message}\n${here.stack.split('\n').slice(2).join('\n')}`;
    }
    throw err;
  }
}
