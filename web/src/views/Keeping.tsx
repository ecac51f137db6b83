// Settings' "Keeping" section: back up now, restore from a backup, import a chat from another
// app. Each is a task on the server: started from a dialog, followed with a progress bar, ended
// with a status line (or an alert saying what went wrong).
import { useEffect, useState } from "preact/hooks";
import { api, backupUrl } from "../api/http";
import type { Task } from "../api/types";
import { L } from "../labels";
import { navigate } from "../router";
import { useStore } from "../state/store";
import { Alert, Dialog, DialogButtons, errorText } from "./Dialog";

type Kind = Task["kind"];
const POLL_MS = 500;
const NOUN: Record<Kind, string> = { backup: "Backup", restore: "Restore", import: "Import" };

/** Poll a running task until it ends. */
function useTask(started: Task | null): Task | null {
  const [task, setTask] = useState(started);
  useEffect(() => {
    setTask(started);
    if (!started || started.state !== "running") return;
    let stopped = false;
    const poll = async () => {
      while (!stopped) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        if (stopped) return;
        try {
          const next = await api.task(started.kind, started.id);
          if (stopped) return;
          setTask(next);
          if (next.state !== "running") return;
        } catch {
          // Offline for a moment: keep polling.
        }
      }
    };
    void poll();
    return () => {
      stopped = true;
    };
  }, [started]);
  return task;
}

const plural = (n: number, one: string, many = one + "s") => `${n} ${n === 1 ? one : many}`;

function outcome(task: Task): string {
  const c = task.counts;
  if (task.kind === "backup") {
    return `Backup ready: ${plural(c.messages ?? 0, "message")} in ${plural(c.chats ?? 0, "chat")}, ${(
      (task.size ?? 0) / 1e6
    ).toFixed(1)} MB.`;
  }
  if (task.kind === "restore") {
    const again = c.already_there ? `, ${c.already_there} already there` : "";
    return `Restored ${plural(c.messages ?? 0, "message")} in ${plural(c.chats ?? 0, "chat")}${again}.`;
  }
  const skipped = task.skipped.length ? `; ${plural(task.skipped.length, "line")} skipped` : "";
  const again = c.already_there ? `, ${c.already_there} already there` : "";
  return `Imported ${plural(c.messages ?? 0, "message")}${again}${skipped}.`;
}

/** A task's progress, then its outcome. */
function TaskProgress({ task, label }: { task: Task; label: string }) {
  if (task.state === "running") {
    return (
      <progress aria-label={label} max={1} value={task.progress > 0 ? task.progress : undefined}>
        {Math.round(task.progress * 100)}%
      </progress>
    );
  }
  if (task.state === "failed") return <Alert text={`${NOUN[task.kind]} failed: ${task.error ?? ""}`} />;
  return (
    <div role="status">
      <p>{outcome(task)}</p>
      {task.kind === "backup" && (
        <a class="button" href={backupUrl(task.id)} download>
          {L.downloadBackup}
        </a>
      )}
      {task.kind === "import" && task.chat_id && (
        <button type="button" onClick={() => navigate(`/chats/${task.chat_id}`)}>
          Open the chat
        </button>
      )}
      {task.skipped.length > 0 && (
        <details>
          <summary>Skipped lines</summary>
          <ul>
            {task.skipped.slice(0, 100).map((s) => (
              <li key={s.line}>
                Line {s.line}: {s.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

export function Keeping() {
  const [open, setOpen] = useState<Kind | null>(null);
  const [started, setStarted] = useState<Task | null>(null);
  const [uploading, setUploading] = useState<Kind | null>(null);
  const task = useTask(started);
  const busy = uploading !== null || task?.state === "running";
  const begin = async (kind: Kind, start: () => Promise<Task>) => {
    setUploading(kind);
    try {
      setStarted(await start());
      setOpen(null);
    } finally {
      setUploading(null);
    }
  };
  return (
    <section aria-label="Keeping">
      <h3 class="section">Keep your messages</h3>
      <p class="muted">
        A backup is one file with all your chats and voice messages, locked with a passphrase. Import brings in a chat
        exported from WhatsApp or Telegram.
      </p>
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => setOpen("backup")}>
          {L.backUpNow}
        </button>
        <button type="button" disabled={busy} onClick={() => setOpen("restore")}>
          {L.restoreFromBackup}
        </button>
        <button type="button" disabled={busy} onClick={() => setOpen("import")}>
          {L.importChat}
        </button>
      </div>
      {uploading && !open && <progress aria-label={`${NOUN[uploading]} upload`} />}
      {task && <TaskProgress task={task} label={`${NOUN[task.kind]} progress`} />}
      {open === "backup" && (
        <BackupDialog onClose={() => setOpen(null)} onStart={(p) => begin("backup", () => api.createBackup(p))} />
      )}
      {open === "restore" && (
        <RestoreDialog
          onClose={() => setOpen(null)}
          onStart={(file, p) => begin("restore", () => api.restoreBackup(file, p))}
        />
      )}
      {open === "import" && (
        <ImportDialog
          onClose={() => setOpen(null)}
          onStart={(file, zone, mapping) => begin("import", () => api.importChat(file, zone, mapping))}
        />
      )}
    </section>
  );
}

function useSubmit(action: () => Promise<void>) {
  const [error, setError] = useState("");
  const [working, setWorking] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setWorking(true);
    setError("");
    try {
      await action();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setWorking(false);
    }
  };
  return { error, working, submit };
}

function BackupDialog(props: { onClose: () => void; onStart: (passphrase: string) => Promise<void> }) {
  const [passphrase, setPassphrase] = useState("");
  const [again, setAgain] = useState("");
  const mismatch = again !== "" && again !== passphrase;
  const { error, working, submit } = useSubmit(() => props.onStart(passphrase));
  return (
    <Dialog title={L.backUpNow} onClose={props.onClose}>
      <form onSubmit={submit}>
        <p class="muted">Nobody can open the backup without this passphrase, not even you. Keep it safe.</p>
        <label>
          {L.passphrase}
          <input
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
            value={passphrase}
            onInput={(e) => setPassphrase(e.currentTarget.value)}
          />
        </label>
        <label>
          {L.repeatPassphrase}
          <input
            type="password"
            required
            autoComplete="new-password"
            value={again}
            onInput={(e) => setAgain(e.currentTarget.value)}
          />
        </label>
        <Alert text={mismatch ? "The passphrases differ." : error} />
        <DialogButtons
          action={L.startBackup}
          onCancel={props.onClose}
          disabled={working || passphrase.length < 8 || again !== passphrase}
        />
      </form>
    </Dialog>
  );
}

function RestoreDialog(props: { onClose: () => void; onStart: (file: File, passphrase: string) => Promise<void> }) {
  const [file, setFile] = useState<File | null>(null);
  const [passphrase, setPassphrase] = useState("");
  const { error, working, submit } = useSubmit(() => props.onStart(file as File, passphrase));
  return (
    <Dialog title={L.restoreFromBackup} onClose={props.onClose}>
      <form onSubmit={submit}>
        <label>
          {L.backupFile}
          <input type="file" accept=".age" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </label>
        <label>
          {L.passphrase}
          <input
            type="password"
            required
            autoComplete="current-password"
            value={passphrase}
            onInput={(e) => setPassphrase(e.currentTarget.value)}
          />
        </label>
        {working && <progress aria-label="Uploading backup" />}
        <Alert text={error} />
        <DialogButtons action={L.restore} onCancel={props.onClose} disabled={working || !file || !passphrase} />
      </form>
    </Dialog>
  );
}

const localZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function ImportDialog(props: {
  onClose: () => void;
  onStart: (file: File, zone: string, mapping: Record<string, string>) => Promise<void>;
}) {
  const [file, setFile] = useState<File | null>(null);
  const [zone, setZone] = useState(localZone());
  const [name, setName] = useState("");
  const me = useStore((s) => s.me);
  const { error, working, submit } = useSubmit(() =>
    props.onStart(file as File, zone.trim() || "UTC", name.trim() && me ? { [name.trim()]: me.handle } : {}),
  );
  return (
    <Dialog title={L.importChat} onClose={props.onClose}>
      <form onSubmit={submit}>
        <p class="muted">
          A WhatsApp "Export chat" file (.zip or .txt), or a Telegram Desktop export (result.json, or a zip of its
          folder).
        </p>
        <label>
          {L.exportFile}
          <input
            type="file"
            accept=".zip,.txt,.json"
            required
            onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
          />
        </label>
        <label>
          {L.timeZone}
          <input value={zone} onInput={(e) => setZone(e.currentTarget.value)} />
        </label>
        <label>
          {L.yourName}
          <input value={name} placeholder="As the export shows you" onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        {working && <progress aria-label="Uploading export" />}
        <Alert text={error} />
        <DialogButtons action={L.importAction} onCancel={props.onClose} disabled={working || !file} />
      </form>
    </Dialog>
  );
}
