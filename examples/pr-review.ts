/**
 * A job type for GitHub `pull_request` webhooks (see docs/INGEST.md). With this in
 * config.yaml:
 *
 *   handlers:
 *     modules: [dist/examples/pr-review.js]   # compiled by npm start / npm run build
 *   ingest:
 *     sources:
 *       github:
 *         kind: github
 *         owner: { userId: review-bot, teams: [reviewers] }
 *         routes:
 *           - event: pull_request
 *             match: { action: [opened, synchronize, reopened] }
 *             type: pr-review
 *             parameters:
 *               repo: repository.full_name
 *               number: pull_request.number
 *               title: pull_request.title
 *               author: pull_request.user.login
 *               sha: pull_request.head.sha
 *               additions: pull_request.additions
 *               deletions: pull_request.deletions
 *
 * every opened or updated pull request becomes a `pr-review` job that writes a review
 * note (`review.md`) as its result. A real bot would fetch the diff and comment on the
 * pull request here; this one stays offline.
 */
import { z } from 'zod';
import { defineHandler } from '../src/index.js';

export default defineHandler({
  type: 'pr-review',
  description: 'Writes a review note for a pull request event (an inbound GitHub webhook).',
  parameters: z.strictObject({
    repo: z.string().min(1),
    number: z.number().int().min(1),
    title: z.string(),
    author: z.string().optional(),
    sha: z.string().regex(/^[0-9a-f]{7,40}$/),
    additions: z.number().int().min(0).optional(),
    deletions: z.number().int().min(0).optional(),
  }),
  defaults: { maxAttempts: 3, timeoutMs: 60_000 },
  async run(pr, ctx) {
    ctx.progress({ percent: 10, step: 'reading', message: `${pr.repo}#${pr.number}` });
    const size = (pr.additions ?? 0) + (pr.deletions ?? 0);
    const verdict = size > 500 ? 'large: consider splitting it' : size === 0 ? 'size unknown' : 'reviewable in one sitting';
    const note = [
      `# Review of ${pr.repo}#${pr.number}: ${pr.title}`,
      '',
      `- author: ${pr.author ?? 'unknown'}`,
      `- head: ${pr.sha.slice(0, 12)}`,
      `- change: +${pr.additions ?? 0} −${pr.deletions ?? 0} (${verdict})`,
      '',
    ].join('\n');
    await ctx.writeResult('review.md', note, 'text/markdown; charset=utf-8');
    ctx.progress({ percent: 100, step: 'written' });
    return { markdown: 'review.md', metadata: { repo: pr.repo, number: pr.number, sha: pr.sha, size } };
  },
});
