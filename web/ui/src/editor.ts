// The PromQL editor: CodeMirror with PromQL highlighting and completion of
// metric names, label names and label values from the query API.
import { EditorState, Prec } from "@codemirror/state";
import { EditorView, keymap, placeholder } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, insertNewline } from "@codemirror/commands";
import { StreamLanguage, HighlightStyle, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { autocompletion, closeBrackets, completionStatus, CompletionContext, CompletionResult, Completion } from "@codemirror/autocomplete";
import { tags } from "@lezer/highlight";
import { get } from "./api";

// The PromQL vocabulary the editor knows without asking the server.
const aggregations = ["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"];
const keywords = ["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "atan2"];
const functions = [
  "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
  "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
  "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
  "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
  "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time",
  "minute", "month", "predict_linear", "present_over_time", "quantile_over_time", "rate", "resets", "round",
  "scalar", "sgn", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time",
  "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector", "year", "sin", "cos", "tan", "asin",
  "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad", "pi",
];
const words = new Set([...aggregations, ...keywords]);
const funcs = new Set(functions);

interface PromQLState {
  inBraces: boolean;
}

// promql tokenizes PromQL for highlighting; completion has its own, simpler
// view of the text before the cursor.
const promql = StreamLanguage.define<PromQLState>({
  name: "promql",
  startState: () => ({ inBraces: false }),
  token(stream, state) {
    if (stream.eatSpace()) return null;
    if (stream.match(/^#.*/)) return "comment";
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/) || stream.match(/^'(?:[^'\\]|\\.)*'?/) || stream.match(/^`[^`]*`?/)) return "string";
    if (stream.match(/^\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*/)) return "number";
    if (stream.match(/^(?:0x[0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?|Inf|NaN)\b/i)) return "number";
    if (stream.match(/^[{}]/)) {
      state.inBraces = stream.current() === "{";
      return "brace";
    }
    if (stream.match(/^(?:=~|!~|!=|==|<=|>=|[-+*/%^=<>@])/)) return "operator";
    if (stream.match(/^[a-zA-Z_:][\w:.]*/)) {
      const w = stream.current();
      if (state.inBraces) return "labelName";
      if (words.has(w.toLowerCase())) return "keyword";
      if (funcs.has(w) && stream.match(/^\s*\(/, false)) return "function";
      return "variableName";
    }
    stream.next();
    return null;
  },
  tokenTable: { labelName: tags.attributeName, function: tags.function(tags.variableName), brace: tags.brace },
});

const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: "#7c3aed", fontWeight: "600" },
  { tag: tags.function(tags.variableName), color: "#2563eb" },
  { tag: tags.string, color: "#15803d" },
  { tag: tags.number, color: "#b45309" },
  { tag: tags.attributeName, color: "#9f1239" },
  { tag: tags.operator, color: "#475569" },
  { tag: tags.comment, color: "#94a3b8", fontStyle: "italic" },
]);

// Completer fetches and caches what completion offers.
class Completer {
  private metrics: Promise<string[]> | null = null;
  private labelNames = new Map<string, Promise<string[]>>();
  private labelValues = new Map<string, Promise<string[]>>();

  private list(path: string, match?: string): Promise<string[]> {
    const params = new URLSearchParams();
    if (match) params.set("match[]", match);
    // Completion looks at the last day, as dashboards mostly do.
    params.set("start", String(Math.floor(Date.now() / 1000) - 86400));
    return get<string[]>(path, params).then((r) => r.data ?? [], () => []);
  }

  metricNames(): Promise<string[]> {
    this.metrics ??= this.list("/api/v1/label/__name__/values");
    return this.metrics;
  }

  names(metric: string): Promise<string[]> {
    let p = this.labelNames.get(metric);
    if (!p) {
      p = this.list("/api/v1/labels", metric ? `{__name__=${JSON.stringify(metric)}}` : undefined);
      this.labelNames.set(metric, p);
    }
    return p;
  }

  values(metric: string, label: string): Promise<string[]> {
    const key = metric + "\x00" + label;
    let p = this.labelValues.get(key);
    if (!p) {
      p = this.list(`/api/v1/label/${encodeURIComponent(label)}/values`, metric ? `{__name__=${JSON.stringify(metric)}}` : undefined);
      this.labelValues.set(key, p);
    }
    return p;
  }

  async complete(ctx: CompletionContext): Promise<CompletionResult | null> {
    const before = ctx.state.doc.sliceString(0, ctx.pos);
    // Inside an unclosed selector: label names or a label's values.
    const open = before.lastIndexOf("{");
    if (open > before.lastIndexOf("}")) {
      const metric = before.slice(0, open).match(/([a-zA-Z_:][\w:]*)\s*$/)?.[1] ?? "";
      const inner = before.slice(open + 1);
      const value = inner.match(/([a-zA-Z_][\w]*)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/);
      if (value) {
        const vals = await this.values(metric, value[1]);
        return {
          from: ctx.pos - value[2].length,
          options: vals.map((v) => ({ label: v, type: "text", apply: JSON.stringify(v).slice(1, -1) })),
          validFor: /^[^"\\]*$/,
        };
      }
      const name = inner.match(/(?:^|,)\s*([a-zA-Z_]\w*)?$/);
      if (name) {
        const names = await this.names(metric);
        return { from: ctx.pos - (name[1]?.length ?? 0), options: names.filter((n) => n !== "__name__").map((n) => ({ label: n, type: "property" })), validFor: /^\w*$/ };
      }
      return null;
    }
    // Grouping clauses take label names.
    const grouping = before.match(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)$/i);
    if (grouping) {
      const word = grouping[1].match(/([a-zA-Z_]\w*)?$/)?.[1] ?? "";
      const names = await this.names("");
      return { from: ctx.pos - word.length, options: names.map((n) => ({ label: n, type: "property" })), validFor: /^\w*$/ };
    }
    const word = ctx.matchBefore(/[a-zA-Z_:][\w:]*/);
    if (!word && !ctx.explicit) return null;
    // Not in a string or a range.
    if (/"[^"]*$|\[[^\]]*$/.test(before)) return null;
    const metrics = await this.metricNames();
    const options: Completion[] = [
      ...metrics.map((m) => ({ label: m, type: "variable" })),
      ...functions.map((f) => ({ label: f, type: "function", apply: f + "()", boost: -1 })),
      ...aggregations.map((a) => ({ label: a, type: "keyword", boost: -1 })),
      ...keywords.map((k) => ({ label: k, type: "keyword", boost: -2 })),
    ];
    return { from: word ? word.from : ctx.pos, options, validFor: /^[\w:]*$/ };
  }
}

// newEditor creates the editor in parent with doc; onRun is called on Enter
// (Shift-Enter inserts a line break).
export function newEditor(parent: HTMLElement, doc: string, onRun: () => void): EditorView {
  const completer = new Completer();
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        history(),
        bracketMatching(),
        closeBrackets(),
        promql,
        syntaxHighlighting(highlight),
        placeholder("Expression (press Enter to run, Shift-Enter for a new line)"),
        autocompletion({ override: [(ctx) => completer.complete(ctx)], activateOnTyping: true, maxRenderedOptions: 200 }),
        Prec.highest(keymap.of([
          {
            key: "Enter",
            run: (view) => {
              // While the completion list is open, Enter picks from it.
              if (completionStatus(view.state) === "active") return false;
              onRun();
              return true;
            },
          },
          { key: "Shift-Enter", run: insertNewline },
        ])),
        keymap.of([...historyKeymap, ...defaultKeymap]),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ "aria-label": "PromQL expression", "data-testid": "expr" }),
      ],
    }),
  });
}
