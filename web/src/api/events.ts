// The events connection: a WebSocket that resumes from the last handled seq, acks what it
// handled, and falls back to long-poll when a WebSocket cannot connect. Events are handed to
// the store in seq order, each once per connection; applying them is idempotent, so the
// overlap a resume can bring is harmless and nothing is missed.
import { api, API } from "./http";
import type { Presence, ServerEvent } from "./types";

export type Connection = "connecting" | "live" | "polling" | "offline";

export interface EventSink {
  /** The seq to resume after (0 = everything). */
  lastSeq(): number;
  /** Apply one logged event; the stream then counts its seq as handled. */
  apply(event: ServerEvent): void;
  presence(p: Presence): void;
  /** The server's log is behind our seq (restored or reset): drop local state and reload. */
  reset(seq: number): void;
  /** Caught up: every event up to `seq` was replayed. */
  ready(seq: number): void;
  connection(state: Connection): void;
  /** The server refused the session (4401, 4403): sign in again. */
  refused(): void;
}

/** Close codes after which reconnecting cannot help. */
const REFUSED = new Set([4401, 4403]);
/** A socket silent for longer than this is presumed dead (a laptop that slept): reconnect. */
const STALE_MS = 60000;

export interface StreamOptions {
  /** WebSocket failures in a row before falling back to long-poll for a while. */
  wsAttemptsBeforePolling?: number;
  /** How long to long-poll before trying the WebSocket again. */
  pollMsBeforeRetry?: number;
  socketFactory?: (url: string) => WebSocket;
  /** The events socket's URL; by default /api/v1/events on this page's host. */
  url?: () => string;
}

const OPEN = 1; // WebSocket.OPEN, without needing the global (tests run in Node)

function defaultUrl(): string {
  const url = new URL(`${API}/events`, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** Backoff before reconnect attempt `n` (1-based): 0.5 s, 1 s, 2 s … capped at 15 s. */
export function backoffMs(attempt: number): number {
  return Math.min(15000, 500 * 2 ** Math.max(0, attempt - 1));
}

export class EventStream {
  private ws: WebSocket | null = null;
  private stopped = true;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private handled = 0;
  private acked = 0;
  private pollingUntil = 0;
  private polling = false;
  private lastFrameAt = 0;
  private readonly opts: Required<StreamOptions>;

  constructor(
    private readonly sink: EventSink,
    opts: StreamOptions = {},
  ) {
    this.opts = {
      wsAttemptsBeforePolling: opts.wsAttemptsBeforePolling ?? 2,
      pollMsBeforeRetry: opts.pollMsBeforeRetry ?? 60000,
      socketFactory: opts.socketFactory ?? ((url) => new WebSocket(url)),
      url: opts.url ?? defaultUrl,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    this.drop();
  }

  /**
   * Reconnect now (the network came back, or the laptop woke up). A socket that has been
   * silent for a long time is presumed dead and replaced; a long-poll in flight carries on.
   */
  kick(): void {
    if (this.stopped || this.polling) return;
    if (this.ws?.readyState === OPEN && Date.now() - this.lastFrameAt > STALE_MS) {
      this.drop();
    } else if (this.ws && this.ws.readyState <= OPEN) {
      return;
    }
    clearTimeout(this.timer);
    this.failures = 0;
    this.pollingUntil = 0;
    this.connect();
  }

  /** Close the socket without its close handler reconnecting. */
  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close(1000);
    }
  }

  /** Tell the chat's members we are typing/recording/idle (WebSocket only; ephemeral). */
  sendPresence(chatId: string, state: Presence["state"]): void {
    if (this.ws?.readyState === OPEN) {
      this.ws.send(JSON.stringify({ type: "presence", chat_id: chatId, state }));
    }
  }

  private connect(): void {
    if (this.stopped) return;
    this.drop();
    this.sink.connection("connecting");
    if (Date.now() < this.pollingUntil) {
      void this.poll();
      return;
    }
    let opened = false;
    let ws: WebSocket;
    try {
      ws = this.opts.socketFactory(this.opts.url());
    } catch {
      this.retry(false);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.lastFrameAt = Date.now();
      // The session cookie authenticated the handshake: resume straight away.
      this.handled = this.acked = this.sink.lastSeq();
      ws.send(JSON.stringify({ type: "resume", after: this.handled }));
    };
    ws.onmessage = (e) => {
      this.lastFrameAt = Date.now();
      this.onFrame(JSON.parse(String(e.data)));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      if (REFUSED.has(e?.code)) {
        this.stopped = true;
        this.sink.refused();
        return;
      }
      this.retry(opened);
    };
  }

  private onFrame(frame: { type: string; seq?: number; data?: unknown; reset?: boolean }): void {
    if (frame.type === "ready") {
      this.failures = 0;
      if (frame.reset) {
        // Our seq is past the server's log: start again at its end.
        this.handled = this.acked = frame.seq ?? 0;
        this.sink.reset(this.handled);
      } else this.sink.ready(frame.seq ?? this.handled);
      this.sink.connection("live");
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.ws?.send('{"type":"ping"}'), 25000);
    } else if (frame.type === "presence") {
      this.sink.presence(frame.data as Presence);
    } else if (frame.type === "heartbeat") {
      // The server read the log for us: its seq is what it has sent, nothing to apply.
    } else if (typeof frame.seq === "number") {
      if (frame.seq <= this.handled) return; // already applied on this connection
      this.sink.apply(frame as ServerEvent);
      this.handled = frame.seq;
      this.scheduleAck();
    }
  }

  private scheduleAck(): void {
    if (this.ackTimer !== undefined) return;
    this.ackTimer = setTimeout(() => this.flushAck(), 200);
  }

  private flushAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.handled > this.acked && this.ws?.readyState === OPEN) {
      this.ws.send(JSON.stringify({ type: "ack", seq: this.handled }));
      this.acked = this.handled;
    }
  }

  private retry(wasOpen: boolean): void {
    if (this.stopped) return;
    this.failures = wasOpen ? 1 : this.failures + 1;
    this.sink.connection(globalThis.navigator?.onLine === false ? "offline" : "connecting");
    if (!wasOpen && this.failures >= this.opts.wsAttemptsBeforePolling) {
      this.pollingUntil = Date.now() + this.opts.pollMsBeforeRetry;
    }
    this.timer = setTimeout(() => this.connect(), backoffMs(this.failures));
  }

  /** Long-poll until it is time to try the WebSocket again; fetching also acks (delivered). */
  private async poll(): Promise<void> {
    this.polling = true;
    try {
      await this.pollLoop();
    } finally {
      this.polling = false;
    }
    if (!this.stopped) this.connect();
  }

  private async pollLoop(): Promise<void> {
    let seq = this.sink.lastSeq();
    let caughtUp = false;
    while (!this.stopped && Date.now() < this.pollingUntil) {
      try {
        const answer = await api.events(seq, 25);
        this.sink.connection("polling");
        this.failures = 0;
        if (answer.reset) {
          this.sink.reset(answer.seq);
          seq = answer.seq;
          continue;
        }
        for (const raw of answer.events) {
          const frame = raw as { type: string; seq?: number; data?: unknown };
          if (frame.type === "presence") this.sink.presence(frame.data as Presence);
          else if (typeof frame.seq === "number" && frame.seq > seq) {
            this.sink.apply(frame as ServerEvent);
          }
        }
        seq = Math.max(seq, answer.seq);
        if (!caughtUp) this.sink.ready(seq); // once, like the socket's ready
        caughtUp = true;
      } catch (e) {
        if ((e as { status?: number }).status === 401) {
          this.stopped = true;
          this.sink.refused();
          return;
        }
        this.sink.connection(globalThis.navigator?.onLine === false ? "offline" : "connecting");
        await new Promise((r) => (this.timer = setTimeout(r, backoffMs(++this.failures))));
      }
    }
  }
}
