// The composer (UI.md "Chat view"/"Recording"/"Sending a file"): text, the voice recorder, and
// audio files from the picker or dropped on the chat.
import { useEffect, useRef, useState } from "preact/hooks";
import type { Chat, Message } from "../api/types";
import { L } from "../labels";
import { sendPresence, sendText } from "../state/store";
import { Icon } from "./Icon";
import { Recorder } from "./Recorder";
import { SendAudioDialog } from "./SendAudio";
import { UnsentRecordings } from "./UnsentRecordings";

const TYPING_EVERY_MS = 3000;

export function Composer(props: { chat: Chat; me: string; replyTo: Message | null; onCancelReply: () => void }) {
  const { chat } = props;
  const [text, setText] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [recording, setRecording] = useState(false);
  const [dragging, setDragging] = useState(false);
  const lastTyping = useRef(0);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setText("");
    setFile(null);
  }, [chat.id]);

  useEffect(() => {
    if (props.replyTo) inputRef.current?.focus();
  }, [props.replyTo]);

  // Dropping a file anywhere on the chat opens "Send audio".
  useEffect(() => {
    const main = document.querySelector<HTMLElement>(".chatview");
    if (!main) return;
    const over = (e: DragEvent) => {
      if (e.dataTransfer?.types.includes("Files")) {
        e.preventDefault();
        setDragging(true);
      }
    };
    const leave = (e: DragEvent) => e.target === main && setDragging(false);
    const drop = (e: DragEvent) => {
      const f = e.dataTransfer?.files[0];
      setDragging(false);
      if (f) {
        e.preventDefault();
        setFile(f);
      }
    };
    main.addEventListener("dragover", over);
    main.addEventListener("dragleave", leave);
    main.addEventListener("drop", drop);
    return () => {
      main.removeEventListener("dragover", over);
      main.removeEventListener("dragleave", leave);
      main.removeEventListener("drop", drop);
    };
  }, [chat.id]);

  function onInput(value: string) {
    setText(value);
    const now = Date.now();
    if (value && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      sendPresence(chat.id, "typing");
    } else if (!value && lastTyping.current) {
      lastTyping.current = 0;
      sendPresence(chat.id, "idle");
    }
  }

  function submit(e?: Event) {
    e?.preventDefault();
    const body = text.trim();
    if (!body) return;
    void sendText(chat.id, body, props.replyTo?.id);
    setText("");
    lastTyping.current = 0;
    sendPresence(chat.id, "idle");
    props.onCancelReply();
  }

  return (
    <div class={`composer-wrap${dragging ? " dragging" : ""}`}>
      <UnsentRecordings chatId={chat.id} />
      {props.replyTo && (
        <div class="replying">
          <div class="quote">
            <span class="sender">{props.replyTo.sender === props.me ? "You" : props.replyTo.sender}</span>
            <span>{props.replyTo.text ?? (props.replyTo.kind === "voice" ? "Voice message" : "Audio")}</span>
          </div>
          <button type="button" class="icon" aria-label="Cancel reply" onClick={props.onCancelReply}>
            <Icon name="close" size={18} />
          </button>
        </div>
      )}
      <form class="composer" onSubmit={submit}>
        {!recording && (
          <>
            <button type="button" class="icon" aria-label={L.attachAudio} title={L.attachAudio} onClick={() => fileRef.current?.click()}>
              <Icon name="attach" />
            </button>
            <input
              ref={fileRef}
              type="file"
              class="visually-hidden"
              aria-label={L.audioFile}
              accept="audio/*,video/*,.opus,.ogg,.m4a,.mp3,.wav,.amr,.aac,.flac,.3gp"
              tabIndex={-1}
              onChange={(e) => {
                const input = e.currentTarget as HTMLInputElement;
                if (input.files?.[0]) setFile(input.files[0]);
                input.value = "";
              }}
            />
            <textarea
              ref={inputRef}
              aria-label={L.message}
              placeholder="Message"
              rows={1}
              value={text}
              onInput={(e) => onInput((e.currentTarget as HTMLTextAreaElement).value)}
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
              }}
            />
          </>
        )}
        {text.trim() && !recording ? (
          <button type="submit" class="icon primary round" aria-label={L.send} title={L.send}>
            <Icon name="send" />
          </button>
        ) : (
          <Recorder chatId={chat.id} replyTo={props.replyTo?.id} onActive={setRecording} onSent={props.onCancelReply} />
        )}
      </form>
      {file && <SendAudioDialog file={file} chatId={chat.id} onClose={() => setFile(null)} />}
    </div>
  );
}
