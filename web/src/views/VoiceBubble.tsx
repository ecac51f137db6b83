// A voice or audio message's player (UI.md "Chat view"): Play/Pause, the waveform as the Seek
// slider, the speed, and the time. It drives the one shared player; it owns no <audio>.
import { useCallback, useEffect, useId, useMemo, useState } from "preact/hooks";
import { wavePath } from "../audio/formats";
import { player, type PlayerState } from "../audio/player";

const selectSpeed = (s: PlayerState) => s.speed;
const tenths = (seconds: number) => Math.round(seconds * 10) / 10;
import type { Message } from "../api/types";
import { L, speedLabel } from "../labels";
import { clock } from "../state/model";
import { Icon } from "./Icon";

/**
 * A slice of the shared player's state; re-renders only when the slice changes (by identity),
 * so a chat of many voice messages does not re-render them all on every timeupdate.
 */
export function usePlayerSelect<T>(select: (s: PlayerState) => T): T {
  const [value, setValue] = useState(() => select(player.state));
  useEffect(() => {
    const update = () => setValue(() => select(player.state));
    update();
    return player.subscribe(update);
  }, [select]);
  return value;
}

export function VoiceBubble(props: { message: Message; mine: boolean; me: string }) {
  const m = props.message;
  const speed = usePlayerSelect(selectSpeed);
  // This message's playback while it is the current one, else where it was left (a number).
  const mine = usePlayerSelect(
    useCallback((s: PlayerState) => (s.message?.id === m.id ? s : player.positionOf(m.id)), [m.id]),
  );
  const p = typeof mine === "number" ? null : mine;
  const media = m.media!;
  const current = p !== null;
  const total = p?.duration ? p.duration : (media.duration_ms ?? 0) / 1000;
  const position = p ? p.position : (mine as number);
  const playing = !!p?.playing;
  const fraction = total > 0 ? Math.min(1, position / total) : 0;
  const unplayed = !props.mine && !m.receipts.played.includes(props.me);
  const name = m.kind === "voice" ? L.voiceMessage : L.audioMessage;
  const bars = media.waveform.length ? media.waveform : new Array(64).fill(24);

  function seekFromPointer(e: PointerEvent) {
    const el = e.currentTarget as HTMLElement;
    const rect = el.getBoundingClientRect();
    const f = Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
    player.seek(m, f * total);
  }

  function onKey(e: KeyboardEvent) {
    const step = e.key === "ArrowRight" || e.key === "ArrowUp" ? 5 : e.key === "ArrowLeft" || e.key === "ArrowDown" ? -5 : 0;
    if (e.key === "Home") player.seek(m, 0);
    else if (e.key === "End") player.seek(m, total);
    else if (step) player.seek(m, position + step);
    else return;
    e.preventDefault();
  }

  if (media.state === "processing") {
    return (
      <div role="group" aria-label={name} class="voice">
        <span class="muted">Processing {media.filename}…</span>
      </div>
    );
  }
  if (media.state === "failed") {
    return (
      <div role="group" aria-label={name} class="voice">
        <span class="error">Could not process this audio: {media.error}</span>
      </div>
    );
  }
  return (
    <div role="group" aria-label={name} class="voice-group">
      <div class={`voice${unplayed ? " unplayed" : ""}`}>
        <button
          type="button"
          class="icon play"
          aria-label={playing ? L.pause : L.play}
          onClick={() => player.toggle(m)}
        >
          <Icon name={playing ? "pause" : "play"} size={26} />
        </button>
        <div class="voice-main">
          {m.kind === "audio" && <span class="filename">{media.filename}</span>}
          <div
            class="wave"
            role="slider"
            tabIndex={0}
            aria-label={L.seek}
            aria-valuemin={0}
            aria-valuemax={tenths(total)}
            aria-valuenow={tenths(Math.min(position, total))}
            aria-valuetext={`${clock(position)} of ${clock(total)}`}
            onPointerDown={(e) => {
              (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
              seekFromPointer(e);
            }}
            onPointerMove={(e) => e.buttons && seekFromPointer(e)}
            onKeyDown={onKey}
          >
            <Waveform bars={bars} fraction={fraction} />
          </div>
          <div class="voice-meta">
            <span class="voice-time">{clock(current || position > 0 ? position : total)}</span>
            {unplayed && <span class="dot" title="Not played yet" />}
            <button type="button" class="speed" aria-label={L.playbackSpeed} onClick={() => player.cycleSpeed()}>
              {speedLabel(speed)}
            </button>
          </div>
        </div>
      </div>
      <TranscriptToggle message={m} />
    </div>
  );
}

/** A transcript's language as an HTML lang (BCP 47), or none when the server's is not one. */
const langTag = (language: string | null) =>
  language && /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i.test(language) ? language : undefined;

/**
 * "Show transcript" once the server has one (UI.md): it reveals the text as a region named
 * "Transcript". While the server works on it, a quiet "Transcribing…"; failed or off, nothing.
 */
function TranscriptToggle({ message }: { message: Message }) {
  const [open, setOpen] = useState(false);
  const id = useId();
  const t = message.transcript;
  if (!t || t.state === "failed" || t.state === "off") return null;
  if (t.state === "pending") return <p class="transcribing muted">Transcribing…</p>;
  const text = t.text?.trim() || t.words.map((w) => w.w).join(" ");
  return (
    <>
      <button
        type="button"
        class="link transcript-toggle"
        aria-expanded={open}
        aria-controls={id}
        onClick={() => setOpen(!open)}
      >
        {/* One name, open or not (UI.md): aria-expanded says which; the chevron shows it. */}
        {L.showTranscript}
      </button>
      <div id={id} role="region" aria-label={L.transcript} class="transcript" lang={langTag(t.language)} hidden={!open}>
        {open && (text ? <p>{text}</p> : <p class="muted">No words were recognized.</p>)}
      </div>
    </>
  );
}

/**
 * The waveform as one SVG: the bars drawn twice, the played part clipped to the position.
 * (Five elements, not sixty-four: a chat holds many of these.)
 */
function Waveform({ bars, fraction }: { bars: number[]; fraction: number }) {
  const id = useId();
  const d = useMemo(() => wavePath(bars), [bars]);
  return (
    <svg class="wavesvg" viewBox={`0 0 ${bars.length * 3} 32`} preserveAspectRatio="none" aria-hidden="true">
      <clipPath id={id}>
        <rect x="0" y="0" height="32" width={fraction * bars.length * 3} />
      </clipPath>
      <path d={d} class="wave-rest" />
      <path d={d} class="wave-done" clip-path={`url(#${id})`} />
    </svg>
  );
}
