/** Websocket tickets: signed, expiring, and taken once; the memory of used tickets is bounded. */
import { describe, expect, it } from 'vitest';
import { createTicketIssuer } from '../../src/auth/ticket.js';

const alice = { userId: 'alice', teams: ['ops'], admin: false };

describe('websocket tickets', () => {
  it('stand for their principal once, and expire', () => {
    let now = 1_000_000;
    const tickets = createTicketIssuer({ secret: 's', ttlSec: 60, now: () => now });
    const { ticket } = tickets.issue(alice);
    expect(tickets.verify(ticket)).toEqual(alice);
    expect(() => tickets.verify(ticket)).toThrow(/used already/);
    const late = tickets.issue(alice).ticket;
    now += 60_001;
    expect(() => tickets.verify(late)).toThrow(/expired/);
  });

  it('refuse tickets while the memory of used ones is full, and forget used ones once they expire', () => {
    let now = 1_000_000;
    const tickets = createTicketIssuer({ secret: 's', ttlSec: 60, now: () => now, maxUsed: 2 });
    tickets.verify(tickets.issue(alice).ticket);
    tickets.verify(tickets.issue(alice).ticket);
    const third = tickets.issue(alice).ticket;
    // Forgetting a used ticket early would let it be used again: refuse instead.
    expect(() => tickets.verify(third)).toThrow(/too many/);
    now += 60_001;
    expect(tickets.verify(tickets.issue(alice).ticket)).toEqual(alice);
  });
});
