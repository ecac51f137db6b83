import { useCallback, useState } from "preact/hooks";
import { mediaUrl, type MediaFormat } from "../api/http";
import { memo } from "./memo";
import type { Message } from "../api/types";
import { L } from "../labels";
import { isMine, timeLabel, withdrawnNote, type Status } from "../state/model";
import { deleteMessage, removeUnsent, retrySend, starMessage } from "../state/store";
import { Icon } from "./Icon";
import { MenuButton } from "./Menu";
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
  onEmail: (m: Message) => void;
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
  const mine = isMine(m, p.me);
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
            <span class="sender">{isMine(p.replied, p.me) ? "You" : p.replied.sender_name ?? p.nameOf(p.replied.sender)}</span>
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
  const [download, setDownload] = useState(false);

  const hasMedia = m.kind !== "text" && m.media;
  const formats: [MediaFormat, string][] = [
    ["original", "Original"],
    ["ogg", "Ogg/Opus"],
    ["mp3", "MP3"],
  ];
  return (
    <MenuButton label={L.messageActions} icon="more" iconSize={18} page={download} onClose={() => setDownload(false)}>
      {(close) => {
        const act = (f: () => Promise<void> | void) => {
          close();
          Promise.resolve(f()).catch((e) => p.onError(e instanceof Error ? e.message : String(e)));
        };
        return download && hasMedia ? (

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
                <button role="menuitem" tabIndex={-1} type="button" aria-haspopup="dialog" onClick={() => act(() => p.onEmail(m))}>
                  {L.email}
                </button>
              )}
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
          );
      }}
    </MenuButton>
  );
}
