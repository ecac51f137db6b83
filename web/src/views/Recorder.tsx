// The record button and the recording bar (UI.md "Recording"). Gestures and states live in
// recorder/ (pure, unit-tested); this view only forwards pointer and key events and renders.
import { useEffect, useRef, useState } from "preact/hooks";
import { L } from "../labels";
import { createRecorderController, type RecorderController, type ControllerState } from "../recorder/controller";
import { clock } from "../state/model";
import { draftClientId, draftsChanged, setCurrentRecordingUpload } from "../state/drafts";
import { sendMedia } from "../state/store";
import { Icon } from "./Icon";

export function Recorder(props: { chatId: string; replyTo?: string; onActive: (active: boolean) => void; onSent: () => void }) {
  const ref = useRef<RecorderController | null>(null);
  const replyTo = useRef(props.replyTo);
  replyTo.current = props.replyTo;
  const [s, setS] = useState<ControllerState | null>(null);
  const [viewOnce, setViewOnce] = useState(false);
  const preview = useRef<HTMLAudioElement | null>(null);
  const [previewing, setPreviewing] = useState(false);
  const viewOnceRef = useRef(viewOnce);
  viewOnceRef.current = viewOnce;

  useEffect(() => {
    const c = createRecorderController({
      chatId: props.chatId,
      sendMessage: async (uploadId: string) => {
        await sendMedia(
          props.chatId,
          { kind: "voice", upload_id: uploadId, reply_to: replyTo.current, view_once: viewOnceRef.current || undefined },
          draftClientId(uploadId),
        );
        setViewOnce(false);
        props.onSent();
      },
      onUpload: (id: string | null) => setCurrentRecordingUpload(id),
      onKept: draftsChanged,
      playPreview: (url: string) => {
        // One preview at a time; the bar says it is playing until it ends.
        preview.current?.pause();
        const audio = new Audio(url);
        preview.current = audio;
        audio.onended = audio.onpause = () => setPreviewing(false);
        audio.play().then(
          () => setPreviewing(true),
          () => setPreviewing(false),
        );
      },
    });
    ref.current = c;
    setS(c.getState());
    const off = c.subscribe(() => setS(c.getState()));
    return () => {
      off();
      preview.current?.pause();
      c.dispose();
      ref.current = null;
      setCurrentRecordingUpload(null);
    };
  }, [props.chatId]);

  const kind = s?.machine.kind ?? "idle";
  // Leaving the paused state (resume, send, delete) ends a preview.
  useEffect(() => {
    if (kind !== "paused") preview.current?.pause();
  }, [kind]);
  const active = kind === "holding" || kind === "locked" || kind === "paused" || kind === "sending" || kind === "acquiring";
  useEffect(() => props.onActive(active && kind !== "acquiring"), [active, kind]);

  const c = ref.current;
  // Focus follows the recorder, so a keyboard user is never dropped on <body>: into the
  // locked bar when it replaces the mic button, back to the mic button when it returns.
  const micRef = useRef<HTMLButtonElement>(null);
  const sendRef = useRef<HTMLButtonElement>(null);
  const previous = useRef(kind);
  useEffect(() => {
    const was = previous.current;
    previous.current = kind;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (!lost || was === kind) return;
    if (kind === "locked" || kind === "paused") sendRef.current?.focus();
    else if (was !== "idle" && (kind === "idle" || kind === "failed")) micRef.current?.focus();
  }, [kind]);
  const elapsed = s && "elapsedMs" in s.machine ? s.machine.elapsedMs / 1000 : 0;
  // A failed send keeps the recording: it stays on the bar to be sent again or deleted.
  const sendFailed = s?.machine.kind === "failed" && s.machine.reason === "send";
  const locked = kind === "locked" || kind === "paused" || kind === "sending" || sendFailed;
  const [hintShown, setHintShown] = useState(false);
  useEffect(() => {
    if (!s?.hint) return;
    setHintShown(true);
    const t = setTimeout(() => setHintShown(false), 4000);
    return () => clearTimeout(t);
  }, [s?.hint]);

  const mic = (
    <button
      key="mic"
      ref={micRef}
      type="button"
      class={`icon primary round mic${kind === "holding" ? " holding" : ""}`}
      aria-label={L.recordVoice}
      title={`${L.recordVoice}: hold to record, click to record hands-free`}
      onPointerDown={(e) => {
        if (e.button !== 0) return;
        (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
        c?.press(e.clientX, e.clientY, e.timeStamp);
      }}
      onPointerMove={(e) => c?.move(e.clientX, e.clientY, e.timeStamp)}
      onPointerUp={(e) => c?.release(e.timeStamp)}
      onPointerCancel={(e) => c?.release(e.timeStamp)}
      onKeyDown={(e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          if (!e.repeat) c?.key();
        }
      }}
      onClick={(e) => e.preventDefault()}
      onContextMenu={(e) => e.preventDefault()}
    >
      <Icon name="mic" />
    </button>
  );

  const messages = (
    <>
      {s?.error && (
        <p role="alert" class="error rec-msg" key="error">
          {s.error}
        </p>
      )}
      {s?.hint && hintShown && !s.error && (
        <p role="status" class="hint rec-msg" key="hint">
          {s.hint}
        </p>
      )}
    </>
  );

  const timer = (
    <span role="timer" aria-label={L.recordingTime} class="rec-time">
      {clock(elapsed)}
    </span>
  );
  const meter = (
    <span class="meter" aria-hidden="true">
      <span style={{ width: `${Math.round((s?.level ?? 0) * 100)}%` }} />
    </span>
  );

  // The mic button keeps its key: while held it has the pointer capture, so it must never be
  // re-created under the finger.
  return (
    <>
      {kind === "holding" && (
        <div class="recorder" key="holding">
          <span class="rec-dot" aria-hidden="true" />
          {timer}
          {meter}
          <span class="hint">‹ {L.slideToCancel}</span>
          <span class="lock-hint" aria-hidden="true">
            <Icon name="lock" size={18} />
          </span>
        </div>
      )}
      {locked && (
        <div class="recorder" key="locked">
          <button type="button" class="icon danger" aria-label={L.deleteRecording} onClick={() => c?.delete()} disabled={kind === "sending"}>
            <Icon name="trash" />
          </button>
          <span class={`rec-dot${kind === "paused" ? " paused" : ""}`} aria-hidden="true" />
          {timer}
          {meter}
          {kind === "paused" && (
            <button
              type="button"
              class="icon"
              aria-label={L.playRecording}
              aria-pressed={previewing}
              onClick={() => (previewing ? preview.current?.pause() : c?.playPreview())}
            >
              <Icon name={previewing ? "pause" : "play"} />
            </button>
          )}
          {kind === "paused" ? (
            <button type="button" class="icon" aria-label={L.resumeRecording} onClick={() => c?.resume()}>
              <Icon name="mic" />
            </button>
          ) : sendFailed ? null : (
            <button type="button" class="icon" aria-label={L.pauseRecording} onClick={() => c?.pause()} disabled={kind === "sending"}>
              <Icon name="pause" />
            </button>
          )}
          <button
            type="button"
            class={`icon once-toggle${viewOnce ? " on" : ""}`}
            aria-label={L.viewOnce}
            aria-pressed={viewOnce}
            title="Can be played once"
            onClick={() => setViewOnce(!viewOnce)}
          >
            1
          </button>
          <button ref={sendRef} type="button" class="icon primary round" aria-label={L.sendRecording} onClick={() => c?.send()} disabled={kind === "sending"}>
            <Icon name="send" />
          </button>
        </div>
      )}
      {messages}
      {!locked && mic}
    </>
  );
}
