import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, exportUrl } from "../api/http";
import type { Chat, Message } from "../api/types";
import { L } from "../labels";
import { chatTitle, dayLabel, isMember, isMine, messageStatus } from "../state/model";
import {
  addMember,
  forward,
  loadMessages,
  loadUntil,
  markRead,
  removeMember,
  setOpenChat,
  useStore,
  type State,
} from "../state/store";
import { navigate } from "../router";
import { presenceText } from "./ChatList";
import { Composer } from "./Composer";
import { Alert, Dialog, DialogButtons, errorText } from "./Dialog";
import { Icon } from "./Icon";
import { MenuButton } from "./Menu";
import { MessageItem } from "./MessageItem";

const all = (s: State) => s;

/** Until the next frame is drawn (what was just loaded is then in the DOM). */
const nextFrame = () =>
  new Promise<void>((resolve) => {
    requestAnimationFrame(() => resolve());
    setTimeout(resolve, 100); // hidden tabs draw no frames
  });

/** `target`: a message to open the chat at (?m=, from Starred or a search): scrolled to and flashed. */
export function ChatView({ chatId, target }: { chatId: string; target?: string }) {
  const s = useStore(all);
  const me = s.me?.handle ?? "";
  const chat = s.chats.find((c) => c.id === chatId);
  const messages = s.messages[chatId] ?? [];
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [forwarding, setForwarding] = useState<Message | null>(null);
  const [emailing, setEmailing] = useState<Message | null>(null);
  const [info, setInfo] = useState(false);
  const [error, setError] = useState("");
  const [loadingOlder, setLoadingOlder] = useState(false);
  const memberNames = chat?.members.map((x) => `${x.handle}\u0000${x.display_name}`).join("\u0001") ?? "";
  const nameOf = useCallback(
    (handle: string) => chat?.members.find((x) => x.handle === handle)?.display_name ?? handle,
    [memberNames],
  );
  const listRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<{ height: number; top: number } | null>(null);
  const targetRef = useRef(target);
  targetRef.current = target;
  /** The chat whose newest page has loaded (a target is shown only after it). */
  const loadedFor = useRef<string | null>(null);

  /** Show the message `id`, loading older pages until it is there; flash it. */
  const reveal = useCallback(
    async (id: string) => {
      atBottom.current = false;
      try {
        if (!(await loadUntil(chatId, id))) return;
      } catch (e) {
        setError(errorText(e));
        return;
      }
      await nextFrame();
      const el = document.getElementById(`m-${id}`);
      if (!el || targetRef.current !== id) return;
      for (const old of document.querySelectorAll(".msg.flash")) old.classList.remove("flash");
      el.scrollIntoView({ block: "center" });
      el.classList.add("flash");
    },
    [chatId],
  );

  useEffect(() => {
    setOpenChat(chatId);
    setReplyTo(null);
    setError("");
    atBottom.current = true;
    loadedFor.current = null;
    loadMessages(chatId).then(
      () => {
        loadedFor.current = chatId;
        void markRead(chatId);
        if (targetRef.current) void reveal(targetRef.current);
      },
      (e) => setError(navigator.onLine ? errorText(e) : ""),
    );
    // With a keyboard and mouse, the composer is ready to type in (as in WhatsApp desktop);
    // not on touch screens, where it would pop up the keyboard.
    if (matchMedia("(pointer: fine)").matches) {
      document.querySelector<HTMLElement>(".composer textarea")?.focus();
    }
    return () => setOpenChat(null);
  }, [chatId]);

  // Another message of the open chat picked (a second search hit): show it.
  useEffect(() => {
    if (target && loadedFor.current === chatId) void reveal(target);
  }, [target]);

  // New messages while the chat is open and visible are read.
  const lastId = messages.at(-1)?.id;
  useEffect(() => {
    if (lastId && document.visibilityState === "visible") void markRead(chatId);
  }, [lastId, chatId]);

  // Keep the view at the bottom as messages arrive; keep it still when older ones load above.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el) return;
    if (anchor.current) {
      el.scrollTop = el.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages.length, lastId]);

  const loadOlder = useCallback(async () => {
    const el = listRef.current;
    if (!el || loadingOlder || !s.hasMore[chatId]) return;
    setLoadingOlder(true);
    anchor.current = { height: el.scrollHeight, top: el.scrollTop };
    try {
      await loadMessages(chatId, true);
    } catch {
      anchor.current = null;
    } finally {
      setLoadingOlder(false);
    }
  }, [chatId, loadingOlder, s.hasMore[chatId]]);

  function onScroll() {
    const el = listRef.current!;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 200) void loadOlder();
  }

  if (!chat) {
    return (
      <main class="chatview empty">
        <p class="muted">{s.chats.length ? "This chat is not available." : "Loading…"}</p>
      </main>
    );
  }

  const title = chatTitle(chat, me);
  const live = presenceText(s.presence[chatId], chat);
  const names = new Map(chat.members.map((x) => [x.handle, x.display_name]));
  const group = chat.kind === "group";
  const byId = new Map(messages.map((m) => [m.id, m]));
  const starred = new Set(s.starred.map((m) => m.id));
  let lastDay = "";

  return (
    <main class="chatview" aria-label={title}>
      <header class="bar chat-header">
        <button type="button" class="icon back" aria-label="Back to chats" onClick={() => navigate("/")}>
          <Icon name="back" />
        </button>
        <div class="chat-heading">
          <h2>{title}</h2>
          <p class="sub" aria-live="polite">
            {live || (chat.kind === "group" ? chat.members.map((x) => x.display_name).join(", ") : "")}
          </p>
        </div>
        {chat.kind === "group" && (
          <button type="button" class="icon" aria-label={L.groupInfo} title={L.groupInfo} onClick={() => setInfo(true)}>
            <Icon name="group" />
          </button>
        )}
        <MenuButton label={L.chatMenu} icon="more" class="icon" wrap="menu-anchor">
          {(close) => (
            <a role="menuitem" tabIndex={-1} href={exportUrl(chat.id)} download onClick={close}>
              {L.exportChat}
            </a>
          )}
        </MenuButton>
      </header>
      <div class="scroller" ref={listRef} onScroll={onScroll}>
        {s.hasMore[chatId] && (
          <button type="button" class="link older" onClick={loadOlder} disabled={loadingOlder}>
            {loadingOlder ? "Loading…" : "Load older messages"}
          </button>
        )}
        {messages.length === 0 && s.hasMore[chatId] === false && (
          <p class="empty-chat muted">No messages yet. Say hello, or hold the mic to record a voice message.</p>
        )}
        <ul aria-label={L.messages} class="messages">
          {messages.map((m) => {
            const day = dayLabel(m.created_at);
            const showDay = day !== lastDay ? day : null;
            lastDay = day;
            return (
              <MessageItem
                key={m.id}
                message={m}
                status={isMine(m, me) ? messageStatus(m, chat, me) : null}
                group={group}
                me={me}
                senderName={m.sender_name ?? names.get(m.sender) ?? m.sender}
                nameOf={nameOf}
                replied={m.reply_to ? byId.get(m.reply_to) : undefined}
                starred={starred.has(m.id)}
                day={showDay}
                onReply={setReplyTo}
                onForward={setForwarding}
                onEmail={setEmailing}
                onError={setError}
              />
            );
          })}
        </ul>
      </div>
      <Alert text={error} />
      {!isMember(chat, me) ? (
        <p class="left muted">You are no longer a member of this group.</p>
      ) : (
        <Composer chat={chat} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} me={me} />
      )}
      {forwarding && <ForwardDialog message={forwarding} onClose={() => setForwarding(null)} />}
      {emailing && <EmailDialog message={emailing} onClose={() => setEmailing(null)} />}
      {info && <GroupInfoDialog chat={chat} me={me} onClose={() => setInfo(false)} />}
    </main>
  );
}

export function ChatCheckboxes(props: {
  me: string;
  chats: Chat[];
  selected: Set<string>;
  onToggle: (id: string) => void;
  max?: number;
}) {
  const full = props.max !== undefined && props.selected.size >= props.max;
  return (
    <ul class="pick">
      {props.chats.map((c) => (
        <li key={c.id}>
          <label>
            <input
              type="checkbox"
              checked={props.selected.has(c.id)}
              disabled={full && !props.selected.has(c.id)}
              onChange={() => props.onToggle(c.id)}
            />
            {chatTitle(c, props.me)}
          </label>
        </li>
      ))}
    </ul>
  );
}

const FORWARD_MAX = 5;

function ForwardDialog(props: { message: Message; onClose: () => void }) {
  const s = useStore(all);
  const [selected, setSelected] = useState(new Set<string>());
  const [error, setError] = useState("");
  const chats = s.chats.filter((c) => isMember(c, s.me?.handle ?? ""));
  function toggle(id: string) {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  }
  async function submit(e: Event) {
    e.preventDefault();
    try {
      await forward(props.message, [...selected]);
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <Dialog title={L.forwardTo} onClose={props.onClose}>
      <form onSubmit={submit}>
        <p class="muted">Up to {FORWARD_MAX} chats at once.</p>
        <ChatCheckboxes me={s.me?.handle ?? ""} chats={chats} selected={selected} onToggle={toggle} max={FORWARD_MAX} />
        <Alert text={error} />
        <DialogButtons action={L.forward} onCancel={props.onClose} disabled={!selected.size} />
      </form>
    </Dialog>
  );
}

function EmailDialog(props: { message: Message; onClose: () => void }) {
  const [to, setTo] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState("");
  const [sending, setSending] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setSending(true);
    try {
      await api.email(props.message.id, to.trim(), note.trim());
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setSending(false);
    }
  }
  return (
    <Dialog title={L.emailVoiceMessage} onClose={props.onClose}>
      <form onSubmit={submit}>
        <label>
          {L.emailTo}
          <input type="email" required autoComplete="email" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          {L.emailNote}
          <textarea maxLength={2000} rows={3} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        </label>
        <Alert text={error} />
        <DialogButtons action={L.sendEmail} onCancel={props.onClose} disabled={sending || !to.trim()} />
      </form>
    </Dialog>
  );
}

function GroupInfoDialog(props: { chat: Chat; me: string; onClose: () => void }) {
  const { chat, me } = props;
  const [error, setError] = useState("");
  const admin = chat.members.find((x) => x.handle === me)?.role === "admin";
  const run = (f: () => Promise<void>) => f().catch((e) => setError(errorText(e)));
  async function add(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const handle = String(new FormData(form).get("handle") ?? "");
    await run(async () => {
      await addMember(chat.id, handle);
      form.reset();
      setError("");
    });
  }
  return (
    <Dialog title={L.groupInfo} onClose={props.onClose}>
      <h3>{chat.title}</h3>
      <ul class="members" aria-label={L.members}>
        {chat.members.map((x) => (
          <li key={x.handle}>
            <span>
              {x.display_name} <span class="muted">@{x.handle}</span>
              {x.role === "admin" && <span class="muted"> · admin</span>}
            </span>
            {admin && x.handle !== me && (
              <button type="button" onClick={() => run(() => removeMember(chat.id, x.handle))}>
                {L.remove}
              </button>
            )}
          </li>
        ))}
      </ul>
      {admin && (
        <form onSubmit={add} class="inline-form">
          <label>
            {L.handle}
            <input name="handle" required autocapitalize="none" autocomplete="off" />
          </label>
          <button type="submit">{L.addMember}</button>
        </form>
      )}
      <Alert text={error} />
      <div class="row-end">
        <button type="button" class="danger" onClick={() => run(async () => (await removeMember(chat.id, me), props.onClose()))}>
          {L.leaveGroup}
        </button>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
