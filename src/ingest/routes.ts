/**
 * Routing a verified webhook to a job: the first route whose event and matchers fit
 * names the job type; its parameters are picked from the payload by dotted paths (the
 * whole payload when the route names none).
 */
import type { Json, JsonObject } from '../domain/types.js';

type Scalar = string | number | boolean | null;

export interface Route {
  event: string;
  match: Record<string, Scalar | Scalar[]>;
  type: string;
  parameters?: Record<string, string> | undefined;
  priority?: number | undefined;
  maxAttempts?: number | undefined;
}

/** The value at a dotted path (`pull_request.head.sha`, `commits.0.id`), or undefined. */
export function pick(payload: Json, path: string): Json | undefined {
  let node: Json | undefined = payload;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = Array.isArray(node) ? node[Number(key)] : node[key];
  }
  return node;
}

function matches(route: Route, event: string, payload: JsonObject): boolean {
  if (route.event !== '*' && route.event !== event) return false;
  return Object.entries(route.match).every(([path, wanted]) => {
    const value = pick(payload, path);
    const options = Array.isArray(wanted) ? wanted : [wanted];
    return options.some((option) => option === (value ?? null));
  });
}

/** The first route for this event and payload, or undefined (the event is ignored). */
export function findRoute(routes: readonly Route[], event: string, payload: JsonObject): Route | undefined {
  return routes.find((route) => matches(route, event, payload));
}

/** The job parameters a route takes from the payload; paths that lead nowhere are left out. */
export function parametersFor(route: Route, payload: JsonObject): JsonObject {
  if (route.parameters === undefined) return payload;
  const out: JsonObject = {};
  for (const [name, path] of Object.entries(route.parameters)) {
    const value = pick(payload, path);
    if (value !== undefined) out[name] = value;
  }
  return out;
}
