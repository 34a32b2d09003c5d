// strata's web UI: a single page that routes between the query page and the
// cluster pages with the History API. The Go server answers every route with
// index.html, so any URL can be shared or reloaded.
import "./style.css";
import { h, replace } from "./dom";
import { queryPage } from "./query";
import { alertsPage, blocksPage, ringPage, rulesPage, storesPage, tenantsPage } from "./cluster";

type Page = (root: HTMLElement) => () => void;

const routes: { path: string; title: string; page: Page }[] = [
  { path: "/graph", title: "Query", page: queryPage },
  { path: "/cluster/ring", title: "Ring", page: ringPage },
  { path: "/cluster/stores", title: "Stores", page: storesPage },
  { path: "/cluster/tenants", title: "Tenants", page: tenantsPage },
  { path: "/cluster/blocks", title: "Blocks", page: blocksPage },
  { path: "/rules", title: "Rules", page: rulesPage },
  { path: "/alerts", title: "Alerts", page: alertsPage },
];

const nav = document.getElementById("nav")!;
const root = document.getElementById("page")!;
let stop: (() => void) | null = null;

function show() {
  let route = routes.find((r) => r.path === location.pathname);
  if (!route) {
    // / and unknown paths open the query page.
    history.replaceState(null, "", "/graph" + location.search);
    route = routes[0];
  }
  stop?.();
  root.className = "";
  document.title = `${route.title} · strata`;
  for (const a of nav.querySelectorAll("a[data-path]")) a.classList.toggle("active", (a as HTMLElement).dataset.path === route.path);
  stop = route.page(root);
}

function go(path: string) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, "", path);
  show();
}

replace(
  nav,
  h("a", { class: "brand", href: "/graph", onclick: (e: Event) => { e.preventDefault(); go("/graph"); } }, "strata"),
  ...routes.map((r) =>
    h("a", {
      href: r.path,
      "data-path": r.path,
      onclick: (e: Event) => {
        const me = e as MouseEvent;
        if (me.ctrlKey || me.metaKey || me.shiftKey || me.button !== 0) return;
        e.preventDefault();
        go(r.path);
      },
    }, r.title),
  ),
);
window.addEventListener("popstate", show);
show();
