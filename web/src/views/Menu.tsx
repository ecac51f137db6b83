import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "./Icon";

/** A button that opens a menu (WAI-ARIA menu button): focus moves into the menu, the arrows
 * move between items, Escape or a tap outside closes it and focus returns to the button. It
 * opens upwards in the lower half of the screen, so it is never cut off.
 *
 * `children(close)` renders the items; `close()` closes the menu. `page` changes when the
 * items are swapped for others (a submenu): the first one is focused again. */
export function MenuButton(p: {
  label: string;
  icon: string;
  iconSize?: number;
  class?: string;
  /** The wrapper's class: "menu-wrap" (default) pins it to its bubble's corner. */
  wrap?: string;
  page?: unknown;
  onClose?: () => void;
  children: (close: () => void) => ComponentChildren;
}) {
  const [open, setOpen] = useState(false);
  const [up, setUp] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);

  function close() {
    setOpen(false);
    p.onClose?.();
    buttonRef.current?.focus();
  }

  useEffect(() => {
    if (!open) return;
    menuRef.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
    const outside = (e: Event) => {
      if (!menuRef.current?.contains(e.target as Node)) {
        setOpen(false);
        p.onClose?.();
      }
    };
    document.addEventListener("pointerdown", outside);
    return () => document.removeEventListener("pointerdown", outside);
  }, [open, p.page]);

  function onKey(e: KeyboardEvent) {
    const items = [...(menuRef.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const i = items.indexOf(document.activeElement as HTMLElement);
    if (e.key === "ArrowDown") items[(i + 1) % items.length]?.focus();
    else if (e.key === "ArrowUp") items[(i - 1 + items.length) % items.length]?.focus();
    else if (e.key === "Escape") close();
    else return;
    e.preventDefault();
  }

  return (
    <div class={p.wrap ?? "menu-wrap"}>
      <button
        ref={buttonRef}
        type="button"
        class={p.class ?? "icon menu-button"}
        aria-label={p.label}
        title={p.label}
        aria-haspopup="menu"
        aria-expanded={open}
        onKeyDown={(e) => {
          if (e.key === "Escape" && open) {
            e.preventDefault();
            close();
          }
        }}
        onClick={() => {
          const top = buttonRef.current?.getBoundingClientRect().top ?? 0;
          setUp(top > window.innerHeight / 2);
          if (open) close();
          else setOpen(true);
        }}
      >
        <Icon name={p.icon} size={p.iconSize} />
      </button>
      {open && (
        <div role="menu" class={up ? "menu up" : "menu"} ref={menuRef} onKeyDown={onKey} aria-label={p.label}>
          {p.children(close)}
        </div>
      )}
    </div>
  );
}
