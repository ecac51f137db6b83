// Routes (UI.md): / · /chats/{id}[?m={message_id}] · /share · /starred · /settings. History API, reload-safe.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "home" }
  | { name: "chat"; chatId: string; messageId?: string }
  | { name: "share"; params: URLSearchParams }
  | { name: "starred" }
  | { name: "settings" };

export function parseRoute(pathname: string, search = ""): Route {
  const chat = pathname.match(/^\/chats\/([^/]+)\/?$/);
  if (chat) {
    // /chats/{id}?m={message_id}: the chat opened at one message (from Starred or a search).
    const messageId = new URLSearchParams(search).get("m");
    const route: Route = { name: "chat", chatId: decodeURIComponent(chat[1]) };
    return messageId ? { ...route, messageId } : route;
  }
  if (pathname === "/share") return { name: "share", params: new URLSearchParams(search) };
  if (pathname === "/starred") return { name: "starred" };
  if (pathname === "/settings") return { name: "settings" };
  return { name: "home" };
}

const EVENT = "voxbox:navigate";

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new Event(EVENT));
}

export function useRoute(): Route {
  const read = () => parseRoute(location.pathname, location.search);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    window.addEventListener("popstate", update);
    window.addEventListener(EVENT, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(EVENT, update);
    };
  }, []);
  return route;
}

/** A same-app link: navigates without a page load (keeps playback going). */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href") ?? "/");
}
