import { useState } from "preact/hooks";
import type { Chat } from "../api/types";
import { L } from "../labels";
import { chatTitle, listTimeLabel, preview } from "../state/model";
import { createGroup, startDirect, useStore, type State } from "../state/store";
import { navigate, onLinkClick } from "../router";
import { Alert, Dialog, DialogButtons, errorText } from "./Dialog";
import { Icon } from "./Icon";
import { SearchForm, SearchResults, useSearch } from "./Search";
import { inbox } from "../audio/inbox";

const selectList = (s: State) => s;

export function presenceText(state: Record<string, string> | undefined, chat: Chat): string {
  const entries = Object.entries(state ?? {});
  if (!entries.length) return "";
  const [handle, what] = entries.find(([, w]) => w === "recording") ?? entries[0];
  const text = what === "recording" ? L.recordingAudio : L.typing;
  if (chat.kind !== "group") return text;
  const who = chat.members.find((x) => x.handle === handle)?.display_name ?? handle;
  return `${who} is ${text}`;
}

export function ChatList(props: { openChatId: string | null }) {
  const s = useStore(selectList);
  const me = s.me?.handle ?? "";
  const [dialog, setDialog] = useState<"chat" | "group" | null>(null);
  const search = useSearch();

  return (
    <nav aria-label={L.chats} class="chatlist">
      <header class="bar">
        <h1 class="brand">voxbox</h1>
        <div class="bar-actions">
          <button
            type="button"
            class="icon"
            aria-label={L.playAllUnplayed}
            title={L.playAllUnplayed}
            onClick={() => void inbox.start()}
          >
            <Icon name="playlist" />
          </button>
          <button type="button" class="icon" aria-label={L.newChat} title={L.newChat} onClick={() => setDialog("chat")}>
            <Icon name="chat" />
          </button>
          <button type="button" class="icon" aria-label={L.newGroup} title={L.newGroup} onClick={() => setDialog("group")}>
            <Icon name="group" />
          </button>
          <a href="/starred" class="icon button" aria-label="Starred" title="Starred" onClick={onLinkClick}>
            <Icon name="star" />
          </a>
          <button type="button" class="icon" aria-label={L.settings} title={L.settings} onClick={() => navigate("/settings")}>
            <Icon name="settings" />
          </button>
        </div>
      </header>
      <SearchForm search={search} />
      {search.query.trim() ? (
        <SearchResults search={search} me={me} />
      ) : (
        <ul class="chats">
          {s.chats.map((chat) => {
            const title = chatTitle(chat, me);
            const live = presenceText(s.presence[chat.id], chat);
            const last = chat.last_message;
            return (
              <li key={chat.id}>
                <a
                  href={`/chats/${chat.id}`}
                  onClick={onLinkClick}
                  class={`chat-row${chat.id === props.openChatId ? " open" : ""}`}
                  aria-current={chat.id === props.openChatId ? "page" : undefined}
                >
                  <span class="avatar" aria-hidden="true">
                    {chat.kind === "self" ? <Icon name="note" /> : title.slice(0, 1).toUpperCase()}
                  </span>
                  <span class="chat-main">
                    <span class="chat-top">
                      <span class="chat-title">{title}</span>
                      {last && <time class="chat-time">{listTimeLabel(last.created_at)}</time>}
                    </span>
                    <span class="chat-bottom">
                      <span class={live ? "chat-preview live" : "chat-preview"}>
                        {!live && last && !last.deleted && last.kind !== "text" && (
                          <>
                            <Icon name={last.kind === "voice" ? "mic" : "music"} size={16} />
                            <span class="visually-hidden">{last.kind === "voice" ? "Voice message" : "Audio"} </span>
                          </>
                        )}
                        {live || preview(last, me)}
                      </span>
                      {chat.unread_count > 0 && (
                        <span class="badge" role="img" aria-label={`${chat.unread_count} unread messages`}>
                          {chat.unread_count}
                        </span>
                      )}
                    </span>
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
      )}
      {dialog === "chat" && <NewChatDialog onClose={() => setDialog(null)} />}
      {dialog === "group" && <NewGroupDialog onClose={() => setDialog(null)} />}
    </nav>
  );
}

function NewChatDialog(props: { onClose: () => void }) {
  const [error, setError] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    const handle = String(new FormData(e.currentTarget as HTMLFormElement).get("handle") ?? "");
    try {
      const chat = await startDirect(handle);
      props.onClose();
      navigate(`/chats/${chat.id}`);
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <Dialog title={L.newChat} onClose={props.onClose}>
      <form onSubmit={submit}>
        <label>
          {L.handle}
          <input name="handle" required autocapitalize="none" autocomplete="off" />
        </label>
        <Alert text={error} />
        <DialogButtons action={L.startChat} onCancel={props.onClose} />
      </form>
    </Dialog>
  );
}

function NewGroupDialog(props: { onClose: () => void }) {
  const [error, setError] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const handles = String(form.get("members") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean);
    try {
      const chat = await createGroup(String(form.get("title") ?? "").trim(), handles);
      props.onClose();
      navigate(`/chats/${chat.id}`);
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <Dialog title={L.newGroup} onClose={props.onClose}>
      <form onSubmit={submit}>
        <label>
          {L.groupName}
          <input name="title" required maxLength={128} />
        </label>
        <label>
          {L.members}
          <input name="members" autocapitalize="none" autocomplete="off" placeholder="alice, bob" />
        </label>
        <Alert text={error} />
        <DialogButtons action={L.createGroup} onCancel={props.onClose} />
      </form>
    </Dialog>
  );
}
