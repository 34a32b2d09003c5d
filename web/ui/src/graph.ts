// The time-series graph: uPlot on a canvas, fed by a conversion of the
// query_range answer that runs in time slices so that big answers (hundreds of
// series of a thousand points) never block the page for long.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, formatNumber, formatTime, labelsString, yieldToBrowser } from "./dom";

// RangeSeries is one series of a matrix answer.
export interface RangeSeries {
  metric: Record<string, string>;
  values?: [number, string][];
  histograms?: [number, { count: string; sum: string }][];
}

export interface GraphOptions {
  start: number; // seconds
  end: number;
  step: number;
  stacked: boolean;
}

// sliceBudgetMs is how long one slice of conversion may run before it yields
// to the browser.
const sliceBudgetMs = 8;

// color returns a distinct color for series i.
export function color(i: number, alpha = 1): string {
  const hue = (i * 137.508) % 360;
  return `hsla(${hue.toFixed(1)}, 65%, ${i % 2 ? 40 : 50}%, ${alpha})`;
}

// Graph is a drawn graph; destroy releases it.
export interface Graph {
  destroy(): void;
}

// drawGraph converts series to uPlot's columns and draws them in el. It
// checks signal between slices and gives up quietly when it is aborted. The
// number of slices and the longest one are recorded on el's dataset
// (renderSlices, renderLongestSliceMs) for the browser tests.
export async function drawGraph(el: HTMLElement, series: RangeSeries[], opts: GraphOptions, signal: AbortSignal): Promise<Graph | null> {
  const { start, end, step } = opts;
  const n = Math.max(1, Math.floor((end - start) / step + 1e-9) + 1);
  const xs = new Array<number>(n);
  for (let i = 0; i < n; i++) xs[i] = start + i * step;

  let slices = 1;
  let longest = 0;
  let sliceStart = performance.now();
  const maybeYield = async () => {
    const now = performance.now();
    if (now - sliceStart < sliceBudgetMs) return;
    longest = Math.max(longest, now - sliceStart);
    await yieldToBrowser();
    slices++;
    sliceStart = performance.now();
  };

  const columns: (number | null)[][] = [];
  // isolated tells the series that have a point with no neighbour, which a
  // line alone would not show.
  const isolated: boolean[] = [];
  const acc = opts.stacked ? new Float64Array(n) : null;
  for (const s of series) {
    const ys = new Array<number | null>(n).fill(null);
    for (const [t, v] of s.values ?? []) {
      const i = Math.round((t - start) / step);
      if (i >= 0 && i < n) ys[i] = parseFloat(v);
    }
    // Native histograms are drawn as their count.
    for (const [t, hist] of s.histograms ?? []) {
      const i = Math.round((t - start) / step);
      if (i >= 0 && i < n) ys[i] = parseFloat(hist.count);
    }
    let lone = false;
    for (let i = 0; i < n && !lone; i++) {
      lone = ys[i] !== null && (i === 0 || ys[i - 1] === null) && (i === n - 1 || ys[i + 1] === null);
    }
    isolated.push(lone);
    if (acc) {
      for (let i = 0; i < n; i++) {
        const v = ys[i];
        if (v !== null && isFinite(v)) {
          acc[i] += v;
          ys[i] = acc[i];
        }
      }
    }
    columns.push(ys);
    await maybeYield();
    if (signal.aborted) return null;
  }
  longest = Math.max(longest, performance.now() - sliceStart);
  el.dataset.renderSlices = String(slices);
  el.dataset.renderLongestSliceMs = longest.toFixed(1);

  const labels = series.map((s) => labelsString(s.metric));
  const many = series.length > 50;
  const chartEl = h("div", { class: "chart" });
  const tooltip = h("div", { class: "tooltip", hidden: true });
  const legend = h("div", { class: "legend", "data-testid": "legend" });
  el.replaceChildren(chartEl, tooltip, legend);

  const width = () => Math.max(300, el.clientWidth);
  const u = new uPlot(
    {
      width: width(),
      height: 360,
      legend: { show: false },
      focus: { alpha: 0.3 },
      cursor: { points: { show: !many }, focus: { prox: 16 }, drag: { x: true, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" } },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 70, values: (_u, vals) => vals.map((v) => formatNumber(v)) },
      ],
      series: [
        {},
        ...labels.map((label, i) => ({
          label,
          stroke: color(i),
          width: 1,
          fill: opts.stacked ? color(i, 0.25) : undefined,
          points: { show: isolated[i] && !many, size: 5 },
          spanGaps: false,
        })),
      ],
      hooks: {
        setCursor: [
          (u) => {
            const idx = u.cursor.idx;
            const top = u.cursor.top ?? -1;
            if (idx == null || top < 0) {
              tooltip.hidden = true;
              return;
            }
            // The series whose line is nearest the pointer at this time.
            let best = -1;
            let bestDist = Infinity;
            for (let i = 1; i < u.series.length; i++) {
              if (!u.series[i].show) continue;
              const v = u.data[i][idx];
              if (v == null) continue;
              const d = Math.abs(u.valToPos(v, "y") - top);
              if (d < bestDist) {
                bestDist = d;
                best = i;
              }
            }
            if (best < 0) {
              tooltip.hidden = true;
              return;
            }
            const raw = columns[best - 1][idx];
            const prev = opts.stacked && best > 1 ? (columns[best - 2][idx] ?? 0) : 0;
            tooltip.replaceChildren(
              h("div", { class: "tt-time" }, formatTime(xs[idx] * 1000)),
              h("div", null, h("span", { class: "swatch", style: `background:${color(best - 1)}` }), labels[best - 1]),
              h("div", { class: "tt-value" }, raw == null ? "-" : formatNumber(raw - prev)),
            );
            tooltip.hidden = false;
            const left = (u.cursor.left ?? 0) + 16;
            tooltip.style.left = `${Math.min(left, width() - 260)}px`;
            tooltip.style.top = `${top + 16}px`;
          },
        ],
      },
    },
    [xs, ...columns] as uPlot.AlignedData,
    chartEl,
  );

  // The legend toggles series; Ctrl or Cmd shows only the clicked one.
  const items: HTMLElement[] = [];
  const frag = document.createDocumentFragment();
  labels.forEach((label, i) => {
    const item = h(
      "div",
      {
        class: "legend-item",
        title: "Click to hide or show; Ctrl-click to show only this one",
        onclick: (e: Event) => {
          const only = (e as MouseEvent).ctrlKey || (e as MouseEvent).metaKey;
          u.batch(() => {
            for (let j = 0; j < labels.length; j++) {
              const show = only ? j === i : j === i ? !u.series[j + 1].show : u.series[j + 1].show;
              if (show !== u.series[j + 1].show) u.setSeries(j + 1, { show });
            }
          });
          items.forEach((it, j) => it.classList.toggle("off", !u.series[j + 1].show));
        },
      },
      h("span", { class: "swatch", style: `background:${color(i)}` }),
      label,
    );
    items.push(item);
    frag.appendChild(item);
  });
  legend.appendChild(frag);

  const onResize = () => u.setSize({ width: width(), height: 360 });
  window.addEventListener("resize", onResize);
  return {
    destroy() {
      window.removeEventListener("resize", onResize);
      u.destroy();
    },
  };
}
