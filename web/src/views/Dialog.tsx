import type { ComponentChildren } from "preact";
import { useEffect, useId, useRef } from "preact/hooks";
import { L } from "../labels";

/** A modal <dialog> named by its heading; Escape or the backdrop closes it. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    // Focus goes back where it was when the dialog closes (it is unmounted, not just closed).
    const opener = document.activeElement as HTMLElement | null;
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => {
      d?.close();
      if (opener?.isConnected) opener.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      onCancel={(e) => (e.preventDefault(), props.onClose())}
      onClick={(e) => e.target === ref.current && props.onClose()}
    >
      <div class="dialog-body">
        <h2 id={id}>{props.title}</h2>
        {props.children}
      </div>
    </dialog>
  );
}

/** The error of a failed action, in words, announced. */
export function Alert({ text }: { text: string }) {
  return text ? (
    <p role="alert" class="error">
      {text}
    </p>
  ) : null;
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A dialog form's buttons: Cancel, then the action. */
export function DialogButtons(props: { action: string; onCancel: () => void; disabled?: boolean }) {
  return (
    <div class="row-end">
      <button type="button" onClick={props.onCancel}>
        {L.cancel}
      </button>
      <button type="submit" class="primary" disabled={props.disabled}>
        {props.action}
      </button>
    </div>
  );
}
