import { randomBytes } from 'node:crypto';

/**
 * Time-ordered identifiers: `<prefix>_` + 10 characters of milliseconds + 16 random
 * characters, Crockford base32 (the ULID layout). Ids made by one process sort in
 * creation order even within the same millisecond (the random part is incremented),
 * so stores can page and break claim ties by id alone.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastMs = -1;
let lastRandom: number[] = [];

function randomDigits(): number[] {
  const bytes = randomBytes(16);
  return Array.from(bytes, (byte) => byte & 31);
}

function increment(digits: number[]): number[] {
  const next = digits.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    const digit = next[i] ?? 0;
    if (digit < 31) {
      next[i] = digit + 1;
      return next;
    }
    next[i] = 0;
  }
  // Overflow of 80 random bits within one millisecond: start afresh (cannot happen in practice).
  return randomDigits();
}

let lastTime = '';

function encodeTime(ms: number): string {
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  return time;
}

export function newId(prefix: string, now: number = Date.now()): string {
  if (now <= lastMs) {
    lastRandom = increment(lastRandom);
  } else {
    lastMs = now;
    lastTime = encodeTime(now);
    lastRandom = randomDigits();
  }
  let random = '';
  for (const digit of lastRandom) random += ALPHABET[digit];
  return `${prefix}_${lastTime}${random}`;
}
