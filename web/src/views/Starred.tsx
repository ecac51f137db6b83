import { useEffect } from "preact/hooks";
import { chatTitle, preview, timeLabel } from "../state/model";
import { loadStarred, useStore, type State } from "../state/store";
import { navigate, onLinkClick } from "../router";
import { Icon } from "./Icon";

const all = (s: State) => s;

export function Starred() {
  const s = useStore(all);
  useEffect(() => void loadStarred(), []);
  const me = s.me?.handle ?? "";
  return (
    <main class="chatview page" aria-label="Starred messages">
      <header class="bar chat-header">
        <button type="button" class="icon back" aria-label="Back to chats" onClick={() => navigate("/")}>
          <Icon name="back" />
        </button>
        <h2>Starred messages</h2>
      </header>
      <div class="page-body">
        {s.starred.length === 0 ? (
          <p class="muted">No starred messages. Star one from its “Message actions”.</p>
        ) : (
          <ul aria-label="Starred" class="starred">
            {s.starred.map((m) => {
              const chat = s.chats.find((c) => c.id === m.chat_id);
              return (
                <li key={m.id}>
                  <a href={`/chats/${m.chat_id}?m=${m.id}`} onClick={onLinkClick}>
                    <span class="chat-title">{chat ? chatTitle(chat, me) : "Chat"}</span>
                    <span class="chat-preview">{preview(m, me)}</span>
                    <time>{timeLabel(m.created_at)}</time>
                  </a>
                </li>
              );
            })}
          </ul>
        )}
      </div>
    </main>
  );
}
