import { useEffect, useState } from "preact/hooks";
import { L } from "../labels";
import { describeMessage, nextUnplayed } from "../state/model";
import { getState, markPlayed, onSignOut, useStore, type State } from "../state/store";
import { inbox } from "../audio/inbox";
import { player } from "../audio/player";
import { useRoute } from "../router";
import { ChatList } from "./ChatList";
import { ChatView } from "./ChatView";
import { MiniPlayer } from "./MiniPlayer";
import { Settings } from "./Settings";
import { Share } from "./Share";
import { SignIn } from "./SignIn";
import { Starred } from "./Starred";
import { useInbox, VoiceInbox } from "./VoiceInbox";

player.setHooks({
  onFirstPlay: (m) => markPlayed(m),
  next: (m) => {
    const s = getState();
    return nextUnplayed(s.messages[m.chat_id] ?? [], m.id, s.me?.handle ?? "");
  },
});

inbox.setDescriber((m) => {
  const s = getState();
  return describeMessage(m, s.chats, s.me?.handle ?? "");
});

onSignOut(() => {
  inbox.stop();
  player.stop();
});

const auth = (s: State) => s.auth;
const conn = (s: State) => (s.online ? s.connection : "offline");

export function App() {
  const state = useStore(auth);
  const route = useRoute();
  const inboxOpen = useInbox().phase !== "idle";
  if (state === "checking") return <div class="splash" aria-busy="true" />;
  if (state === "out") return <SignIn />;
  const chatId = route.name === "chat" ? route.chatId : null;
  return (
    <div class={`layout${route.name === "home" ? " at-list" : " at-detail"}`}>
      <ConnectionStatus />
      <ChatList openChatId={chatId} />
      {route.name === "chat" && <ChatView chatId={route.chatId} target={route.messageId} />}
      {route.name === "share" && <Share params={route.params} />}
      {route.name === "starred" && <Starred />}
      {route.name === "settings" && <Settings />}
      {route.name === "home" && (
        <main class="chatview empty">
          <p class="muted">Pick a chat, or start one with “{L.newChat}”.</p>
        </main>
      )}
      {inboxOpen ? <VoiceInbox /> : <MiniPlayer openChatId={chatId} />}
    </div>
  );
}

function ConnectionStatus() {
  const c = useStore(conn);
  // A (re)connect that takes a moment is not worth a flash of yellow.
  const [slow, setSlow] = useState(false);
  useEffect(() => {
    setSlow(false);
    if (c !== "connecting") return;
    const t = setTimeout(() => setSlow(true), 2000);
    return () => clearTimeout(t);
  }, [c]);
  const text = c === "offline" ? `${L.offline}: showing saved chats and messages` : c === "connecting" && slow ? "Connecting…" : "";
  return (
    <div role="status" class={`connection ${c}`}>
      {text}
    </div>
  );
}

