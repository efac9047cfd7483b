/**
 * The optional transformer step of the `session` type: translation (and transcription
 * of a talk's recording) through an OpenAI-compatible HTTP API, configured by
 * `transformer.url` and `transformer.apiKey`. Without configuration there is no
 * transformer, and the handler says in the job's logs and metadata that it skipped the step.
 * Answers are streamed and read up to `limits.maxDownloadBytes` (decompressed), never buffered whole.
 */
import got, { HTTPError, type Request, RequestError } from 'got';
import type { ResolvedConfig } from '../config.js';
import { JobFailure, PermanentJobError } from '../errors.js';
import { readBounded } from '../net/read.js';
import type { UsageReport } from './registry.js';

export interface Transformer {
  /** Where requests go (for logs). */
  readonly endpoint: string;
  /**
   * Markdown in `from` (or unknown) → Markdown in `to`, structure, links and image paths
   * kept. `onUsage` hears what the call used, when the API says.
   */
  translate(
    markdown: string,
    from: string | null,
    to: string,
    signal: AbortSignal,
    onUsage?: (usage: UsageReport) => void,
  ): Promise<string>;
  /** Speech in a recording → text. */
  transcribe(
    media: Buffer,
    filename: string,
    language: string | null,
    signal: AbortSignal,
    onUsage?: (usage: UsageReport) => void,
  ): Promise<string>;
}

/** The `usage` an OpenAI-compatible answer carries (chat: prompt/completion tokens; audio: input/output tokens). */
export function usageOf(answer: { usage?: unknown; model?: unknown }, fallbackModel: string): UsageReport | null {
  const u = answer.usage as Record<string, unknown> | null | undefined;
  if (typeof u !== 'object' || u === null) return null;
  const number = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  const inputTokens = number(u.prompt_tokens) ?? number(u.input_tokens);
  const outputTokens = number(u.completion_tokens) ?? number(u.output_tokens);
  const tokens = number(u.total_tokens);
  if (inputTokens === undefined && outputTokens === undefined && tokens === undefined) return null;
  return {
    ...(tokens === undefined ? {} : { tokens }),
    ...(inputTokens === undefined ? {} : { inputTokens }),
    ...(outputTokens === undefined ? {} : { outputTokens }),
    model: typeof answer.model === 'string' && answer.model !== '' ? answer.model : fallbackModel,
  };
}

function failure(error: unknown, what: string): Error {
  if (error instanceof HTTPError) {
    const status = error.response.statusCode;
    const retriable = status === 408 || status === 429 || status >= 500;
    return new JobFailure('TRANSFORMER_FAILED', `${what}: the transformer answered ${status}`, { retriable, cause: error });
  }
  if (error instanceof RequestError)
    return new JobFailure('TRANSFORMER_FAILED', `${what}: ${error.code} ${error.message}`, { cause: error });
  return error as Error;
}

/**
 * `maxResponseBytes` bounds each answer (the service passes `limits.maxDownloadBytes`):
 * a larger one fails the step with TRANSFORMER_FAILED instead of filling memory.
 */
export function createOpenAiTransformer(config: ResolvedConfig['transformer'], maxResponseBytes: number): Transformer | null {
  if (config.url === '') return null;
  const base = config.url.replace(/\/+$/, '');
  const client = got.extend({
    prefixUrl: base,
    timeout: { request: config.timeoutMs },
    retry: { limit: 0 },
    headers: config.apiKey === '' ? {} : { authorization: `Bearer ${config.apiKey}` },
  });
  /** The answer as JSON, read up to `maxResponseBytes`. */
  async function answerOf<T>(request: Request, what: string): Promise<T> {
    const { body, truncated } = await readBounded(request, maxResponseBytes);
    if (truncated) {
      throw new PermanentJobError(
        'TRANSFORMER_FAILED',
        `${what}: the transformer's answer is larger than ${maxResponseBytes} bytes (limits.maxDownloadBytes)`,
      );
    }
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw new PermanentJobError('TRANSFORMER_FAILED', `${what}: the transformer's answer is not JSON`);
    }
  }

  return {
    endpoint: base,
    async translate(markdown, from, to, signal, onUsage) {
      const system = [
        `Translate the user's Markdown document${from === null ? '' : ` from ${from}`} into ${to}.`,
        'Keep the Markdown structure, the YAML front matter keys, URLs, image paths and code unchanged.',
        'Answer with the translated document only.',
      ].join(' ');
      try {
        const answer = await answerOf<{ choices?: { message?: { content?: unknown } }[]; usage?: unknown; model?: unknown }>(
          client.stream.post('chat/completions', {
            json: {
              model: config.model,
              temperature: 0,
              messages: [
                { role: 'system', content: system },
                { role: 'user', content: markdown },
              ],
            },
            signal,
          }),
          'translation',
        );
        const usage = usageOf(answer, config.model);
        if (usage !== null) onUsage?.(usage);
        const content = answer.choices?.[0]?.message?.content;
        if (typeof content !== 'string' || content.trim() === '') {
          throw new PermanentJobError('TRANSFORMER_FAILED', 'translation: the transformer answered without choices[0].message.content');
        }
        return content;
      } catch (error) {
        throw failure(error, 'translation');
      }
    },
    async transcribe(media, filename, language, signal, onUsage) {
      const form = new FormData();
      form.append('file', new Blob([media]), filename);
      form.append('model', config.transcriptionModel);
      if (language !== null) form.append('language', language);
      try {
        const answer = await answerOf<{ text?: unknown; usage?: unknown; model?: unknown }>(
          client.stream.post('audio/transcriptions', { body: form, signal }),
          'transcription',
        );
        const usage = usageOf(answer, config.transcriptionModel);
        if (usage !== null) onUsage?.(usage);
        if (typeof answer.text !== 'string')
          throw new PermanentJobError('TRANSFORMER_FAILED', 'transcription: the transformer answered without text');
        return answer.text;
      } catch (error) {
        throw failure(error, 'transcription');
      }
    },
  };
}
