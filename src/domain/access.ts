import type { AccessControl, Principal } from './types.js';

export type Action = 'read' | 'write' | 'admin';

/** What access checks need to know about a job or batch. */
export interface Owned {
  ownerId: string;
  teamIds: readonly string[];
  accessControl: AccessControl;
}

export const ANONYMOUS: Principal = Object.freeze({ userId: null, teams: [], admin: false }) as Principal;

export function defaultAccessControl(): AccessControl {
  return { visibility: 'PRIVATE', read: [], write: [], admin: [] };
}

/** The ACL entries (`user:<id>`, `team:<id>`) that name this principal. */
export function principalEntries(principal: Principal): string[] {
  const entries = principal.teams.map((team) => `team:${team}`);
  if (principal.userId !== null) entries.unshift(`user:${principal.userId}`);
  return entries;
}

/**
 * The access rule, the same for queries, mutations, subscriptions, files and archives:
 * - admin principals may do anything; anonymous callers may do nothing (PUBLIC means
 *   every signed-in user, not everyone who can reach the port);
 * - the owner and anyone in `admin` may do anything;
 * - `write` entries may read and write;
 * - `read` entries, members of the resource's teams when visibility is TEAM, and
 *   everyone when visibility is PUBLIC may read.
 */
export function can(principal: Principal, action: Action, resource: Owned): boolean {
  if (principal.admin) return true;
  const acl = resource.accessControl;
  if (principal.userId === null) return false;
  if (principal.userId === resource.ownerId) return true;
  const mine = principalEntries(principal);
  const listed = (list: readonly string[]) => list.some((entry) => mine.includes(entry));
  if (listed(acl.admin)) return true;
  if (action === 'admin') return false;
  if (listed(acl.write)) return true;
  if (action === 'write') return false;
  if (acl.visibility === 'PUBLIC' || listed(acl.read)) return true;
  return acl.visibility === 'TEAM' && resource.teamIds.some((team) => principal.teams.includes(team));
}

const ENTRY = /^(user|team):[^\s:][^\s]*$/;

/** Returns the first malformed ACL entry, or null when all are `user:<id>` / `team:<id>`. */
export function invalidAclEntry(acl: AccessControl): string | null {
  for (const entry of [...acl.read, ...acl.write, ...acl.admin]) {
    if (!ENTRY.test(entry)) return entry;
  }
  return null;
}
