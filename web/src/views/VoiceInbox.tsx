// The voice inbox's region (UI.md "Transcripts, search and the voice inbox"): who and which chat
// plays now, Previous / Play-Pause / Next / speed / Stop; "All caught up" at the end.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { inbox } from "../audio/inbox";
import { player, type PlayerState } from "../audio/player";
import * as Q from "../audio/queue";
import { L, speedLabel } from "../labels";
import { describeMessage } from "../state/model";
import { getState } from "../state/store";
import { Icon } from "./Icon";
import { usePlayerSelect } from "./VoiceBubble";

const selectPlayback = (s: PlayerState) => (s.playing ? "playing" : "paused") + s.speed;

export function useInbox() {
  const [state, setState] = useState(inbox.state);
  useEffect(() => inbox.subscribe(() => setState(inbox.state)), []);
  return state;
}

export function VoiceInbox() {
  const s = useInbox();
  usePlayerSelect(selectPlayback); // re-render on play/pause and speed changes
  if (s.phase === "idle") return null;
  const me = getState().me?.handle ?? "";
  const m = Q.current(s.queue);
  const playing = inbox.active && m !== null;
  const who = m ? describeMessage(m, getState().chats, me) : null;
  let line: ComponentChildren;
  if (s.phase === "loading") line = "Looking for unplayed voice messages…";
  else if (s.phase === "empty") line = L.noUnplayed;
  else if (s.phase === "done") line = `${L.allCaughtUp}. Every voice message is played.`;
  else if (s.phase === "error") line = `Could not load the voice inbox: ${s.error}`;
  else if (who)
    line = (
      <>
        <strong class="inbox-sender">{who.sender}</strong>{" "}
        <span class="inbox-chat">{who.chat && who.chat !== who.sender ? who.chat : "Direct chat"}</span>{" "}
        <span class="inbox-count muted">{Q.progress(s.queue)}</span>
      </>
    );
  const paused = s.phase === "playing" && !player.state.playing;
  return (
    <section class={`inbox${s.phase === "chime" ? " chiming" : ""}`} aria-label={L.voiceInbox}>
      <Icon name="playlist" />
      <p class="inbox-now" role="status">
        {line}
      </p>
      {playing ? (
        <div class="inbox-controls">
          <button type="button" class="icon" aria-label={L.previousVoice} title={L.previousVoice} onClick={() => inbox.previous()}>
            <Icon name="previous" />
          </button>
          <button
            type="button"
            class="icon"
            aria-label={paused ? L.play : L.pause}
            disabled={s.phase !== "playing"}
            onClick={() => inbox.toggle()}
          >
            <Icon name={paused ? "play" : "pause"} />
          </button>
          <button type="button" class="icon" aria-label={L.nextVoice} title={L.nextVoice} onClick={() => inbox.next()}>
            <Icon name="next" />
          </button>
          <button type="button" class="speed" aria-label={L.playbackSpeed} onClick={() => player.cycleSpeed()}>
            {speedLabel(player.state.speed)}
          </button>
          <button type="button" class="icon" aria-label={L.stop} title={L.stop} onClick={() => inbox.stop()}>
            <Icon name="stop" />
          </button>
        </div>
      ) : (
        s.phase !== "loading" && (
          <button type="button" class="icon" aria-label={L.closeInbox} title="Close" onClick={() => inbox.stop()}>
            <Icon name="close" />
          </button>
        )
      )}
    </section>
  );
}
