// "Send audio" (UI.md "Sending a file"): name, duration, a preview, then a resumable upload
// with progress and cancel; the server's refusal (too big, not audio) in words.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/http";
import { UploadError, uploadFile } from "../api/tus";
import { L } from "../labels";
import { clock } from "../state/model";
import { newClientId, sendMedia } from "../state/store";
import { Alert, Dialog, errorText } from "./Dialog";

/** The server's reason in a sentence: "memo.png can't be sent: an image, not an audio file." */
function refusal(name: string, e: unknown): string {
  const status = e instanceof ApiError ? e.status : 0;
  if (status === 413 || status === 415 || status === 422) {
    const detail = errorText(e).replace(/\.?$/, ".");
    return `${name} can't be sent: ${detail.charAt(0).toLowerCase()}${detail.slice(1)}`;
  }
  return errorText(e);
}

export function SendAudioDialog(props: { file: File; chatId: string; onClose: () => void }) {
  const { file } = props;
  const [url] = useState(() => URL.createObjectURL(file));
  const [duration, setDuration] = useState<number | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState("");
  const [refused, setRefused] = useState(false);
  const cancel = useRef<(() => void) | null>(null);
  const clientId = useRef(newClientId());

  useEffect(() => () => URL.revokeObjectURL(url), [url]);

  async function send() {
    setError("");
    setProgress(0);
    try {
      const upload = uploadFile(file, { chatId: props.chatId, kind: "audio" }, (sent, total) =>
        setProgress(total ? sent / total : 0),
      );
      cancel.current = upload.cancel;
      const uploadId = await upload.promise;
      cancel.current = null;
      await sendMedia(props.chatId, { kind: "audio", upload_id: uploadId }, clientId.current);
      props.onClose();
    } catch (e) {
      cancel.current = null;
      setProgress(null);
      if (e instanceof UploadError && e.aborted) return;
      setError(refusal(file.name, e));
      // The server's "no" to this file will not change: only a network failure is worth a retry.
      setRefused(e instanceof ApiError && e.status >= 400 && e.status < 500);
    }
  }

  function cancelUpload() {
    cancel.current?.();
    cancel.current = null;
    setProgress(null);
  }

  const size = file.size > 1048576 ? `${(file.size / 1048576).toFixed(1)} MB` : `${Math.ceil(file.size / 1024)} KB`;
  return (
    <Dialog title={L.sendAudio} onClose={() => (cancelUpload(), props.onClose())}>
      <p class="file-name">{file.name}</p>
      <p class="muted">
        {duration !== null ? clock(duration) : "–:––"} · {size}
      </p>
      <audio
        controls
        src={url}
        preload="metadata"
        aria-label={`Preview ${file.name}`}
        onLoadedMetadata={(e) => {
          const d = (e.currentTarget as HTMLAudioElement).duration;
          if (Number.isFinite(d)) setDuration(d);
        }}
      />
      {progress !== null && (
        <div class="progress-row">
          <progress aria-label="Upload progress" max={1} value={progress} />
          <button type="button" onClick={cancelUpload}>
            {L.cancelUpload}
          </button>
        </div>
      )}
      <Alert text={error} />
      <div class="row-end">
        <button type="button" onClick={() => (cancelUpload(), props.onClose())}>
          {L.cancel}
        </button>
        <button type="button" class="primary" onClick={send} disabled={progress !== null || refused}>
          {L.send}
        </button>
      </div>
    </Dialog>
  );
}
