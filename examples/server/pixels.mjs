// Reads a request body of exactly the form {"pixels": [numbers]} straight from its bytes into a
// Float32Array. JSON.parse of an MNIST body first builds a string and a JS array of 784 numbers; this
// reads the bytes once and allocates only the result. With micro-batching the server then serves 1.29×
// and 1.12× the requests/s it does with JSON.parse in two runs (`node bench/serve.mjs --bodies
// json,json-parse`; bench/results/serve-*-96a138b.md and -a72afaf.md).
//
// It is a fast path, not a JSON parser: anything else (other keys, nesting, strings, a number JSON would
// refuse, a count other than `size`, a value that is not finite) returns undefined, and the caller falls
// back to JSON.parse, which also words the error for the client.
//
// Numbers give exactly the float32 of JSON.parse's double. Up to 15-16 significant digits are accumulated
// exactly and scaled by one exact power of ten (one rounding, as JSON.parse's). When nonzero digits past
// those had to be dropped, the true value lies between the kept digits and the kept digits plus one unit;
// if both ends round to the same float32 that is the answer, and otherwise (a float32 rounding tie in
// between: rare) the number is read by Number(), as are numbers that need a power of ten past 1e22.

const COMMA = 0x2c, MINUS = 0x2d, PLUS = 0x2b, DOT = 0x2e, COLON = 0x3a, ZERO = 0x30, NINE = 0x39;
const OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d;
const KEY = Buffer.from('"pixels"');
const EXACT_MANTISSA = 2 ** 53 / 10;  // below this, mantissa * 10 + digit is still exact
const POWERS = [1];  // 1e0..1e22, each an exact product of exact doubles (5^22 < 2^53)
while (POWERS.length < 23) POWERS.push(POWERS[POWERS.length - 1] * 10);

const isSpace = (c) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

// mantissa * 10^exponent in one rounding, for |exponent| <= 22 and mantissa <= 2^53 (both exact doubles)
const scale = (mantissa, exponent) => (exponent >= 0 ? mantissa * POWERS[exponent] : mantissa / POWERS[-exponent]);

/** The pixels of a body {"pixels": [size numbers]}, or undefined when the body is anything else. */
export function readPixelsFast(buffer, size) {
  // A plain Uint8Array view of the Buffer's bytes, so that every read below sees one array type
  const body = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  const n = body.length;
  let i = 0;
  const skip = () => { while (i < n && isSpace(body[i])) i++; };
  skip();
  if (body[i++] !== OPEN_BRACE) return undefined;
  skip();
  for (let k = 0; k < KEY.length; k++) if (body[i++] !== KEY[k]) return undefined;
  skip();
  if (body[i++] !== COLON) return undefined;
  skip();
  if (body[i++] !== OPEN_BRACKET) return undefined;
  const out = new Float32Array(size);
  let count = 0;
  skip();
  if (body[i] === CLOSE_BRACKET) return undefined;  // empty: the caller reports the count
  for (;;) {
    // The commonest value of an image, a bare 0 before a comma (background pixels; out starts zeroed)
    if (body[i] === ZERO && body[i + 1] === COMMA) {
      if (count === size) return undefined;
      count++;
      i += 2;
      skip();
      continue;
    }
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const start = i;
    let negative = false;
    if (body[i] === MINUS) { negative = true; i++; }
    let c = body[i];
    if (!(c >= ZERO && c <= NINE)) return undefined;
    let mantissa = 0, exponent = 0, dropped = false;
    if (c === ZERO) {
      i++;
      c = body[i];
      if (c >= ZERO && c <= NINE) return undefined;  // a leading zero
    } else {
      while (c >= ZERO && c <= NINE) {
        if (mantissa < EXACT_MANTISSA) mantissa = mantissa * 10 + (c - ZERO);
        else { exponent++; dropped ||= c !== ZERO; }  // an integer digit past the exact ones
        c = body[++i];
      }
    }
    if (c === DOT) {
      c = body[++i];
      if (!(c >= ZERO && c <= NINE)) return undefined;
      while (c >= ZERO && c <= NINE) {
        if (mantissa < EXACT_MANTISSA) { mantissa = mantissa * 10 + (c - ZERO); exponent--; }
        else dropped ||= c !== ZERO;
        c = body[++i];
      }
    }
    if (c === 0x65 || c === 0x45) {  // e E
      c = body[++i];
      let sign = 1;
      if (c === MINUS || c === PLUS) { sign = c === MINUS ? -1 : 1; c = body[++i]; }
      if (!(c >= ZERO && c <= NINE)) return undefined;
      let e = 0;
      while (c >= ZERO && c <= NINE) { if (e < 100000) e = e * 10 + (c - ZERO); c = body[++i]; }
      exponent += sign * e;
    }
    let value = 0;
    if (mantissa !== 0) {
      if (exponent <= 22 && exponent >= -22) value = scale(mantissa, exponent);
      if (exponent > 22 || exponent < -22 || (dropped && Math.fround(value) !== Math.fround(scale(mantissa + 1, exponent)))) {
        value = Number(buffer.latin1Slice(negative ? start + 1 : start, i));
      }
    }
    if (!Number.isFinite(value) || count === size) return undefined;
    out[count++] = negative ? -value : value;
    skip();
    if (body[i] === COMMA) { i++; skip(); continue; }
    if (body[i] !== CLOSE_BRACKET) return undefined;
    i++;
    break;
  }
  skip();
  if (body[i++] !== CLOSE_BRACE) return undefined;
  skip();
  return i === n && count === size ? out : undefined;
}
