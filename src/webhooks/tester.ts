/**
 * `testWebhook`: one signed `webhook.test` event to a receiver a user is setting up,
 * sent on the dispatcher's own path (`postSigned`: the same signing, headers, SSRF
 * guard, timeout and bounded answer), so a receiver that passes the test accepts real
 * deliveries too. Nothing is stored. Each caller may send `webhooks.testsPerMinute`.
 */
import type { ResolvedConfig } from '../config.js';
import { newId } from '../domain/ids.js';
import type { DeliveryAttempt } from '../domain/types.js';
import { LimitExceededError } from '../errors.js';
import type { NetGuard } from '../net/guard.js';
import { postSigned, webhookClient } from './dispatcher.js';
import { validateWebhook, type WebhookSettings } from './validate.js';

export interface WebhookTestResult extends DeliveryAttempt {
  /** The `webhook-id` the test was sent with. */
  webhookId: string;
}

export interface WebhookTester {
  /**
   * Validates the settings (as on a job), then sends the test event. `caller` keys the
   * rate limit (a user id). Refused with `LIMIT_EXCEEDED` beyond the caller's budget.
   */
  test(
    caller: string,
    settings: { url: string; secret?: string | null | undefined; token?: string | null | undefined; headers?: unknown },
  ): Promise<WebhookTestResult>;
}

export function createWebhookTester(options: {
  guard: NetGuard;
  config: ResolvedConfig['webhooks'];
  version: string;
  now?: () => number;
}): WebhookTester {
  const { guard, config } = options;
  const now = options.now ?? Date.now;
  const client = webhookClient(guard, config.timeoutMs);
  /** Per caller: the start of the current minute's window and the tests sent in it. */
  const windows = new Map<string, { start: number; count: number }>();

  function take(caller: string): void {
    const t = now();
    for (const [key, window] of windows) if (t - window.start >= 60_000) windows.delete(key);
    const window = windows.get(caller) ?? { start: t, count: 0 };
    if (window.count >= config.testsPerMinute) {
      const waitS = Math.ceil((window.start + 60_000 - t) / 1000);
      throw new LimitExceededError(
        `at most ${config.testsPerMinute} webhook tests a minute (webhooks.testsPerMinute); try again in ${waitS} s`,
        { limit: config.testsPerMinute, retryAfterSeconds: waitS },
      );
    }
    window.count += 1;
    windows.set(caller, window);
  }

  return {
    async test(caller, input) {
      const settings = validateWebhook(
        {
          url: input.url,
          ...(input.secret == null ? {} : { secret: input.secret }),
          ...(input.token == null ? {} : { token: input.token }),
          ...(input.headers == null ? {} : { headers: input.headers }),
        },
        { allowHttp: config.allowHttp, guard, field: 'testWebhook' },
      ) as unknown as WebhookSettings;
      take(caller);
      const at = new Date();
      const id = newId('dlv', at.getTime());
      const body = JSON.stringify({
        type: 'webhook.test',
        id,
        timestamp: at.toISOString(),
        jobId: null,
        batchId: null,
        status: null,
        success: true,
        correlationId: null,
        data: { message: 'A test event from Conveyor: answer 2xx to accept deliveries.' },
        error: null,
      });
      const { attempt } = await postSigned(client, guard, settings, { id, body, at, userAgent: `Conveyor/${options.version}` });
      return { ...attempt, webhookId: id };
    },
  };
}
