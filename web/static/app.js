// The page: pick or drop an image, run grayscale and/or classify through
// the gateway (/api/*), show results, errors and the recent events.
"use strict";

const MAX_BYTES = 10 * 1000 * 1000;
const $ = (id) => document.getElementById(id);
let chosen = null;

function say(text) { $("status").textContent = text; }

function showError(text) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
}

// One message per failure the user can act on.
async function describe(res, what) {
  let body = {};
  try { body = await res.clone().json(); } catch (_) { /* not JSON */ }
  const code = body.code || "";
  if (res.status === 429) {
    const wait = res.headers.get("Retry-After") || body.retry_after || "a few";
    return `Too many requests: please retry in ${wait} s.`;
  }
  if (res.status === 413) return "That image is too large: 10 MB at most.";
  if (res.status === 415) return "That file is not an image we can read (PNG, JPEG, GIF, BMP or WebP).";
  if (code === "image_too_large" || code === "too_many_frames") return `That image is too large: ${body.error}.`;
  if (res.status === 422) return `That image could not be decoded: ${body.error || "it is damaged or truncated"}.`;
  if (res.status >= 500) return `The ${what} service is unavailable right now; please try again later.`;
  return body.error || `The ${what} request failed (${res.status}).`;
}

function choose(file) {
  if (!file) return;
  showError("");
  if (file.size > MAX_BYTES) {
    chosen = null;
    $("run").disabled = true;
    showError("That image is too large: 10 MB at most.");
    return;
  }
  chosen = file;
  $("drop-text").textContent = `${file.name} (${file.size} bytes)`;
  const img = $("original");
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  $("run").disabled = false;
}

// POSTs the image to a gateway route; a failure becomes its user message.
async function upload(route, accept, file, what) {
  const res = await fetch(route, {
    method: "POST",
    headers: { "Accept": accept, "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  if (!res.ok) throw new Error(await describe(res, what));
  return res;
}

// Links a result to its trace in Zipkin (scripts/tracing, beside the page
// on port 9411): the trace id is the answer's traceparent's second field.
function linkTrace(id, res) {
  const trace = (res.headers.get("traceparent") || "").split("-")[1];
  const a = $(id);
  a.hidden = !trace;
  if (trace) a.href = `${location.protocol}//${location.hostname}:9411/zipkin/traces/${trace}`;
}

async function grayscale(file) {
  const res = await upload("/api/grayscale", "image/png, image/gif", file, "grayscale");
  linkTrace("gray-trace", res);
  const img = $("gray");
  img.src = URL.createObjectURL(await res.blob());
  img.hidden = false;
  await img.decode().catch(() => {});
}

async function classify(file) {
  const res = await upload("/api/classify", "application/json", file, "classification");
  linkTrace("classify-trace", res);
  const top = await res.json();
  const best = top[0];
  $("label").textContent = best ? `${best.label}: ${Math.round(best.score * 100)}%` : "Nothing recognised";
  const list = $("top5");
  list.replaceChildren(...top.slice(0, 5).map(({ label, score }) => {
    const li = document.createElement("li");
    const pct = Math.round(score * 100);
    li.textContent = `${label} ${pct}%`;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${pct}%`;
    bar.setAttribute("role", "presentation");
    li.append(bar);
    return li;
  }));
}

async function refreshEvents() {
  try {
    const res = await fetch("/api/events?limit=10");
    if (!res.ok) return;
    const rows = await res.json();
    $("events").tBodies[0].replaceChildren(...rows.map((e) => {
      const tr = document.createElement("tr");
      for (const v of [e.id, new Date(e.event_ts).toLocaleTimeString(), e.op_type, `${e.input_size} bytes`]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }));
  } catch (_) { /* the table just stays as it was */ }
}

async function run(event) {
  event.preventDefault();
  if (!chosen) return;
  const op = new FormData($("upload")).get("op");
  const jobs = [];
  if (op === "grayscale" || op === "both") jobs.push(grayscale(chosen));
  if (op === "classify" || op === "both") jobs.push(classify(chosen));
  showError("");
  $("busy").hidden = false;
  $("upload").setAttribute("aria-busy", "true");
  $("run").disabled = true;
  say("Working…");
  const results = await Promise.allSettled(jobs);
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason.message || "Network error.");
  showError(failures.join(" "));
  $("busy").hidden = true;
  $("upload").removeAttribute("aria-busy");
  $("run").disabled = false;
  say(failures.length ? "Finished with errors." : "Done.");
  // Events reach events-service through pub/sub a second or so later:
  // look again a few times.
  for (const ms of [0, 1000, 2000, 4000, 8000]) setTimeout(refreshEvents, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => choose(e.target.files[0]));
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    choose(e.dataTransfer.files[0]);
  });
  $("upload").addEventListener("submit", run);
  refreshEvents();
});
