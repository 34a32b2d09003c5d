// Browser test of strata's web UI, driven by test/e2e's TestWebUI against a
// running strata up. It exits non-zero on the first failed check and on any
// console error or uncaught exception of any page.
//
// Environment: STRATA_URL (the UI's base URL), STRATA_TEST_ARTIFACTS (where
// screenshots go), CHROMIUM (the browser binary, default Debian's),
// STRATA_METRIC (a metric name the server holds), STRATA_EXPECT_BLOCK (1 when
// the bucket holds a block).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.STRATA_URL;
const artifacts = process.env.STRATA_TEST_ARTIFACTS;
const metric = process.env.STRATA_METRIC ?? "go_goroutines";
assert.ok(base, "STRATA_URL is not set");
assert.ok(artifacts, "STRATA_TEST_ARTIFACTS is not set");
mkdirSync(artifacts, { recursive: true });

const timeout = 15000;
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
context.setDefaultTimeout(timeout);
const page = await context.newPage();

const problems = [];
// expectHTTPError is set while a check provokes an API error on purpose,
// which Chromium logs as a failed resource.
let expectHTTPError = false;
page.on("console", (m) => {
  if (m.type() !== "error") return;
  if (expectHTTPError && /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
  problems.push(`console error on ${page.url()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`uncaught exception on ${page.url()}: ${e.message}`));
// Nothing may come from anywhere but strata: no CDN.
page.on("request", (r) => {
  if (!r.url().startsWith(base) && !r.url().startsWith("data:")) problems.push(`request outside strata: ${r.url()}`);
});

const shot = async (name) => {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  log(`screenshot ${name}.png`);
};

// canvasInk counts the saturated pixels of the graph's canvases: the series'
// lines, not the grey axes and grid.
const canvasInk = () =>
  page.evaluate(() => {
    let ink = 0;
    for (const c of document.querySelectorAll("[data-testid=graph] canvas")) {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) {
        const hi = Math.max(d[i], d[i + 1], d[i + 2]);
        const lo = Math.min(d[i], d[i + 1], d[i + 2]);
        if (d[i + 3] > 0 && hi - lo > 60) ink++;
      }
    }
    return ink;
  });

async function main() {
  // The query page: autocomplete, graph, table, shareable URL, toggles.
  await page.goto(base + "/");
  await page.waitForURL(/\/graph/);
  // strata up has stored its own metrics for seconds only.
  await page.locator("input[name=range]").fill("5m");
  await page.locator("input[name=range]").press("Tab");
  const editor = page.locator(".cm-content");
  await editor.click();
  await page.keyboard.type(metric.slice(0, 6), { delay: 20 });
  await page.locator(".cm-tooltip-autocomplete li", { hasText: metric }).first().waitFor();
  log("metric name completion offered " + metric);
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+a");
  await page.keyboard.type(`sum by (job) (${metric}{`, { delay: 10 });
  await page.locator(".cm-tooltip-autocomplete li", { hasText: "job" }).first().waitFor();
  log("label name completion offered job");
  await page.keyboard.type(`job="`, { delay: 10 });
  await page.locator(".cm-tooltip-autocomplete li", { hasText: "strata" }).first().waitFor();
  log("label value completion offered strata");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+a");
  await page.keyboard.type(metric, { delay: 10 });
  await page.keyboard.press("Escape");
  await page.keyboard.press("Enter");
  await page.locator("[data-testid=graph][data-rendered=true] canvas").first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=legend] .legend-item").length > 0);
  const ink = await canvasInk();
  assert.ok(ink > 100, `the graph's canvas is empty: ${ink} colored pixels`);
  log(`graph drawn: ${ink} colored pixels`);
  assert.match(await page.locator("[data-testid=response-info]").innerText(), /series/);
  await shot("query-graph");

  // Stacking redraws, and the URL keeps it.
  await page.locator("input[name=stacked]").check();
  await page.waitForURL(/stacked=1/);
  await page.locator("[data-testid=graph][data-rendered=true] canvas").first().waitFor();

  await page.locator("button[data-tab=table]").click();
  await page.locator("[data-testid=table] tr", { hasText: metric }).first().waitFor();
  await page.waitForURL(/tab=table/);
  await shot("query-table");
  log("table shown");

  // The toggles reach the API.
  const req = page.waitForRequest((r) => r.url().includes("/api/v1/query") && (r.postData() ?? "").includes("dedup=false"));
  await page.locator("input[name=dedup]").uncheck();
  await req;
  const reqRes = page.waitForRequest((r) => r.url().includes("/api/v1/query") && (r.postData() ?? "").includes("max_source_resolution=5m"));
  await page.locator("select[name=max_source_resolution]").selectOption("5m");
  await reqRes;
  const reqPartial = page.waitForRequest((r) => r.url().includes("/api/v1/query") && (r.postData() ?? "").includes("partial_response=false"));
  await page.locator("input[name=partial_response]").uncheck();
  await reqPartial;
  log("dedup, max_source_resolution and partial_response sent");

  // A shared URL opens the same view.
  const shared = page.url();
  assert.match(shared, /dedup=0/);
  const other = await context.newPage();
  other.on("pageerror", (e) => problems.push(`uncaught exception on ${other.url()}: ${e.message}`));
  await other.goto(shared);
  await other.locator("[data-testid=table] tr", { hasText: metric }).first().waitFor();
  assert.equal(await other.locator("input[name=dedup]").isChecked(), false);
  assert.equal(await other.locator("select[name=max_source_resolution]").inputValue(), "5m");
  await other.close();
  log("shared URL restores the query, tab and toggles");

  // Errors of the API are shown.
  expectHTTPError = true;
  await page.goto(base + "/graph?expr=" + encodeURIComponent("rate(") + "&tab=table");
  await page.locator("[data-testid=error]").waitFor();
  expectHTTPError = false;
  log("a bad query shows its error");

  await bigAnswer();

  // The cluster pages.
  await page.goto(base + "/cluster/ring");
  await page.locator("[data-testid=ring] tbody tr").nth(2).waitFor();
  assert.equal(await page.locator("[data-testid=ring] tbody tr").count(), 3);
  await shot("cluster-ring");

  await page.goto(base + "/cluster/stores");
  await page.locator("[data-testid=stores] tbody tr").nth(3).waitFor();
  assert.match(await page.locator("[data-testid=stores]").innerText(), /healthy/);
  await shot("cluster-stores");

  await page.goto(base + "/cluster/tenants");
  await page.locator("[data-testid=tenants] tbody tr", { hasText: "default-tenant" }).waitFor();
  await shot("cluster-tenants");

  await page.goto(base + "/cluster/blocks");
  if (process.env.STRATA_EXPECT_BLOCK === "1") {
    await page.locator("[data-testid=blocks-timeline] rect.block").first().click();
    await page.locator("[data-testid=block-details] pre.meta", { hasText: '"ulid"' }).waitFor();
    log("block details shown");
  } else {
    await page.locator("[data-testid=blocks-timeline], [data-testid=blocks-empty]").first().waitFor();
  }
  await shot("cluster-blocks");

  await page.goto(base + "/rules");
  await page.locator("[data-testid=rule-group]").first().waitFor();
  await shot("rules");

  await page.goto(base + "/alerts");
  await page.locator("[data-testid=alerts], [data-testid=alerts-empty]").first().waitFor();
  await shot("alerts");

  // Navigation through the menu works without reloads.
  await page.locator("#nav a", { hasText: "Query" }).click();
  await page.waitForURL(/\/graph/);
}

// bigAnswer checks that 500 series of 1000 points are drawn while the page
// keeps handling timers: the conversion runs in slices, and no task blocks the
// page for long. The answer is synthetic, served by route interception, with
// a warning, a response header and an extra field, which must all be shown.
async function bigAnswer() {
  const series = 500;
  const points = 1000;
  const step = 15;
  const end = 1_800_000_000;
  const start = end - (points - 1) * step;
  const result = [];
  for (let s = 0; s < series; s++) {
    const values = [];
    for (let i = 0; i < points; i++) values.push([start + i * step, String(Math.sin(i / 50 + s) * 100 + s)]);
    result.push({ metric: { __name__: "synthetic", series: String(s) }, values });
  }
  const body = JSON.stringify({
    status: "success",
    data: { resultType: "matrix", result },
    warnings: ["synthetic warning from the browser test"],
    stats: { cache: "hit" },
  });
  await page.route("**/api/v1/query_range", (route) =>
    route.fulfill({ status: 200, contentType: "application/json", headers: { "X-Strata-Results-Cache": "hit" }, body }),
  );
  await page.goto(`${base}/graph?expr=synthetic&tab=table&range=${(points - 1) * step}s&end=${new Date(end * 1000).toISOString()}&step=${step}`);
  await page.locator("[data-testid=table], [data-testid=output] .empty").first().waitFor();
  // A heartbeat timer: its longest gap is how long the page was unresponsive.
  await page.evaluate(() => {
    const w = window;
    w.__beat = { last: performance.now(), maxGap: 0 };
    w.__beatTimer = setInterval(() => {
      const now = performance.now();
      w.__beat.maxGap = Math.max(w.__beat.maxGap, now - w.__beat.last);
      w.__beat.last = now;
    }, 10);
  });
  const t0 = Date.now();
  await page.locator("button[data-tab=graph]").click();
  await page.locator("[data-testid=graph][data-rendered=true]").waitFor({ timeout: 30000 });
  const renderMs = Date.now() - t0;
  const stats = await page.evaluate(() => {
    clearInterval(window.__beatTimer);
    const g = document.querySelector("[data-testid=graph]");
    return { maxGap: window.__beat.maxGap, slices: Number(g.dataset.renderSlices), longest: Number(g.dataset.renderLongestSliceMs) };
  });
  assert.equal(await page.locator("[data-testid=legend] .legend-item").count(), series);
  const ink = await canvasInk();
  assert.ok(ink > 1000, `the big graph's canvas is empty: ${ink} colored pixels`);
  log(`500x1000 drawn in ${renderMs} ms: ${stats.slices} slices, longest slice ${stats.longest} ms, longest timer gap ${stats.maxGap.toFixed(0)} ms`);
  assert.ok(stats.slices > 1, "the conversion of a big answer is not time-sliced");
  // Generous: the bound is for a frozen page, not for speed on a busy machine.
  assert.ok(stats.maxGap < 5000, `the page stopped handling timers for ${stats.maxGap} ms`);
  await page.locator("[data-testid=warning]", { hasText: "synthetic warning" }).waitFor();
  const info = await page.locator("[data-testid=response-info]").innerText();
  assert.match(info, /500 series/);
  assert.match(info, /x-strata-results-cache: hit/i);
  assert.match(info, /stats: \{"cache":"hit"\}/);
  await shot("query-graph-500x1000");
  await page.unroute("**/api/v1/query_range");
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack ?? e}`);
  await shot("failure").catch(() => {});
}
await browser.close();
if (problems.length) {
  failed = true;
  for (const p of problems) console.error(`FAIL: ${p}`);
}
log(failed ? "failed" : "passed");
process.exit(failed ? 1 : 0);
