// Browser test of the page and gateway at http://localhost:8080 (scripts/test
// starts the stack first). Debian's chromium, driven by playwright-core.
// Screenshots go to tests/screenshots/ (ignored by git).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const shots = path.join(root, "tests/screenshots");
const BASE = process.env.WEB_URL || "http://127.0.0.1:8080";
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // The machine's network is closed: no background connections.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let failed = false;
const step = async (name, fn) => {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed = true;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split("\n").join("\n  ")}`);
  }
};

const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
const runAndWait = async () => {
  await page.click("#run");
  await page.waitForFunction(() => document.getElementById("busy").hidden && !document.getElementById("run").disabled);
};

await step("the page loads with labelled, keyboard-usable controls", async () => {
  await page.goto(BASE);
  assert.equal(await page.title(), "Image services on WASI + Dapr");
  assert.equal(await page.getAttribute("#drop", "tabindex"), "0");
  assert.ok(await page.isDisabled("#run"));
  assert.ok(await page.getByLabel("Choose an image").count() === 1);
  // Enter on the drop zone opens the file picker (its input is clicked;
  // the test stops the native dialog and sets the file itself).
  await page.evaluate(() => document.getElementById("file").addEventListener("click", (e) => {
    window.__pickerOpened = true;
    e.preventDefault();
  }));
  await page.focus("#drop");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => window.__pickerOpened), true, "Enter did not open the picker");
  await page.setInputFiles("#file", path.join(root, "docs/samples/cat.jpg"));
  await page.waitForSelector("#original:not([hidden])");
  assert.ok(!(await page.isDisabled("#run")));
});

// The newest event before this run: the run's own event is a newer one.
let lastEventId = 0;
await step("grayscale: the result is rendered and its pixels are gray", async () => {
  const before = await page.request.get(`${BASE}/api/events?limit=1`);
  assert.equal(before.status(), 200);
  lastEventId = (await before.json())[0]?.id ?? 0;
  await runAndWait();
  const msg = await page.textContent("#message");
  assert.ok(await page.isHidden("#message"), `error shown: ${msg}`);
  const stats = await page.evaluate(async () => {
    const img = document.getElementById("gray");
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let colour = 0, distinct = new Set();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) colour++;
      distinct.add(d[i]);
    }
    return { w: c.width, h: c.height, colour, levels: distinct.size };
  });
  assert.deepEqual([stats.w, stats.h], [451, 300]);
  assert.equal(stats.colour, 0, "every pixel has r = g = b");
  assert.ok(stats.levels > 50, `a real picture, not a flat fill (${stats.levels} gray levels)`);
  await page.screenshot({ path: path.join(shots, "grayscale.png"), fullPage: true });
});

await step("the new event shows up in the events table", async () => {
  // A row newer than any event before the run, of this photo: an older
  // grayscale event of the same size does not count.
  await page.waitForFunction((last) =>
    [...document.querySelectorAll("#events tbody tr")].some((tr) => {
      const cells = [...tr.cells].map((td) => td.textContent);
      return Number(cells[0]) > last && cells[2] === "grayscale" && cells[3] === "31589 bytes";
    }), lastEventId, { timeout: 20000 });
});

await step("the result links to its trace, which Zipkin holds", async () => {
  const href = await page.getAttribute("#gray-trace", "href");
  const m = /^http:\/\/[^/]+:9411\/zipkin\/traces\/([0-9a-f]{32})$/.exec(href || "");
  assert.ok(m, `no trace link: ${href}`);
  // Followed: Zipkin's UI answers, and its API has the trace (the spans
  // arrive in batches: wait for them).
  const ui = await page.request.get(href);
  assert.equal(ui.status(), 200);
  const api = `http://127.0.0.1:9411/api/v2/trace/${m[1]}`;
  const deadline = Date.now() + 30000;
  let spans = [];
  while (Date.now() < deadline) {
    const r = await page.request.get(api);
    if (r.ok()) spans = await r.json();
    if (spans.some((s) => s.localEndpoint?.serviceName === "image-api-grayscale")) break;
    await new Promise((done) => setTimeout(done, 500));
  }
  assert.ok(spans.some((s) => s.localEndpoint?.serviceName === "image-api-grayscale"),
    `the trace has no span of grayscale: ${JSON.stringify(spans).slice(0, 300)}`);
});

await step("both at once: the grayscale image and the classification with its top 5", async () => {
  await page.setInputFiles("#file", path.join(root, "docs/samples/coffee.jpg"));
  await page.check("input[value=both]");
  await runAndWait();
  assert.ok(await page.isHidden("#message"), await page.textContent("#message"));
  assert.match(await page.textContent("#label"), /^(espresso|cup|coffee mug): \d+%$/);
  assert.equal(await page.locator("#top5 li").count(), 5);
  await page.screenshot({ path: path.join(shots, "both.png"), fullPage: true });
  await page.check("input[value=grayscale]");
});

await step("a file that is not an image gets a clear message", async () => {
  await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("just some text") });
  await runAndWait();
  assert.match(await page.textContent("#message"), /not an image/);
});

await step("the rate limit shows how long to wait", async () => {
  await page.setInputFiles("#file", path.join(root, "docs/samples/rocket.png"));
  let msg = "";
  for (let i = 0; i < 15 && !/Too many requests/.test(msg); i++) {
    await runAndWait();
    msg = (await page.textContent("#message")) || "";
  }
  assert.match(msg, /Too many requests: please retry in \d+ s\./);
  await page.screenshot({ path: path.join(shots, "rate-limited.png"), fullPage: true });
});

await step("fine on a phone-width screen", async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px`);
  await page.screenshot({ path: path.join(shots, "phone.png"), fullPage: true });
});

await browser.close();
if (failed) process.exit(1);
