// The voice inbox's queue: the unplayed voice messages, oldest first, and which one is playing.
// Pure: no DOM, unit-tested.
import type { Message } from "../api/types";

export interface Queue {
  readonly items: readonly Message[];
  /** The playing one; `items.length` once the queue has run out. */
  readonly index: number;
}

export const EMPTY_QUEUE: Queue = { items: [], index: 0 };

/** A message the inbox can play: voice or audio, with ready media, not deleted. */
export function playable(m: Message): boolean {
  return m.kind !== "text" && !m.deleted && !!m.media && m.media.state === "ready";
}

/** A queue of the playable messages of `messages` (kept in their order), at the first. */
export function makeQueue(messages: readonly Message[]): Queue {
  const seen = new Set<string>();
  const items: Message[] = [];
  for (const m of messages) {
    if (!playable(m) || seen.has(m.id)) continue;
    seen.add(m.id);
    items.push(m);
  }
  return { items, index: 0 };
}

export function current(q: Queue): Message | null {
  return q.items[q.index] ?? null;
}

export function isDone(q: Queue): boolean {
  return q.index >= q.items.length;
}

/** The next one (past the last: done). */
export function next(q: Queue): Queue {
  return { ...q, index: Math.min(q.index + 1, q.items.length) };
}

/** The previous one; at the first, the first again (from its start). From done: the last. */
export function previous(q: Queue): Queue {
  const i = Math.min(q.index, q.items.length);
  return { ...q, index: i === 0 ? 0 : i - 1 };
}

/** "2 of 3" of the playing one. */
export function progress(q: Queue): string {
  return `${Math.min(q.index + 1, q.items.length)} of ${q.items.length}`;
}
