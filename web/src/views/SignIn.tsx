import { useEffect, useState } from "preact/hooks";
import { api, type Registration } from "../api/http";
import { L } from "../labels";
import { logIn, register } from "../state/store";

export function SignIn() {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [registration, setRegistration] = useState<Registration>("invite");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.authConfig().then((c) => setRegistration(c.registration), () => {});
    // A share that arrived before signing in (UI.md "Sharing in").
    if (new URLSearchParams(location.search).get("shared") === "login") {
      setError("Log in, then share the file again.");
    }
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => String(form.get(name) ?? "").trim();
    setBusy(true);
    setError("");
    try {
      if (mode === "login") {
        await logIn(field("handle"), String(form.get("password") ?? ""));
      } else {
        await register({
          handle: field("handle"),
          password: String(form.get("password") ?? ""),
          display_name: field("display_name") || undefined,
          invite: field("invite") || undefined,
        });
      }
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const registering = mode === "register";
  return (
    <main class="signin">
      <div class="signin-card">
        <img src="/icons/icon-192.png" alt="" width={72} height={72} class="signin-logo" />
        <h1>voxbox</h1>
        <p class="muted">Voice messages on a server you own.</p>
        <form onSubmit={submit} noValidate>
          <label>
            {L.handle}
            <input name="handle" autocomplete="username" autocapitalize="none" required />
          </label>
          {registering && (
            <label>
              {L.displayName}
              <input name="display_name" autocomplete="name" />
            </label>
          )}
          <label>
            {L.password}
            <input
              name="password"
              type="password"
              autocomplete={registering ? "new-password" : "current-password"}
              required
            />
          </label>
          {registering && registration === "invite" && (
            <label>
              {L.inviteCode}
              <input name="invite" autocomplete="off" />
            </label>
          )}
          {error && (
            <p role="alert" class="error">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy}>
            {registering ? L.createAccount : L.logIn}
          </button>
        </form>
        {registering ? (
          <button type="button" class="link" onClick={() => (setMode("login"), setError(""))}>
            I have an account: log in
          </button>
        ) : (
          registration !== "closed" && (
            <button type="button" class="link" onClick={() => (setMode("register"), setError(""))}>
              {L.createAccount}
            </button>
          )
        )}
      </div>
    </main>
  );
}
