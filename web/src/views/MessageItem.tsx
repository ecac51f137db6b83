import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { mediaUrl, type MediaFormat } from "../api/http";
import { memo } from "./memo";
import type { Message } from "../api/types";
import { L } from "../labels";
import { timeLabel, withdrawnNote, type Status } from "../state/model";
import { deleteMessage, removeUnsent, retrySend, starMessage } from "../state/store";
import { Icon } from "./Icon";
import type { PlayerState } from "../audio/player";
import { usePlayerSelect, VoiceBubble } from "./VoiceBubble";

const STATUS_ICON: Record<Status, string> = {
  Sending: "clock",
  "Not sent": "alert",
  Sent: "check",
  Delivered: "checks",
  Read: "checks",
  Played: "mic",
};

export interface MessageProps {
  message: Message;
  /** The status icon of one's own message (null for others'). */
  status: Status | null;
  group: boolean;
  me: string;
  senderName: string;
  /** A member's display name by handle (for reply quotes). */
  nameOf: (handle: string) => string;
  replied: Message | undefined;
  starred: boolean;
  day: string | null;
  onReply: (m: Message) => void;
  onForward: (m: Message) => void;
  onError: (text: string) => void;
}

/**
 * One message. Memoized: a chat of a thousand messages re-renders only those whose props
 * changed (every prop is a value or a stable callback).
 */
export const MessageItem = memo(function MessageItem(p: MessageProps) {
  // A view-once message being heard right now keeps its player until it is closed, though the
  // server already counts it opened (its media is gone from the message).
  const id = p.message.id;
  const nowPlaying = usePlayerSelect(
    useCallback((s: PlayerState) => (s.message?.id === id ? s.message : null), [id]),
  );
  const m = !p.message.media && nowPlaying ? nowPlaying : p.message;
  const mine = m.sender === p.me;
  const { status, group } = p;
  return (
    <li class={`msg${mine ? " mine" : ""}`} id={`m-${m.id}`}>
      {p.day && (
        <div class="day" role="separator">
          <span>{p.day}</span>
        </div>
      )}
      <div class="bubble">
        {group && !mine && <div class="sender">{p.senderName}</div>}
        {m.forwarded && !m.deleted && <div class="forwarded">Forwarded</div>}
        {p.replied && (
          <a class="quote" href={`#m-${p.replied.id}`}>
            <span class="sender">{p.replied.sender === p.me ? "You" : p.nameOf(p.replied.sender)}</span>
            <span>{p.replied.deleted ? "Deleted message" : p.replied.text ?? (p.replied.kind === "voice" ? "Voice message" : "Audio")}</span>
          </a>
        )}
        {m.withdrawn ? (
          <p class={mine ? "withdrawn error" : "deleted muted"}>{withdrawnNote(m, p.me)}</p>
        ) : m.deleted ? (
          <p class="deleted muted">{mine ? "You deleted this message" : "This message was deleted"}</p>
        ) : m.kind === "text" ? (
          <p class="text">{m.text}</p>
        ) : m.media ? (
          <>
            {m.view_once && <span class="once">View once</span>}
            <VoiceBubble message={m} mine={mine} me={p.me} />
          </>
        ) : (
          <p class="muted">{m.view_once ? "Opened" : "Audio unavailable"}</p>
        )}
        {m.pending === "failed" && (
          <div class="unsent-actions">
            <span class="error">Not sent: {m.error}</span>
            <button type="button" onClick={() => retrySend(m)}>
              Retry
            </button>
            <button type="button" onClick={() => removeUnsent(m)}>
              Remove
            </button>
          </div>
        )}
        <div class="meta">
          {p.starred && <Icon name="star" size={14} />}
          <time dateTime={m.created_at}>{timeLabel(m.created_at)}</time>
          {status && (
            <span role="img" aria-label={status} title={status} class={`status ${status.toLowerCase().replace(" ", "-")}`}>
              <Icon name={STATUS_ICON[status]} size={16} />
            </span>
          )}
        </div>
        {!m.pending && !m.deleted && <MessageMenu {...p} mine={mine} />}
      </div>
    </li>
  );
});

function MessageMenu(p: MessageProps & { mine: boolean }) {
  const m = p.message;
  const [open, setOpen] = useState(false);
  const [download, setDownload] = useState(false);
  const [up, setUp] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const first = menuRef.current?.querySelector<HTMLElement>("[role=menuitem]");
    first?.focus();
    const close = (e: Event) => {
      if (!menuRef.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("pointerdown", close);
    return () => document.removeEventListener("pointerdown", close);
  }, [open, download]);

  function act(f: () => Promise<void> | void) {
    setOpen(false);
    setDownload(false);
    buttonRef.current?.focus();
    Promise.resolve(f()).catch((e) => p.onError(e instanceof Error ? e.message : String(e)));
  }

  function onKey(e: KeyboardEvent) {
    const items = [...(menuRef.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const i = items.indexOf(document.activeElement as HTMLElement);
    if (e.key === "ArrowDown") items[(i + 1) % items.length]?.focus();
    else if (e.key === "ArrowUp") items[(i - 1 + items.length) % items.length]?.focus();
    else if (e.key === "Escape") {
      setOpen(false);
      buttonRef.current?.focus();
    } else return;
    e.preventDefault();
  }

  const hasMedia = m.kind !== "text" && m.media;
  const formats: [MediaFormat, string][] = [
    ["original", "Original"],
    ["ogg", "Ogg/Opus"],
    ["mp3", "MP3"],
  ];
  return (
    <div class="menu-wrap">
      <button
        ref={buttonRef}
        type="button"
        class="icon menu-button"
        aria-label={L.messageActions}
        aria-haspopup="menu"
        aria-expanded={open}
        onKeyDown={(e) => {
          if (e.key === "Escape" && open) {
            e.preventDefault();
            setOpen(false);
          }
        }}
        onClick={() => {
          // Open upwards in the lower half of the screen, so the menu is never cut off.
          const top = buttonRef.current?.getBoundingClientRect().top ?? 0;
          setUp(top > window.innerHeight / 2);
          setOpen(!open);
          setDownload(false);
        }}
      >
        <Icon name="more" size={18} />
      </button>
      {open && (
        <div role="menu" class={up ? "menu up" : "menu"} ref={menuRef} onKeyDown={onKey} aria-label={L.messageActions}>
          {download && hasMedia ? (
            formats.map(([format, label]) => (
              <a
                key={format}
                role="menuitem"
                tabIndex={-1}
                href={mediaUrl(m.media!.id, format)}
                download
                onClick={() => act(() => {})}
              >
                {label}
              </a>
            ))
          ) : (
            <>
              <button role="menuitem" tabIndex={-1} type="button" onClick={() => act(() => p.onReply(m))}>
                {L.reply}
              </button>
              {!m.view_once && (
                <button role="menuitem" tabIndex={-1} type="button" onClick={() => act(() => p.onForward(m))}>
                  {L.forward}
                </button>
              )}
              <button role="menuitem" tabIndex={-1} type="button" onClick={() => act(() => starMessage(m, !p.starred))}>
                {p.starred ? L.unstar : L.star}
              </button>
              {hasMedia && !m.view_once && (
                <button role="menuitem" tabIndex={-1} type="button" aria-haspopup="menu" onClick={() => setDownload(true)}>
                  {L.download}
                </button>
              )}
              <button role="menuitem" tabIndex={-1} type="button" onClick={() => act(() => deleteMessage(m, "me"))}>
                {L.deleteForMe}
              </button>
              {p.mine && (
                <button role="menuitem" tabIndex={-1} type="button" onClick={() => act(() => deleteMessage(m, "everyone"))}>
                  {L.deleteForEveryone}
                </button>
              )}
            </>
          )}
        </div>
      )}
    </div>
  );
}
