// Message search (UI.md "Transcripts, search and the voice inbox"): a search landmark with the
// searchbox "Search messages" in the chat list; results in the list "Search results", each a link
// that opens its message, and for a voice or audio message plays it from the matched words.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api/http";
import type { SearchResult } from "../api/types";
import { player } from "../audio/player";
import { L } from "../labels";
import { chatTitle, listTimeLabel } from "../state/model";
import { searchable, splitHighlights } from "../state/search";
import { findMessage, getState } from "../state/store";
import { navigate } from "../router";
import { Alert, errorText } from "./Dialog";
import { Icon } from "./Icon";

/** Typing waits this long for a pause before searching (Enter searches at once). */
export const SEARCH_DEBOUNCE_MS = 250;
const PAGE = 20;

interface Found {
  query: string;
  results: SearchResult[];
  hasMore: boolean;
}

export interface Search {
  query: string;
  /** What is typed; searched after a pause in typing. */
  type: (q: string) => void;
  /** Search now (Enter). */
  submit: () => void;
  clear: () => void;
  more: () => void;
  found: Found | null;
  loading: boolean;
  error: string;
}

/** The search's state: the query, debounced requests (a newer one cancels an older), pages. */
export function useSearch(): Search {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<Found | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState("");
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const request = useRef<AbortController | null>(null);

  // `earlier`: the results shown so far, when asking for the next page (ranked, so by offset).
  const run = useCallback(async (q: string, earlier?: Found) => {
    clearTimeout(timer.current);
    request.current?.abort();
    request.current = null;
    if (!searchable(q)) {
      setFound(null);
      setLoading(false);
      setError("");
      return;
    }
    const controller = new AbortController();
    request.current = controller;
    setLoading(true);
    try {
      const shown = earlier?.results ?? [];
      const page = await api.search({ q: q.trim(), limit: PAGE, offset: shown.length }, controller.signal);
      if (controller.signal.aborted) return;
      const known = new Set(shown.map((r) => r.message_id));
      const fresh = page.results.filter((r) => !known.has(r.message_id));
      setFound({ query: q, results: [...shown, ...fresh], hasMore: page.has_more });
      setError("");
    } catch (e) {
      if (controller.signal.aborted) return;
      setError(errorText(e));
    } finally {
      if (request.current === controller) {
        request.current = null;
        setLoading(false);
      }
    }
  }, []);

  useEffect(
    () => () => {
      clearTimeout(timer.current);
      request.current?.abort();
    },
    [],
  );

  const type = (q: string) => {
    setQuery(q);
    clearTimeout(timer.current);
    if (!searchable(q)) void run(q);
    else timer.current = setTimeout(() => void run(q), SEARCH_DEBOUNCE_MS);
  };
  return {
    query,
    type,
    submit: () => void run(query),
    clear: () => type(""),
    more: () => {
      if (found) void run(found.query, found);
    },
    found: searchable(query) ? found : null,
    loading,
    error: searchable(query) ? error : "",
  };
}

export function SearchForm({ search }: { search: Search }) {
  return (
    <form
      role="search"
      class="search"
      onSubmit={(e) => {
        e.preventDefault();
        search.submit();
      }}
    >
      <Icon name="search" size={20} />
      <input
        type="search"
        aria-label={L.searchMessages}
        placeholder={L.searchMessages}
        value={search.query}
        maxLength={200}
        autocomplete="off"
        enterkeyhint="search"
        onInput={(e) => search.type(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape" && search.query) {
            e.preventDefault();
            search.clear();
          }
        }}
      />
    </form>
  );
}

export function SearchResults({ search, me }: { search: Search; me: string }) {
  const { found, loading, error } = search;
  const n = found?.results.length ?? 0;
  const summary = loading && !found ? "Searching…" : found ? (n ? `${n}${found.hasMore ? "+" : ""} found` : L.noResults) : "";
  return (
    <div class="results-wrap">
      <p role="status" class={found && n === 0 ? "muted no-results" : "visually-hidden"}>
        {summary}
      </p>
      <Alert text={error} />
      {found && n > 0 && (
        <ul aria-label={L.searchResults} class="results">
          {found.results.map((r) => (
            <ResultItem key={r.message_id} result={r} me={me} />
          ))}
        </ul>
      )}
      {found?.hasMore && (
        <button type="button" class="link more" onClick={search.more} disabled={loading}>
          {loading ? "Loading…" : "More results"}
        </button>
      )}
    </div>
  );
}

function ResultItem({ result: r, me }: { result: SearchResult; me: string }) {
  const chat = getState().chats.find((c) => c.id === r.chat_id);
  const sender = r.sender === me ? "You" : (chat?.members.find((x) => x.handle === r.sender)?.display_name ?? r.sender);
  const title = chat ? chatTitle(chat, me) : "";
  return (
    <li>
      <a href={`/chats/${r.chat_id}?m=${r.message_id}`} class="result" onClick={(e) => openResult(e, r)}>
        <span class="result-who">
          {sender}
          {title && title !== sender && <span class="result-chat"> · {title}</span>}
        </span>{" "}
        <span class="result-snippet">
          {r.kind !== "text" && (
            <>
              <Icon name={r.kind === "voice" ? "mic" : "music"} size={16} />
              <span class="visually-hidden">{r.kind === "voice" ? "Voice message" : "Audio message"}: </span>
            </>
          )}
          {splitHighlights(r.snippet, r.highlights ?? []).map((p, i) => (p.mark ? <mark key={i}>{p.text}</mark> : p.text))}
        </span>{" "}
        <time class="chat-time" dateTime={r.created_at}>
          {listTimeLabel(r.created_at)}
        </time>
      </a>
    </li>
  );
}

/** Open the hit's chat at its message; a voice or audio hit plays from where the words were said. */
function openResult(e: MouseEvent, r: SearchResult): void {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(`/chats/${r.chat_id}?m=${r.message_id}`);
  if (r.kind === "text") return;
  findMessage(r.chat_id, r.message_id).then(
    (m) => void player.play(m, (r.offset_ms ?? 0) / 1000),
    () => {}, // gone since (deleted): the chat opens without it
  );
}
