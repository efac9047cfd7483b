/** Canonical JSON: object keys sorted at every level, so equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const object = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(object)
          .sort()
          .map((k) => [k, object[k]] as const),
      );
    }
    return v;
  });
}
