// The voice inbox: "Play all unplayed" plays the unplayed voice messages of every chat, oldest
// first, hands-free: a chime and the sender's name before each, long silences skipped, each
// marked played as it starts (the shared player's one path), lock-screen and headset controls
// through the Media Session API. It drives the one shared player; it owns no <audio>.
import { api } from "../api/http";
import type { Message } from "../api/types";
import { chime, CHIME_GAP_MS, unlockChime } from "./chime";
import { player } from "./player";
import * as Q from "./queue";
import { silentRanges, skipTarget, type Silence } from "./silence";

export type InboxPhase =
  | "idle" // closed
  | "loading" // fetching GET /inbox
  | "chime" // the chime and the sender's name, before a message
  | "playing" // a message plays (or is paused)
  | "done" // the queue ran out: "All caught up"
  | "empty" // nothing was unplayed
  | "error";

export interface InboxState {
  phase: InboxPhase;
  queue: Q.Queue;
  error: string;
}

/** Who sent a message and in which chat, in words (the app's names of people and chats). */
export type Describe = (m: Message) => { sender: string; chat: string };

const ACTIONS = ["play", "pause", "stop", "previoustrack", "nexttrack"] as const;

class VoiceInbox {
  state: InboxState = { phase: "idle", queue: Q.EMPTY_QUEUE, error: "" };
  private listeners = new Set<() => void>();
  private describe: Describe = (m) => ({ sender: m.sender_name ?? m.sender, chat: "" });
  /** Bumped by every move: a chime timer or a play() of an earlier move then does nothing. */
  private generation = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private silences: Silence[] = [];
  private unsubscribe: (() => void) | null = null;

  setDescriber(describe: Describe): void {
    this.describe = describe;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<InboxState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  /** Whether it is going through a queue (the region shows its controls). */
  get active(): boolean {
    return this.state.phase === "chime" || this.state.phase === "playing";
  }

  get current(): Message | null {
    return this.active ? Q.current(this.state.queue) : null;
  }

  /** Fetch the unplayed voice messages and play them. Call it from the click (for sound). */
  async start(): Promise<void> {
    unlockChime();
    this.release();
    const gen = ++this.generation;
    this.set({ phase: "loading", queue: Q.EMPTY_QUEUE, error: "" });
    let queue: Q.Queue;
    try {
      queue = Q.makeQueue((await api.inbox()).messages);
    } catch (e) {
      if (gen === this.generation) this.set({ phase: "error", error: e instanceof Error ? e.message : String(e) });
      return;
    }
    if (gen !== this.generation) return;
    if (Q.isDone(queue)) {
      this.set({ phase: "empty", queue });
      return;
    }
    this.attach();
    this.set({ queue });
    this.begin();
  }

  next(): void {
    if (this.active) this.move(Q.next(this.state.queue));
  }

  previous(): void {
    if (this.active) this.move(Q.previous(this.state.queue));
  }

  /** Stop playing and close the region. */
  stop(): void {
    const was = this.active;
    this.release();
    this.set({ phase: "idle", queue: Q.EMPTY_QUEUE, error: "" });
    if (was) player.stop();
  }

  /** Play or pause the message now playing. */
  toggle(): void {
    const m = this.current;
    if (!m || this.state.phase !== "playing") return;
    if (player.state.playing) player.pause();
    else void player.play(m);
  }

  // --- moving through the queue ---------------------------------------------------------------
  private move(queue: Q.Queue): void {
    this.set({ queue });
    this.begin();
  }

  /** The chime and the name of the message at the queue's index, then the message itself. */
  private begin(): void {
    clearTimeout(this.timer);
    const gen = ++this.generation;
    const m = Q.current(this.state.queue);
    if (!m) {
      this.finish();
      return;
    }
    this.set({ phase: "chime" });
    player.pause();
    this.showInSession(m);
    chime();
    this.timer = setTimeout(() => void this.playNow(gen, m), CHIME_GAP_MS);
  }

  private async playNow(gen: number, m: Message): Promise<void> {
    if (gen !== this.generation) return;
    this.silences = silentRanges(m.media?.waveform ?? [], m.media?.duration_ms ?? 0);
    const from = skipTarget(this.silences, 0) ?? 0;
    // player.play marks it played (POST /messages/{id}/played), as a press on its Play does.
    await player.play(m, from / 1000);
    if (gen !== this.generation) return;
    if (!player.isCurrent(m)) {
      // It could not be played (its media is gone, or would not load): on to the next.
      this.next();
      return;
    }
    this.set({ phase: "playing" });
    this.onPlayer();
  }

  private finish(): void {
    this.release();
    this.set({ phase: "done" });
    player.stop();
  }

  // --- following the player ----------------------------------------------------------------------
  private attach(): void {
    player.setEndedHandler((m) => {
      if (this.state.phase === "playing" && m.id === Q.current(this.state.queue)?.id) this.next();
    });
    this.unsubscribe = player.subscribe(() => this.onPlayer());
    const session = mediaSession();
    for (const action of ACTIONS) {
      const handler = {
        play: () => this.toggle(),
        pause: () => player.pause(),
        stop: () => this.stop(),
        previoustrack: () => this.previous(),
        nexttrack: () => this.next(),
      }[action];
      try {
        session?.setActionHandler(action, handler);
      } catch {
        // an action this browser does not know
      }
    }
  }

  /** Give the player and the media session back (the queue is over or someone took over). */
  private release(): void {
    clearTimeout(this.timer);
    this.generation += 1;
    this.unsubscribe?.();
    this.unsubscribe = null;
    player.setEndedHandler(null);
    const session = mediaSession();
    if (!session) return;
    for (const action of ACTIONS) {
      try {
        session.setActionHandler(action, null);
      } catch {
        // as above
      }
    }
    session.metadata = null;
    session.playbackState = "none";
  }

  private onPlayer(): void {
    if (this.state.phase !== "playing") return;
    const m = Q.current(this.state.queue);
    const s = player.state;
    if (!m) return;
    if (s.message?.id !== m.id) {
      // Someone pressed Play on another message, or closed the player: the inbox steps aside.
      this.release();
      this.set({ phase: "idle", queue: Q.EMPTY_QUEUE });
      return;
    }
    const session = mediaSession();
    if (session) session.playbackState = s.playing ? "playing" : "paused";
    if (!s.playing) return;
    const to = skipTarget(this.silences, s.position * 1000);
    if (to === null) return;
    const duration = m.media?.duration_ms ?? 0;
    if (to >= duration - 50) this.next(); // a silence to the end: that message is over
    else player.seek(m, to / 1000);
  }

  private showInSession(m: Message): void {
    const session = mediaSession();
    if (!session || typeof MediaMetadata === "undefined") return;
    const { sender, chat } = this.describe(m);
    try {
      session.metadata = new MediaMetadata({ title: sender, artist: chat, album: "Voice inbox" });
    } catch {
      // no metadata on this browser
    }
  }
}

function mediaSession(): MediaSession | null {
  return typeof navigator !== "undefined" && "mediaSession" in navigator ? navigator.mediaSession : null;
}

export const inbox = new VoiceInbox();
