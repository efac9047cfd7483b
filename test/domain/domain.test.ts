import { describe, expect, it } from 'vitest';
import { can, defaultAccessControl } from '../../src/domain/access.js';
import { newId } from '../../src/domain/ids.js';
import { assertTransition, batchStatus, canTransition, emptyCounts } from '../../src/domain/status.js';
import type { AccessControl, JobStatus, Principal } from '../../src/domain/types.js';
import { JOB_STATUSES } from '../../src/domain/types.js';
import type { AppError } from '../../src/errors.js';

describe('job state machine', () => {
  const allowed: [JobStatus, JobStatus][] = [
    ['PENDING', 'PROCESSING'],
    ['PENDING', 'CANCELLED'],
    ['PROCESSING', 'COMPLETED'],
    ['PROCESSING', 'FAILED'],
    ['PROCESSING', 'CANCELLED'],
    ['PROCESSING', 'PENDING'],
    ['COMPLETED', 'PENDING'],
    ['FAILED', 'PENDING'],
    ['CANCELLED', 'PENDING'],
  ];

  it('allows exactly the documented transitions', () => {
    for (const from of JOB_STATUSES) {
      for (const to of JOB_STATUSES) {
        const expected = allowed.some(([f, t]) => f === from && t === to);
        expect(canTransition(from, to), `${from} → ${to}`).toBe(expected);
      }
    }
  });

  it('refuses an illegal transition with ILLEGAL_TRANSITION naming both states', () => {
    try {
      assertTransition('job_1', 'COMPLETED', 'PROCESSING');
      throw new Error('expected a refusal');
    } catch (error) {
      expect((error as AppError).code).toBe('ILLEGAL_TRANSITION');
      expect((error as AppError).message).toBe('job job_1 cannot go from COMPLETED to PROCESSING');
    }
  });
});

describe('batch status', () => {
  const counts = (c: Partial<ReturnType<typeof emptyCounts>>) => {
    const full = { ...emptyCounts(), ...c };
    full.total = full.pending + full.processing + full.completed + full.failed + full.cancelled;
    return full;
  };
  it.each([
    [{ pending: 3 }, 'PENDING'],
    [{ pending: 2, processing: 1 }, 'PROCESSING'],
    [{ pending: 2, completed: 1 }, 'PROCESSING'],
    [{ completed: 3 }, 'COMPLETED'],
    [{ completed: 2, failed: 1 }, 'PARTIAL'],
    [{ completed: 2, cancelled: 1 }, 'PARTIAL'],
    [{ failed: 3 }, 'FAILED'],
    [{ cancelled: 3 }, 'CANCELLED'],
  ] as const)('%o is %s', (c, status) => {
    expect(batchStatus(counts(c))).toBe(status);
  });
});

describe('access control', () => {
  const acl = (visibility: AccessControl['visibility'], extra: Partial<AccessControl> = {}): AccessControl => ({
    ...defaultAccessControl(),
    visibility,
    ...extra,
  });
  const owned = (a: AccessControl) => ({ ownerId: 'alice', teamIds: ['red'], accessControl: a });
  const p = (userId: string | null, teams: string[] = [], admin = false): Principal => ({ userId, teams, admin });

  it('applies the rule for owner, team, others, anonymous and admins', () => {
    const cases: [Principal, AccessControl['visibility'], [boolean, boolean, boolean]][] = [
      [p('alice'), 'PRIVATE', [true, true, true]],
      [p('bob', ['red']), 'PRIVATE', [false, false, false]],
      [p('bob', ['red']), 'TEAM', [true, false, false]],
      [p('bob', ['blue']), 'TEAM', [false, false, false]],
      [p('bob'), 'PUBLIC', [true, false, false]],
      // PUBLIC means every signed-in user: anonymous callers read nothing.
      [p(null), 'PUBLIC', [false, false, false]],
      [p(null), 'TEAM', [false, false, false]],
      [p('root', [], true), 'PRIVATE', [true, true, true]],
    ];
    for (const [principal, visibility, [read, write, admin]] of cases) {
      const resource = owned(acl(visibility));
      expect(
        [can(principal, 'read', resource), can(principal, 'write', resource), can(principal, 'admin', resource)],
        `${principal.userId} ${visibility}`,
      ).toEqual([read, write, admin]);
    }
  });

  it('grants through read, write and admin lists by user or team', () => {
    const resource = owned(acl('PRIVATE', { read: ['user:carol'], write: ['team:ops'], admin: ['user:dave'] }));
    expect(can(p('carol'), 'read', resource)).toBe(true);
    expect(can(p('carol'), 'write', resource)).toBe(false);
    expect(can(p('erin', ['ops']), 'write', resource)).toBe(true);
    expect(can(p('erin', ['ops']), 'admin', resource)).toBe(false);
    expect(can(p('dave'), 'admin', resource)).toBe(true);
    expect(can(p(null), 'read', resource)).toBe(false);
  });
});

describe('ids', () => {
  it('are prefixed and sort in creation order, also within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => newId('job', 1_700_000_000_000));
    expect(ids[0]).toMatch(/^job_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1000);
    expect(newId('job', 1_700_000_000_001) > (ids.at(-1) as string)).toBe(true);
  });
});
