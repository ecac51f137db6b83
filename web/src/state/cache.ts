// What the app shows offline: the chats, recent messages per chat, the last seq and the outbox,
// kept in IndexedDB (never the session: that is an HttpOnly cookie the page cannot read).
const DB = "voxbox";
const STORE = "kv";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let db: Promise<IDBDatabase> | null = null;
const database = (): Promise<IDBDatabase> => (db ??= open());

export async function load<T>(key: string): Promise<T | undefined> {
  try {
    const d = await database();
    return await new Promise((resolve, reject) => {
      const req = d.transaction(STORE).objectStore(STORE).get(key);
      req.onsuccess = () => resolve(req.result as T | undefined);
      req.onerror = () => reject(req.error);
    });
  } catch {
    return undefined; // private mode or storage off: the app still works online
  }
}

export async function save(entries: Record<string, unknown>): Promise<void> {
  try {
    const d = await database();
    await new Promise<void>((resolve, reject) => {
      const tx = d.transaction(STORE, "readwrite");
      const store = tx.objectStore(STORE);
      for (const [key, value] of Object.entries(entries)) store.put(value, key);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  } catch {
    // Best effort: the server has everything.
  }
}

export async function clear(): Promise<void> {
  try {
    const d = await database();
    await new Promise<void>((resolve) => {
      const tx = d.transaction(STORE, "readwrite");
      tx.objectStore(STORE).clear();
      tx.oncomplete = () => resolve();
      tx.onerror = () => resolve();
    });
  } catch {
    // nothing kept
  }
}
