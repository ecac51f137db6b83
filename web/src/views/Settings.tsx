import { L } from "../labels";
import { logOut, useStore, type State } from "../state/store";
import { navigate } from "../router";
import { Icon } from "./Icon";

const me = (s: State) => s.me;

export function Settings() {
  const user = useStore(me);
  return (
    <main class="chatview page" aria-label={L.settings}>
      <header class="bar chat-header">
        <button type="button" class="icon back" aria-label="Back to chats" onClick={() => navigate("/")}>
          <Icon name="back" />
        </button>
        <h2>{L.settings}</h2>
      </header>
      <div class="page-body">
        {user && (
          <p>
            Signed in as <strong>{user.display_name}</strong> <span class="muted">@{user.handle}</span>
          </p>
        )}
        <button type="button" class="danger" onClick={() => void logOut().then(() => navigate("/", true))}>
          {L.logOut}
        </button>
      </div>
    </main>
  );
}
