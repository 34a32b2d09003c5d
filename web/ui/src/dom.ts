// Small DOM helpers: the UI builds its elements directly, without a framework.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

// h creates an element with attributes (on* keys become listeners, false and
// null leave the attribute out) and children (strings become text).
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === "value" && "value" in el) {
        (el as unknown as HTMLInputElement).value = String(v);
      } else if (k === "checked" && "checked" in el) {
        (el as unknown as HTMLInputElement).checked = Boolean(v);
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

// replace swaps the children of el for children.
export function replace(el: Element, ...children: Child[]) {
  el.textContent = "";
  append(el, children);
}

const SVG = "http://www.w3.org/2000/svg";

// svg creates an SVG element with attributes.
export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Node[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(c);
  return el;
}

// formatTime shows a Unix time in milliseconds as UTC, to the second.
export function formatTime(ms: number): string {
  if (!isFinite(ms)) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// formatAgo shows how long ago a time was.
export function formatAgo(ms: number, now = Date.now()): string {
  if (!ms) return "never";
  return formatDuration(Math.max(0, now - ms)) + " ago";
}

// formatDuration shows a duration in milliseconds the way Prometheus writes
// durations: 1h30m, 15s, 250ms.
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, n] of [["y", 31536000], ["w", 604800], ["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join("");
}

// parseDuration reads a Prometheus duration such as 1h30m into milliseconds,
// or NaN.
export function parseDuration(s: string): number {
  const m = s.trim().match(/^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$/);
  if (!m || s.trim() === "") return NaN;
  const n = (i: number) => (m[i] ? Number(m[i]) : 0);
  return ((((n(2) * 365 + n(4) * 7 + n(6)) * 24 + n(8)) * 60 + n(10)) * 60 + n(12)) * 1000 + n(14);
}

// formatNumber shows a count with thousands separators, or a float compactly.
export function formatNumber(v: number): string {
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Number(v.toPrecision(6)).toString();
}

// formatBytes shows a byte count in binary units.
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

// labelsString writes a label set as PromQL does: name{a="b", ...}.
export function labelsString(m: Record<string, string>): string {
  const name = m.__name__ ?? "";
  const rest = Object.keys(m)
    .filter((k) => k !== "__name__")
    .sort()
    .map((k) => `${k}=${JSON.stringify(m[k])}`);
  return rest.length || !name ? `${name}{${rest.join(", ")}}` : name;
}

// yieldToBrowser lets the browser paint and handle input before the caller
// continues a long piece of work.
export function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
