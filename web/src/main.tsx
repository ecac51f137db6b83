import { render } from "preact";
import "./styles.css";
import { boot } from "./state/store";
import { App } from "./views/App";

render(<App />, document.getElementById("app")!);
void boot();

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    // No offline shell (e.g. a private window): everything else works.
  });
}
