/** The handler registry: job types described once, not converted to JSON Schema on every call. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRegistry, defineHandler } from '../../src/handlers/registry.js';

describe('registry', () => {
  it('describes its types once: every call returns the same JSON Schema objects', () => {
    const registry = createRegistry([
      defineHandler({ type: 'echo', parameters: z.strictObject({ text: z.string().default('hi') }), run: async (p) => p }),
    ]);
    const first = registry.describe();
    expect(first[0]?.parameterSchema).toMatchObject({ type: 'object', properties: { text: { type: 'string', default: 'hi' } } });
    // `jobTypes` under thousands of aliases converted the schemas thousands of times.
    expect(registry.describe()).toBe(first);
  });
});
