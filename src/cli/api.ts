/** The CLI's connection to a Conveyor server: GraphQL over HTTP and graphql-ws, with the same credentials. */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface Connection {
  url: string;
  headers: Record<string, string>;
}

export class RemoteError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A `ws` WebSocket class that sends `headers` with its upgrade request. */
function withHeaders(headers: Record<string, string>): unknown {
  return class extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  };
}

export async function gql<T>(conn: Connection, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${conn.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...conn.headers },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new RemoteError(`cannot reach ${conn.url}: ${(error as Error).cause ?? (error as Error).message}`, 'UNREACHABLE');
  }
  const body = (await response.json().catch(() => ({}))) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  const first = body.errors?.[0];
  if (first !== undefined) throw new RemoteError(first.message, first.extensions?.code ?? 'ERROR');
  if (body.data === undefined) throw new RemoteError(`${conn.url}/graphql answered ${response.status}`, 'HTTP_ERROR');
  return body.data;
}

/** Calls `onValue` for every value of a subscription until `onValue` returns true (done) or the server ends it. */
export function subscribe<T>(
  conn: Connection,
  query: string,
  variables: Record<string, unknown>,
  onValue: (value: T) => boolean,
): Promise<void> {
  const client = createClient({
    url: `${conn.url.replace(/^http/, 'ws')}/graphql`,
    // The credentials travel as the upgrade request's headers, as on every HTTP request
    // (header mode takes an identity from nowhere else).
    webSocketImpl: withHeaders(conn.headers),
    retryAttempts: 3,
  });
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const end = (error?: unknown) => {
      if (finished) return;
      finished = true;
      stop();
      void client.dispose();
      if (error === undefined) resolve();
      else reject(error);
    };
    const stop = client.subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          const error = result.errors?.[0];
          if (error !== undefined) end(new RemoteError(error.message, String(error.extensions?.code ?? 'ERROR')));
          else if (onValue(result.data as T)) end();
        },
        error: (error) => end(error instanceof Error ? error : new RemoteError('the subscription failed', 'SUBSCRIPTION_FAILED')),
        complete: () => end(),
      },
    );
  });
}
