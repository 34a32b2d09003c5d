// The cluster pages: the ring, the stores, the tenants, the bucket's blocks,
// and the rules and alerts. Each reads one JSON API of the process serving
// the UI and refreshes itself.
import { h, replace, svg, formatAgo, formatBytes, formatDuration, formatNumber, formatTime } from "./dom";
import { APIError, get } from "./api";
import { color } from "./graph";

const refreshMs = 10000;

// page fetches path now and every refreshMs, and renders each answer into a
// body below title. A 404 means this process does not serve the data, which
// the page says rather than failing.
function page<T>(root: HTMLElement, title: string, path: string, about: string, render: (data: T, body: HTMLElement) => void): () => void {
  const body = h("div", { class: "page-body" });
  const status = h("span", { class: "refreshed" });
  replace(root, h("h1", null, title, status), h("p", { class: "about" }, about), body);
  let stopped = false;
  let timer = 0;
  const load = async () => {
    try {
      const r = await get<T>(path);
      if (stopped) return;
      render(r.data, body);
      for (const w of r.warnings) body.prepend(h("div", { class: "warning" }, "Warning: ", w));
      status.textContent = ` updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (stopped) return;
      if (e instanceof APIError && e.status === 404) {
        replace(body, h("div", { class: "unavailable", "data-testid": "unavailable" },
          `Not available on this process: it does not serve ${path}. `,
          "Open this page on strata up, or on the component that has the data (see docs/ui.md)."));
        return; // no point in asking again
      }
      replace(body, h("div", { class: "error" }, (e as Error).message));
    }
    if (!stopped) timer = window.setTimeout(load, refreshMs);
  };
  void load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function table(head: string[], rows: (Node | string)[][], attrs: Record<string, string> = {}): HTMLTableElement {
  return h("table", { class: "grid", ...attrs },
    h("thead", null, h("tr", null, ...head.map((c) => h("th", null, c)))),
    h("tbody", null, ...rows.map((r) => h("tr", null, ...r.map((c) => h("td", null, c))))));
}

function badge(text: string, kind: string): HTMLElement {
  return h("span", { class: `badge ${kind}` }, text);
}

function labelChips(m: Record<string, string>): HTMLElement {
  return h("span", { class: "chips" }, ...Object.keys(m).sort().map((k) => h("span", { class: "chip" }, `${k}="${m[k]}"`)));
}

// Ring.

interface RingMember {
  name: string;
  address: string;
  zone: string;
  state: string;
  owned_share: number;
  last_heartbeat?: string;
}
interface RingData {
  rings: { name: string; replication_factor: number; members: RingMember[]; error?: string }[];
}

export function ringPage(root: HTMLElement) {
  return page<RingData>(root, "Ring", "/api/v1/ring", "The receivers' consistent-hash ring: each member's zone, state and share of the hash space it owns first, and when it was last heard from.", (data, body) => {
    replace(body, ...data.rings.map((ring) => h("section", null,
      h("h2", null, `${ring.name} ring · replication factor ${ring.replication_factor} · ${ring.members.length} members`),
      ring.error ? h("div", { class: "error" }, ring.error) : null,
      table(["member", "address", "zone", "state", "owned share", "last heartbeat"], ring.members.map((m) => [
        m.name,
        m.address,
        m.zone || "-",
        badge(m.state.toLowerCase(), m.state.toLowerCase() === "active" ? "ok" : "bad"),
        h("span", { class: "share" }, h("span", { class: "bar", style: `width:${(m.owned_share * 100).toFixed(1)}%` }), `${(m.owned_share * 100).toFixed(1)}%`),
        m.last_heartbeat ? formatAgo(Date.parse(m.last_heartbeat)) : "-",
      ]), { "data-testid": "ring" }),
    )));
  });
}

// Stores.

interface StoreStatus {
  address: string;
  component_type: string;
  healthy: boolean;
  store_api: boolean;
  min_time: number;
  max_time: number;
  label_sets: Record<string, string>[];
  last_check?: string;
  last_success?: string;
  last_error?: string;
}

export function storesPage(root: HTMLElement) {
  return page<{ stores: StoreStatus[] }>(root, "Stores", "/api/v1/stores", "The Store API endpoints the querier fans out to: receivers, store gateways, rulers. Unhealthy endpoints are skipped by queries.", (data, body) => {
    const healthy = data.stores.filter((s) => s.healthy).length;
    replace(body,
      h("p", null, `${healthy} of ${data.stores.length} endpoints healthy.`),
      table(["endpoint", "type", "health", "last check", "time range", "label sets"], data.stores.map((s) => [
        s.address,
        s.component_type || "-",
        h("span", null, badge(s.healthy ? "healthy" : "unhealthy", s.healthy ? "ok" : "bad"), s.last_error ? h("div", { class: "small error-text" }, s.last_error) : null),
        s.last_check ? formatAgo(Date.parse(s.last_check)) : "never",
        s.min_time > s.max_time ? "no data yet" : `${formatTime(s.min_time)} … ${s.max_time >= 9e15 ? "now" : formatTime(s.max_time)}`,
        h("div", null, ...(s.label_sets.length ? s.label_sets.map((ls) => h("div", null, labelChips(ls))) : ["-"])),
      ]), { "data-testid": "stores" }));
  });
}

// Tenants.

interface Tenant {
  tenant: string;
  requests: number;
  samples_received: number;
  bytes_received: number;
  samples_discarded: Record<string, number>;
  active_series: number;
  limits: { ingestion_rate: number; ingestion_burst: number; max_active_series: number; [k: string]: unknown };
}

export function tenantsPage(root: HTMLElement) {
  // The ingestion rate is the change of samples received between refreshes.
  let prev: { at: number; samples: Map<string, number> } | null = null;
  return page<Tenant[]>(root, "Tenants", "/api/v1/tenants", "Every tenant that wrote since the receivers started: active series, ingestion rate (measured between refreshes), samples dropped by a limit, and its limits.", (data, body) => {
    const now = Date.now();
    const rate = (t: Tenant) => {
      const before = prev?.samples.get(t.tenant);
      if (!prev || before === undefined || now <= prev.at) return "measuring…";
      return `${formatNumber(Number(((t.samples_received - before) / ((now - prev.at) / 1000)).toFixed(1)))}/s`;
    };
    const limit = (v: number) => (v ? formatNumber(v) : "unlimited");
    replace(body, data.length === 0 ? h("p", { class: "empty" }, "No tenant has written yet.") : table(
      ["tenant", "active series", "ingestion rate", "samples received", "requests", "bytes received", "limits hit (samples dropped)", "limits"],
      data.map((t) => {
        const hits = Object.entries(t.samples_discarded ?? {}).filter(([, n]) => n > 0);
        return [
          t.tenant,
          formatNumber(t.active_series),
          rate(t),
          formatNumber(t.samples_received),
          formatNumber(t.requests),
          formatBytes(t.bytes_received),
          hits.length ? h("div", null, ...hits.map(([why, n]) => h("div", null, badge(why, "bad"), ` ${formatNumber(n)}`))) : badge("none", "ok"),
          h("div", { class: "small" }, `rate ${limit(t.limits.ingestion_rate)}/s, burst ${limit(t.limits.ingestion_burst)}, active series ${limit(t.limits.max_active_series)}`),
        ];
      }), { "data-testid": "tenants" }));
    prev = { at: now, samples: new Map(data.map((t) => [t.tenant, t.samples_received])) };
  });
}

// Blocks.

interface BlockInfo {
  ulid: string;
  tenant?: string;
  labels: Record<string, string>;
  resolution: number;
  level: number;
  min_time: string;
  max_time: string;
  series: number;
  samples: number;
  chunks: number;
  source: string;
  marks?: string[];
  upload_time?: string;
}

function resolutionName(ms: number): string {
  return ms === 0 ? "raw" : formatDuration(ms);
}

export function blocksPage(root: HTMLElement) {
  const details = h("div", { class: "block-details", "data-testid": "block-details" });
  let selected = "";
  return page<{ blocks: BlockInfo[]; tenant_label: string }>(root, "Blocks", "/api/v1/blocks", "The bucket's blocks on a timeline, one row per tenant, resolution and compaction level. Click a block for its details.", (data, body) => {
    if (data.blocks.length === 0) {
      replace(body, h("p", { class: "empty", "data-testid": "blocks-empty" }, "The bucket holds no blocks yet: receivers ship a block every two hours."), details);
      return;
    }
    // Rows: tenant, then resolution, then level.
    const rows = new Map<string, BlockInfo[]>();
    for (const b of data.blocks) {
      const key = `${b.tenant || "(no tenant)"}\x00${String(b.resolution).padStart(12, "0")}\x00${String(b.level).padStart(4, "0")}`;
      if (!rows.has(key)) rows.set(key, []);
      rows.get(key)!.push(b);
    }
    const keys = [...rows.keys()].sort();
    let min = Infinity;
    let max = -Infinity;
    for (const b of data.blocks) {
      min = Math.min(min, Date.parse(b.min_time));
      max = Math.max(max, Date.parse(b.max_time));
    }
    const labelW = 260;
    const width = Math.max(600, body.clientWidth || 900);
    const rowH = 22;
    const plotW = width - labelW - 10;
    const x = (t: number) => labelW + ((t - min) / Math.max(1, max - min)) * plotW;
    const height = keys.length * rowH + 30;
    const chart = svg("svg", { width, height, class: "timeline", "data-testid": "blocks-timeline" });
    // Time axis: five ticks.
    for (let i = 0; i <= 4; i++) {
      const t = min + ((max - min) * i) / 4;
      const tx = x(t);
      chart.appendChild(svg("line", { x1: tx, x2: tx, y1: 0, y2: height - 20, class: "tick" }));
      const label = svg("text", { x: Math.min(tx, width - 150), y: height - 5, class: "axis" });
      label.textContent = formatTime(t);
      chart.appendChild(label);
    }
    keys.forEach((key, row) => {
      const [tenant, res, level] = key.split("\x00");
      const y = row * rowH;
      const label = svg("text", { x: 4, y: y + 15, class: "row-label" });
      label.textContent = `${tenant} · ${resolutionName(Number(res))} · level ${Number(level)}`;
      chart.appendChild(label);
      for (const b of rows.get(key)!) {
        const x0 = x(Date.parse(b.min_time));
        const w = Math.max(2, x(Date.parse(b.max_time)) - x0 - 1);
        const rect = svg("rect", {
          x: x0, y: y + 3, width: w, height: rowH - 6, rx: 2,
          fill: color(Number(res) === 0 ? 0 : Number(res) < 3600000 ? 3 : 6, b.marks?.length ? 0.35 : 0.85),
          class: "block" + (b.ulid === selected ? " selected" : ""),
          "data-ulid": b.ulid,
        });
        const title = svg("title");
        title.textContent = `${b.ulid}\n${formatTime(Date.parse(b.min_time))} … ${formatTime(Date.parse(b.max_time))}\n${formatNumber(b.series)} series, ${formatNumber(b.samples)} samples`;
        rect.appendChild(title);
        rect.addEventListener("click", () => {
          selected = b.ulid;
          chart.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
          rect.classList.add("selected");
          void showBlock(b, details);
        });
        chart.appendChild(rect);
      }
    });
    const tenants = new Set(data.blocks.map((b) => b.tenant));
    replace(body,
      h("p", null, `${data.blocks.length} blocks of ${tenants.size} tenants, ${formatTime(min)} … ${formatTime(max)}. Faded blocks carry a mark (deletion, no-compact, no-downsample).`),
      h("div", { class: "timeline-wrap" }, chart),
      details);
  });
}

async function showBlock(b: BlockInfo, el: HTMLElement) {
  const summary = table(["field", "value"], [
    ["ULID", b.ulid],
    ["tenant", b.tenant || "-"],
    ["external labels", labelChips(b.labels ?? {})],
    ["time range", `${formatTime(Date.parse(b.min_time))} … ${formatTime(Date.parse(b.max_time))} (${formatDuration(Date.parse(b.max_time) - Date.parse(b.min_time))})`],
    ["resolution", resolutionName(b.resolution)],
    ["compaction level", String(b.level)],
    ["series / samples / chunks", `${formatNumber(b.series)} / ${formatNumber(b.samples)} / ${formatNumber(b.chunks)}`],
    ["source", b.source || "-"],
    ["marks", b.marks?.join(", ") || "none"],
    ["uploaded", b.upload_time ? formatTime(Date.parse(b.upload_time)) : "-"],
  ]);
  const meta = h("pre", { class: "meta" }, "Loading meta.json…");
  replace(el, h("h2", null, `Block ${b.ulid}`), summary, h("h3", null, "meta.json"), meta);
  try {
    const r = await get<{ meta: unknown }>(`/api/v1/blocks/${b.ulid}`);
    meta.textContent = JSON.stringify(r.data.meta, null, 2);
  } catch (e) {
    meta.textContent = (e as Error).message;
  }
}

// Rules and alerts.

interface Rule {
  name: string;
  query: string;
  type: string;
  health: string;
  lastError?: string;
  state?: string;
  duration?: number;
  labels?: Record<string, string>;
  evaluationTime?: number;
  lastEvaluation?: string;
  alerts?: Alert[];
}
interface Alert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  state: string;
  activeAt?: string;
  value?: string;
}

function stateBadge(state: string): HTMLElement {
  return badge(state, state === "firing" ? "bad" : state === "pending" ? "warn" : "ok");
}

export function rulesPage(root: HTMLElement) {
  return page<{ groups: { name: string; file: string; interval: number; lastEvaluation?: string; evaluationTime?: number; rules: Rule[] }[] }>(root, "Rules", "/api/v1/rules", "The rulers' rule groups, their rules, health and last evaluation.", (data, body) => {
    if (!data.groups.length) {
      replace(body, h("p", { class: "empty" }, "No rule groups."));
      return;
    }
    replace(body, ...data.groups.map((g) => h("section", { "data-testid": "rule-group" },
      h("h2", null, `${g.name} `, h("span", { class: "small" }, `${g.file} · every ${formatDuration((g.interval ?? 0) * 1000)} · last evaluated ${g.lastEvaluation ? formatAgo(Date.parse(g.lastEvaluation)) : "never"}`)),
      table(["rule", "health", "last evaluation", "took"], g.rules.map((r) => [
        h("div", null, h("div", { class: "rule-name" }, `${r.type === "alerting" ? "alert" : "record"}: ${r.name}`), h("code", null, r.query),
          r.labels && Object.keys(r.labels).length ? h("div", null, labelChips(r.labels)) : null),
        h("div", null, badge(r.health, r.health === "ok" ? "ok" : r.health === "unknown" ? "warn" : "bad"), r.state ? [" ", stateBadge(r.state)] : null, r.lastError ? h("div", { class: "small error-text" }, r.lastError) : null),
        r.lastEvaluation ? formatAgo(Date.parse(r.lastEvaluation)) : "never",
        r.evaluationTime !== undefined ? formatDuration(r.evaluationTime * 1000) : "-",
      ])),
    )));
  });
}

export function alertsPage(root: HTMLElement) {
  return page<{ alerts: Alert[] }>(root, "Alerts", "/api/v1/alerts", "Pending and firing alerts of every ruler.", (data, body) => {
    if (!data.alerts.length) {
      replace(body, h("p", { class: "empty", "data-testid": "alerts-empty" }, "No alerts are pending or firing."));
      return;
    }
    replace(body, table(["alert", "state", "active since", "value", "annotations"], data.alerts.map((a) => [
      h("div", null, h("div", { class: "rule-name" }, a.labels.alertname ?? ""), labelChips(a.labels)),
      stateBadge(a.state),
      a.activeAt ? formatAgo(Date.parse(a.activeAt)) : "-",
      a.value ?? "-",
      h("div", { class: "small" }, ...Object.entries(a.annotations ?? {}).map(([k, v]) => h("div", null, `${k}: ${v}`))),
    ]), { "data-testid": "alerts" }));
  });
}

