// One audio player for the whole app: one <audio> element, so two bubbles never play at once,
// playback goes on across chats (the mini-player), the speed is remembered, a half-heard message
// resumes where it stopped, and the next unplayed voice message in the chat follows by itself.
import { fetchMedia, mediaUrl } from "../api/http";
import type { Message } from "../api/types";
import { nextSpeed, playableFormat } from "./formats";

export interface PlayerState {
  message: Message | null;
  playing: boolean;
  position: number;
  duration: number;
  speed: number;
}

const SPEED_KEY = "voxbox.speed";
const POSITIONS_KEY = "voxbox.positions";

type Hooks = {
  /** The played receipt (and local marking) for a message of someone else. */
  onFirstPlay: (m: Message) => void;
  /** The message to play when `m` ends, if any. */
  next: (m: Message) => Message | undefined;
};

class Player {
  private audio: HTMLAudioElement | null = null;
  private listeners = new Set<() => void>();
  private hooks: Hooks = { onFirstPlay: () => {}, next: () => undefined };
  private endedHandler: ((m: Message) => void) | null = null;
  private positions: Record<string, number> = readJson(POSITIONS_KEY, {});
  state: PlayerState = {
    message: null,
    playing: false,
    position: 0,
    duration: 0,
    speed: Number(localStorage.getItem(SPEED_KEY)) || 1,
  };

  setHooks(hooks: Hooks): void {
    this.hooks = hooks;
  }

  /**
   * While set, `handler` decides what follows a message that ends (the voice inbox), instead of
   * the next unplayed message of its chat. Null gives that back.
   */
  setEndedHandler(handler: ((m: Message) => void) | null): void {
    this.endedHandler = handler;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<PlayerState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private element(): HTMLAudioElement {
    if (this.audio) return this.audio;
    const a = new Audio();
    a.preload = "auto";
    a.addEventListener("timeupdate", () => {
      this.set({ position: a.currentTime });
      const id = this.state.message?.id;
      if (id && a.currentTime > 1) this.remember(id, a.currentTime);
    });
    a.addEventListener("durationchange", () => {
      if (Number.isFinite(a.duration)) this.set({ duration: a.duration });
    });
    a.addEventListener("play", () => this.set({ playing: true }));
    a.addEventListener("pause", () => this.set({ playing: false }));
    a.addEventListener("ended", () => this.ended());
    this.audio = a;
    return a;
  }

  /** Where a message was left (seconds), 0 when never started or heard to the end. */
  positionOf(id: string): number {
    return this.positions[id] ?? 0;
  }

  isCurrent(m: Message): boolean {
    return this.state.message?.id === m.id;
  }

  async play(m: Message, from?: number): Promise<void> {
    if (!m.media) return;
    const a = this.element();
    if (!this.isCurrent(m)) {
      const format = playableFormat((t) => a.canPlayType(t));
      if (m.view_once) {
        // Played once: load it all first, since marking it played ends our access to it.
        const blob = await fetchMedia(m.media.id, format).catch(() => null);
        if (!blob) return;
        if (a.src.startsWith("blob:")) URL.revokeObjectURL(a.src);
        a.src = URL.createObjectURL(blob);
      } else {
        if (a.src.startsWith("blob:")) URL.revokeObjectURL(a.src);
        a.src = mediaUrl(m.media.id, format);
      }
      const duration = (m.media.duration_ms ?? 0) / 1000;
      this.set({ message: m, position: from ?? this.positionOf(m.id), duration });
      a.currentTime = this.state.position;
      this.hooks.onFirstPlay(m);
    } else if (from !== undefined) {
      a.currentTime = from;
    }
    a.playbackRate = this.state.speed;
    try {
      await a.play();
    } catch {
      this.set({ playing: false });
    }
  }

  pause(): void {
    this.audio?.pause();
  }

  toggle(m: Message): void {
    if (this.isCurrent(m) && this.state.playing) this.pause();
    else void this.play(m);
  }

  seek(m: Message, seconds: number): void {
    const t = Math.max(0, Math.min(seconds, (m.media?.duration_ms ?? 0) / 1000));
    if (this.isCurrent(m) && this.audio) {
      this.audio.currentTime = t;
      this.set({ position: t });
    } else {
      this.remember(m.id, t);
      this.set({}); // re-render the bubble at its new position
    }
  }

  cycleSpeed(): void {
    const speed = nextSpeed(this.state.speed);
    localStorage.setItem(SPEED_KEY, String(speed));
    if (this.audio) this.audio.playbackRate = speed;
    this.set({ speed });
  }

  stop(): void {
    this.audio?.pause();
    this.audio?.removeAttribute("src");
    this.set({ message: null, playing: false });
  }

  private ended(): void {
    const m = this.state.message;
    if (!m) return;
    this.forget(m.id);
    if (this.endedHandler) {
      this.set({ playing: false, position: 0 });
      this.endedHandler(m);
      return;
    }
    const next = this.hooks.next(m);
    if (next) void this.play(next, 0);
    else this.set({ playing: false, position: 0 });
  }

  private remember(id: string, t: number): void {
    this.positions[id] = t;
    localStorage.setItem(POSITIONS_KEY, JSON.stringify(this.positions));
  }

  private forget(id: string): void {
    delete this.positions[id];
    localStorage.setItem(POSITIONS_KEY, JSON.stringify(this.positions));
  }
}

function readJson<T>(key: string, fallback: T): T {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "") as T;
  } catch {
    return fallback;
  }
}

export const player = new Player();
