// Playback goes on when you switch chats: a mini-player shows what plays elsewhere.
import { useEffect, useState } from "preact/hooks";
import { player } from "../audio/player";
import { chatTitle, clock } from "../state/model";
import { getState } from "../state/store";
import { navigate } from "../router";
import { Icon } from "./Icon";

export function MiniPlayer({ openChatId }: { openChatId: string | null }) {
  const [p, setP] = useState(player.state);
  useEffect(() => player.subscribe(() => setP(player.state)), []);
  const m = p.message;
  if (!m || m.chat_id === openChatId) return null;
  const s = getState();
  const chat = s.chats.find((c) => c.id === m.chat_id);
  const who = chat?.members.find((x) => x.handle === m.sender)?.display_name ?? m.sender;
  return (
    <section class="miniplayer" aria-label="Now playing">
      <button type="button" class="icon" aria-label={p.playing ? "Pause" : "Play"} onClick={() => player.toggle(m)}>
        <Icon name={p.playing ? "pause" : "play"} />
      </button>
      <button type="button" class="link grow" onClick={() => navigate(`/chats/${m.chat_id}`)}>
        {chat && chat.kind !== "direct" ? `${who} · ${chatTitle(chat, s.me?.handle ?? "")}` : who} ·{" "}
        {clock(p.position)} / {clock(p.duration)}
      </button>
      <button type="button" class="icon" aria-label="Close player" onClick={() => player.stop()}>
        <Icon name="close" />
      </button>
    </section>
  );
}
