// The query page: a PromQL editor, a graph and a table of the result, strata's
// query toggles, and everything about the answer. Its state lives in the URL,
// so a URL shares exactly what is on screen.
import { EditorView } from "@codemirror/view";
import { h, replace, formatBytes, formatDuration, formatNumber, formatTime, labelsString, parseDuration } from "./dom";
import { APIError, Response, post } from "./api";
import { newEditor } from "./editor";
import { drawGraph, Graph, RangeSeries } from "./graph";

// QueryState is what the URL holds.
interface QueryState {
  expr: string;
  tab: "graph" | "table";
  range: string; // a Prometheus duration
  end: string; // RFC 3339 or empty for now
  step: string; // seconds, empty for automatic
  stacked: boolean;
  dedup: boolean;
  partial: boolean;
  resolution: string; // max_source_resolution: "", auto, raw, 5m, 1h
}

function readState(params: URLSearchParams): QueryState {
  const flag = (name: string, def: boolean) => (params.has(name) ? params.get(name) === "1" : def);
  return {
    expr: params.get("expr") ?? "",
    tab: params.get("tab") === "table" ? "table" : "graph",
    range: params.get("range") || "1h",
    end: params.get("end") ?? "",
    step: params.get("step") ?? "",
    stacked: flag("stacked", false),
    dedup: flag("dedup", true),
    partial: flag("partial_response", true),
    resolution: params.get("max_source_resolution") ?? "",
  };
}

function writeState(s: QueryState): string {
  const p = new URLSearchParams();
  p.set("expr", s.expr);
  p.set("tab", s.tab);
  p.set("range", s.range);
  if (s.end) p.set("end", s.end);
  if (s.step) p.set("step", s.step);
  if (s.stacked) p.set("stacked", "1");
  if (!s.dedup) p.set("dedup", "0");
  if (!s.partial) p.set("partial_response", "0");
  if (s.resolution) p.set("max_source_resolution", s.resolution);
  return p.toString();
}

// maxPoints is what automatic steps aim at per series; the API refuses more
// than 11000.
const autoPoints = 250;
const maxRows = 10000;

// QueryPage renders the query page into root. destroy stops what is running.
export function queryPage(root: HTMLElement): () => void {
  const state = readState(new URLSearchParams(location.search));
  let graph: Graph | null = null;
  let inflight: AbortController | null = null;

  const info = h("div", { class: "response-info", "data-testid": "response-info" });
  const messages = h("div", { class: "messages" });
  const output = h("div", { class: "output", "data-testid": "output" });
  const editorEl = h("div", { class: "editor" });

  const input = (name: string, value: string, attrs: Record<string, string> = {}) =>
    h("input", { type: "text", name, value, ...attrs, onchange: () => run() }) as HTMLInputElement;
  const check = (label: string, name: string, value: boolean, title: string) =>
    h("label", { class: "check", title }, h("input", { type: "checkbox", name, checked: value, onchange: () => run() }), label);

  const rangeIn = input("range", state.range, { size: "6", title: "Range, as a Prometheus duration: 5m, 1h, 2d" });
  const endIn = input("end", state.end, { size: "22", placeholder: "now", title: "End of the range (and time of the table), RFC 3339; empty for now" });
  const stepIn = input("step", state.step, { size: "6", placeholder: "auto", title: "Resolution step in seconds; empty picks one for about 250 points" });
  const stackedIn = check("stacked", "stacked", state.stacked, "Stack the series");
  const dedupIn = check("dedup", "dedup", state.dedup, "Merge replicas that differ only in their replica labels");
  const partialIn = check("partial response", "partial_response", state.partial, "Answer with the stores that responded, with a warning, when some fail");
  const resIn = h(
    "select",
    { name: "max_source_resolution", title: "Coarsest downsampled data the query may read", onchange: () => run() },
    ...[["", "resolution: default"], ["auto", "auto"], ["raw", "raw only"], ["5m", "up to 5m"], ["1h", "up to 1h"]].map(([v, l]) =>
      h("option", { value: v, selected: v === state.resolution }, l),
    ),
  ) as HTMLSelectElement;

  const tabButton = (tab: "graph" | "table", label: string) =>
    h("button", { type: "button", class: "tab", "data-tab": tab, onclick: () => { state.tab = tab; run(); } }, label);
  const tabs = h("div", { class: "tabs" }, tabButton("graph", "Graph"), tabButton("table", "Table"));
  const runButton = h("button", { type: "button", class: "primary", "data-testid": "execute", onclick: () => run() }, "Execute");

  const editor: EditorView = newEditor(editorEl, state.expr, () => run());

  replace(
    root,
    h("div", { class: "query-bar" }, editorEl, runButton),
    h("div", { class: "controls" }, tabs,
      h("span", { class: "graph-only" }, h("label", null, "range ", rangeIn), h("label", null, "step ", stepIn), stackedIn),
      h("label", null, "end ", endIn), dedupIn, partialIn, resIn),
    info,
    messages,
    output,
  );

  function collect() {
    state.expr = editor.state.doc.toString();
    state.range = rangeIn.value.trim() || "1h";
    state.end = endIn.value.trim();
    state.step = stepIn.value.trim();
    state.stacked = (stackedIn.querySelector("input") as HTMLInputElement).checked;
    state.dedup = (dedupIn.querySelector("input") as HTMLInputElement).checked;
    state.partial = (partialIn.querySelector("input") as HTMLInputElement).checked;
    state.resolution = resIn.value;
  }

  function showTabs() {
    for (const b of tabs.querySelectorAll("button")) b.classList.toggle("active", b.dataset.tab === state.tab);
    root.classList.toggle("table-mode", state.tab === "table");
  }

  function strataParams(): URLSearchParams {
    const p = new URLSearchParams();
    p.set("query", state.expr);
    p.set("dedup", String(state.dedup));
    p.set("partial_response", String(state.partial));
    if (state.resolution) p.set("max_source_resolution", state.resolution);
    return p;
  }

  function error(msg: string) {
    replace(messages, h("div", { class: "error", "data-testid": "error" }, msg));
  }

  async function run() {
    collect();
    showTabs();
    const url = location.pathname + "?" + writeState(state);
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
    inflight?.abort();
    graph?.destroy();
    graph = null;
    replace(messages);
    replace(info);
    if (!state.expr.trim()) {
      replace(output, h("p", { class: "empty" }, "Enter a PromQL expression, such as up or rate(strata_receive_requests_total[5m])."));
      return;
    }
    const ctl = new AbortController();
    inflight = ctl;
    let end = Date.now() / 1000;
    if (state.end) {
      const t = Date.parse(state.end);
      if (isNaN(t)) return error(`end ${JSON.stringify(state.end)} is not an RFC 3339 time`);
      end = t / 1000;
    }
    replace(output, h("p", { class: "loading" }, "Loading…"));
    try {
      if (state.tab === "graph") await runRange(end, ctl.signal);
      else await runInstant(end, ctl.signal);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      replace(output);
      error(e instanceof APIError && e.status ? `${e.type || "error"} (${e.status}): ${e.message}` : (e as Error).message);
    }
  }

  async function runRange(end: number, signal: AbortSignal) {
    const range = parseDuration(state.range) / 1000;
    if (!(range > 0)) return error(`range ${JSON.stringify(state.range)} is not a duration such as 1h`);
    let step = state.step ? Number(state.step) : Math.max(1, Math.round(range / autoPoints));
    if (!(step > 0)) return error(`step ${JSON.stringify(state.step)} is not a number of seconds`);
    step = Math.max(step, Math.ceil(range / 11000));
    const start = end - range;
    const p = strataParams();
    p.set("start", String(start));
    p.set("end", String(end));
    p.set("step", String(step));
    const r = await post<{ resultType: string; result: RangeSeries[] }>("/api/v1/query_range", p, signal);
    showInfo(r, r.data.result.length);
    if (r.data.result.length === 0) {
      replace(output, h("p", { class: "empty" }, "No data."));
      return;
    }
    const el = h("div", { class: "graph", "data-testid": "graph" });
    replace(output, el);
    graph = await drawGraph(el, r.data.result, { start, end, step, stacked: state.stacked }, signal);
    if (graph) el.dataset.rendered = "true";
  }

  async function runInstant(time: number, signal: AbortSignal) {
    const p = strataParams();
    p.set("time", String(time));
    const r = await post<{ resultType: string; result: unknown }>("/api/v1/query", p, signal);
    const { resultType, result } = r.data;
    const rows: HTMLElement[] = [];
    let count = 0;
    if (resultType === "vector" || resultType === "matrix") {
      const series = result as { metric: Record<string, string>; value?: [number, string]; values?: [number, string][]; histogram?: [number, { count: string; sum: string }] }[];
      count = series.length;
      for (const s of series.slice(0, maxRows)) {
        let value: string | HTMLElement;
        if (s.value) value = s.value[1];
        else if (s.histogram) value = `histogram: count ${s.histogram[1].count}, sum ${s.histogram[1].sum}`;
        else value = h("div", { class: "values" }, ...(s.values ?? []).map(([t, v]) => h("div", null, `${v} @${t}`)));
        rows.push(h("tr", null, h("td", { class: "series" }, labelsString(s.metric)), h("td", { class: "value" }, value)));
      }
    } else {
      const [t, v] = result as [number, string];
      count = 1;
      rows.push(h("tr", null, h("td", { class: "series" }, `${resultType} @${formatTime(t * 1000)}`), h("td", { class: "value" }, v)));
    }
    showInfo(r, count);
    if (rows.length === 0) {
      replace(output, h("p", { class: "empty" }, "No data."));
      return;
    }
    replace(
      output,
      count > maxRows ? h("p", { class: "warning" }, `Showing the first ${maxRows} of ${count} series.`) : null,
      h("table", { class: "result", "data-testid": "table" }, h("tbody", null, ...rows)),
    );
  }

  function showInfo(r: Response<unknown>, series: number) {
    const parts: (string | HTMLElement)[] = [
      `${formatNumber(series)} series`,
      `${formatDuration(r.millis)}`,
      formatBytes(r.bytes),
    ];
    // Whatever else the answer carries, a query frontend's cache statistics
    // for example, shown as it is.
    for (const [k, v] of Object.entries(r.headers)) parts.push(h("span", { class: "extra", title: "response header" }, `${k}: ${v}`));
    for (const [k, v] of Object.entries(r.extra)) parts.push(h("span", { class: "extra", title: "response field" }, `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`));
    replace(info, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p])));
    replace(
      messages,
      ...r.warnings.map((w) => h("div", { class: "warning", "data-testid": "warning" }, "Warning: ", w)),
      ...r.infos.map((w) => h("div", { class: "info" }, "Info: ", w)),
    );
  }

  showTabs();
  void run();
  editor.focus();
  return () => {
    inflight?.abort();
    graph?.destroy();
    editor.destroy();
  };
}
