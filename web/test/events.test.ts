// The events connection: resume from the stored seq, each event once, acks, reset, and the
// long-poll fallback when a WebSocket cannot connect.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import type { Connection, EventSink } from "../src/api/events";

const polls: Array<{ after: number }> = [];
let pollAnswers: Array<{ events: unknown[]; seq: number; reset?: boolean }> = [];
vi.mock("../src/api/http", () => ({
  API: "/api/v1",
  api: {
    events: async (after: number) => {
      polls.push({ after });
      const answer = pollAnswers.shift();
      if (!answer) return new Promise(() => {}); // waits forever, like an idle long-poll
      return answer;
    },
  },
}));
const { EventStream } = await import("../src/api/events");

class FakeSocket {
  static made: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
    this.onclose?.({ code: 1000 });
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(f: unknown) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  fail(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

function sink(seq = 0) {
  const s = {
    seq,
    applied: [] as number[],
    states: [] as Connection[],
    resets: [] as number[],
    lastSeq: () => s.seq,
    apply: (e: { seq: number }) => {
      s.applied.push(e.seq);
      s.seq = Math.max(s.seq, e.seq);
    },
    presence: () => {},
    reset: (n: number) => s.resets.push(n),
    refusals: 0,
    refused: () => s.refusals++,
    ready: (n: number) => (s.seq = Math.max(s.seq, n)),
    connection: (c: Connection) => s.states.push(c),
  };
  return s;
}

const event = (seq: number) => ({ seq, type: "chat.updated", data: {} });

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.made = [];
  polls.length = 0;
  pollAnswers = [];
});
afterEach(() => vi.useRealTimers());

function start(s: ReturnType<typeof sink>) {
  const stream = new EventStream(s as unknown as EventSink, {
    socketFactory: (url) => new FakeSocket(url) as unknown as WebSocket,
    url: () => "ws://test/api/v1/events",
  });
  stream.start();
  return stream;
}

describe("EventStream", () => {
  test("resumes after the stored seq and applies each event once", () => {
    const s = sink(7);
    start(s);
    const ws = FakeSocket.made[0];
    ws.open();
    expect(ws.sent[0]).toEqual({ type: "resume", after: 7 });
    ws.frame(event(8));
    ws.frame(event(8)); // a duplicate (overlap) is dropped
    ws.frame(event(9));
    ws.frame({ type: "ready", seq: 9 });
    expect(s.applied).toEqual([8, 9]);
    expect(s.states.at(-1)).toBe("live");
  });

  test("acks what it handled, once, shortly after", () => {
    const s = sink();
    start(s);
    const ws = FakeSocket.made[0];
    ws.open();
    ws.frame(event(1));
    ws.frame(event(2));
    vi.advanceTimersByTime(300);
    expect(ws.sent.filter((f) => (f as { type: string }).type === "ack")).toEqual([{ type: "ack", seq: 2 }]);
  });

  test("after a drop it reconnects and resumes from the last applied seq", () => {
    const s = sink();
    start(s);
    FakeSocket.made[0].open();
    FakeSocket.made[0].frame(event(1));
    FakeSocket.made[0].frame(event(2));
    FakeSocket.made[0].fail();
    vi.advanceTimersByTime(600);
    const again = FakeSocket.made[1];
    again.open();
    expect(again.sent[0]).toEqual({ type: "resume", after: 2 });
    again.frame(event(2));
    again.frame(event(3));
    expect(s.applied).toEqual([1, 2, 3]);
  });

  test("a reset from the server drops local state, and events after it are applied", () => {
    const s = sink(50);
    start(s);
    FakeSocket.made[0].open();
    FakeSocket.made[0].frame({ type: "ready", seq: 3, reset: true });
    expect(s.resets).toEqual([3]);
    FakeSocket.made[0].frame(event(4));
    expect(s.applied).toEqual([4]);
  });

  test("a session the server refuses is not retried", () => {
    const s = sink();
    start(s);
    FakeSocket.made[0].open();
    FakeSocket.made[0].fail(4401);
    vi.advanceTimersByTime(60000);
    expect(s.refusals).toBe(1);
    expect(FakeSocket.made).toHaveLength(1);
  });

  test("a socket silent for long is replaced when the page wakes up; a live one is kept", () => {
    const s = sink();
    const stream = start(s);
    FakeSocket.made[0].open();
    stream.kick();
    expect(FakeSocket.made).toHaveLength(1);
    vi.advanceTimersByTime(61000);
    stream.kick();
    expect(FakeSocket.made).toHaveLength(2);
    expect(FakeSocket.made[0].readyState).toBe(3);
  });

  test("waking up during a long-poll opens no second connection", async () => {
    const s = sink();
    const stream = start(s);
    FakeSocket.made[0].fail();
    vi.advanceTimersByTime(600);
    FakeSocket.made[1].fail();
    await vi.advanceTimersByTimeAsync(1100); // now long-polling (the poll never answers)
    stream.kick();
    stream.kick();
    expect(FakeSocket.made).toHaveLength(2);
    expect(polls).toHaveLength(1);
  });

  test("falls back to long-poll when the WebSocket cannot connect", async () => {
    const s = sink(4);
    pollAnswers = [{ events: [event(5), event(6)], seq: 6 }];
    start(s);
    FakeSocket.made[0].fail(); // never opened
    vi.advanceTimersByTime(600);
    FakeSocket.made[1].fail(); // twice: poll
    await vi.advanceTimersByTimeAsync(1100);
    expect(polls[0]).toEqual({ after: 4 });
    expect(s.applied).toEqual([5, 6]);
    expect(polls[1]).toEqual({ after: 6 });
    expect(s.states).toContain("polling");
  });
});
