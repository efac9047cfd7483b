/**
 * A custom job type as a handler module. List it in config.yaml:
 *
 *   handlers:
 *     modules: [dist/examples/word-count.js]   # compiled by npm start / npm run build
 *
 * and submit jobs of type `word-count` with parameters { "text": "…" }.
 */
import { z } from 'zod';
import { defineHandler, PermanentJobError } from '../src/index.js';

export default defineHandler({
  type: 'word-count',
  description: 'Counts the words of a text and writes them, most frequent first, as JSON.',
  parameters: z.strictObject({
    text: z.string().min(1).max(1_000_000),
    top: z.number().int().min(1).max(1000).default(10),
  }),
  defaults: { concurrency: 2, timeoutMs: 10_000, maxAttempts: 2 },
  async run({ text, top }, ctx) {
    const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    if (words.length === 0) throw new PermanentJobError('NO_WORDS', 'the text has no words');
    const counts = new Map<string, number>();
    words.forEach((word, i) => {
      counts.set(word, (counts.get(word) ?? 0) + 1);
      if (i % 10_000 === 0) ctx.progress({ percent: (i / words.length) * 100, step: 'counting' });
    });
    const ranked = [...counts].sort((a, b) => b[1] - a[1]).slice(0, top);
    await ctx.writeResult('counts.json', JSON.stringify(Object.fromEntries(ranked), null, 2), 'application/json');
    ctx.log('info', `${words.length} words, ${counts.size} distinct`);
    return { words: words.length, distinct: counts.size };
  },
});
