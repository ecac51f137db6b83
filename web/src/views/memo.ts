// A component that re-renders only when a prop changes (by identity): Preact's own memo lives in
// preact/compat, which would add a few kilobytes to the shell for this one function.
import { Component, h, type FunctionComponent } from "preact";

export function memo<P extends object>(render: FunctionComponent<P>): FunctionComponent<P> {
  class Memo extends Component<P> {
    shouldComponentUpdate(next: P): boolean {
      const prev = this.props as Record<string, unknown>;
      const now = next as Record<string, unknown>;
      const keys = new Set([...Object.keys(prev), ...Object.keys(now)]);
      return [...keys].some((k) => prev[k] !== now[k]);
    }
    render(props: P) {
      return h(render, props);
    }
  }
  return Memo as unknown as FunctionComponent<P>;
}
