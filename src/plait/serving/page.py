"""The web page at `/`: a form built from the bundle's fields (GET /v1/info), posting to
/v1/predict, showing the prediction, probability bars, each field's part in it and a degraded badge.

One static page, inline CSS and script, no build step and no external URL, so it works offline and
from a server with no internet. Media are read in the browser and sent as base64; nothing leaves
the page but calls to this server. An API key, when the server wants one, is asked for once and
kept in the page's memory only. Each field is asked for as its `widget` says (from the modality's
`input_spec`): a file picker with a preview, a text area (text or JSON), or one input per column.
"""

# ruff: noqa: E501  (the page's CSS and script keep their own line lengths)
from __future__ import annotations

PAGE_HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>plait · predict</title>
<link rel="icon" href="data:,">
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
header { background: #1d2430; color: #fff; padding: .8em 1.2em; display: flex; gap: 1em; align-items: baseline; }
header h1 { font-size: 1.15em; margin: 0; } header .small { color: #c9d1dc; }
header a { color: #9cc3ff; }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1.2em; padding: 1.2em;
  max-width: 1200px; margin: 0 auto; }
@media (max-width: 800px) { main { grid-template-columns: minmax(0, 1fr); } }
section { background: #fff; border: 1px solid #dde2e8; border-radius: 8px; padding: 1em 1.2em; }
h2 { font-size: 1.05em; margin: 0 0 .6em; }
.field { border-top: 1px solid #eef0f3; padding: .6em 0; } .field:first-of-type { border-top: 0; }
.field-head { display: flex; justify-content: space-between; align-items: center; gap: .5em; }
.field-name { font-weight: 600; } .kind { color: #667; font-size: .85em; margin-left: .4em; }
.leave { font-size: .85em; color: #445; } .field.left-out .inputs { opacity: .35; }
textarea, input[type=text], input[type=number], input[type=password] { width: 100%; box-sizing: border-box;
  font: inherit; padding: .3em .4em; border: 1px solid #c8ced6; border-radius: 4px; }
textarea { min-height: 3.2em; resize: vertical; }
.cols { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: .4em; }
.cols label { font-size: .8em; color: #556; }
.preview img { max-width: 160px; max-height: 120px; margin-top: .3em; border-radius: 4px; }
.preview audio { width: 100%; margin-top: .3em; }
.preview video { max-width: 240px; max-height: 180px; margin-top: .3em; }
button { font: inherit; background: #2d6cdf; color: #fff; border: 0; border-radius: 5px; padding: .5em 1.2em;
  cursor: pointer; margin-top: .6em; } button:disabled { background: #9bb0d6; }
.prediction { font-size: 1.6em; font-weight: 700; margin: .2em 0; }
.badge { display: inline-block; border-radius: 999px; padding: .1em .7em; font-size: .85em; font-weight: 600; }
.badge.degraded { background: #fde7c7; color: #8a4b00; } .badge.complete { background: #d9f2df; color: #17612c; }
.bar { display: grid; grid-template-columns: 9em 1fr 4em; gap: .5em; align-items: center; margin: .15em 0; }
.bar .track { background: #eef0f3; border-radius: 3px; height: .9em; }
.bar .fill { background: #2d6cdf; height: 100%; border-radius: 3px; } .bar.top .fill { background: #17612c; }
.bar .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; } .num { text-align: right;
  font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: .92em; } td, th { text-align: left; padding: .2em .4em;
  border-bottom: 1px solid #eef0f3; } .state-used { color: #17612c; } .state-missing { color: #667; }
.state-failed, .state-skipped { color: #a33; }
.error { background: #fde8e8; color: #8a1c1c; border-radius: 5px; padding: .5em .7em; }
.muted { color: #667; font-size: .9em; } [hidden] { display: none !important; }
</style></head>
<body>
<header><h1>plait</h1><span class="small" id="model">loading the model…</span>
<span style="flex:1"></span><a id="report-link" href="/report" hidden>evaluation report</a>
<a href="/docs">API</a></header>
<main>
<section aria-labelledby="inputs-title"><h2 id="inputs-title">Inputs</h2>
<div id="auth" hidden><label for="api-key">API key</label>
<input type="password" id="api-key" autocomplete="off"><button type="button" id="auth-go">Connect</button></div>
<form id="form"><div id="fields"></div>
<button type="submit" id="submit" disabled>Predict</button>
<p class="muted">Leave a field out (or empty) to see how the model answers without it.</p></form>
</section>
<section aria-labelledby="result-title" aria-live="polite"><h2 id="result-title">Prediction</h2>
<div id="error" class="error" role="alert" hidden></div>
<div id="result" hidden>
<div><span class="prediction" id="prediction"></span> <span class="badge" id="badge"></span></div>
<p class="muted" id="latency"></p>
<h3 id="probs-title" style="font-size:1em">Probabilities</h3><div id="probs"></div>
<h3 style="font-size:1em">Fields</h3>
<table><thead><tr><th>field</th><th>state</th><th id="weight-head">weight</th>
<th title="how much the answer falls when this field is left out">part in the answer</th></tr></thead>
<tbody id="field-rows"></tbody></table>
</div>
<p class="muted" id="idle">Fill in what you have and press Predict.</p>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null, apiKey = "";

function headers(json) {
  const h = json ? {"Content-Type": "application/json"} : {};
  if (apiKey) h["X-API-Key"] = apiKey;
  return h;
}
function showError(message) { $("error").textContent = message; $("error").hidden = false; }
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function load() {
  const response = await fetch("/v1/info", {headers: headers(false)});
  if (response.status === 401) { $("auth").hidden = false; $("model").textContent = "this server wants an API key"; return; }
  if (!response.ok) { showError("could not read /v1/info: HTTP " + response.status); return; }
  info = await response.json();
  $("auth").hidden = true; $("error").hidden = true;
  const task = info.task || {};
  $("model").textContent = `${task.type || ""} of ${task.label || "?"} · model ${info.model_id || "?"}`;
  $("report-link").hidden = !info.report;
  build(info.fields || []);
  $("submit").disabled = false;
}

function build(fields) {
  const box = $("fields"); box.replaceChildren();
  for (const f of fields) {
    const wrap = el("div", {"class": "field", "data-field": f.name});
    const head = el("div", {"class": "field-head"});
    const title = el("span"); title.append(el("span", {"class": "field-name"}, f.name), el("span", {"class": "kind"}, f.kind + (f.required ? " · required" : "")));
    const leave = el("label", {"class": "leave"}); const box2 = el("input", {type: "checkbox", "data-leave": f.name});
    box2.addEventListener("change", () => wrap.classList.toggle("left-out", box2.checked));
    leave.append(box2, document.createTextNode(" leave out"));
    head.append(title, leave); wrap.append(head);
    const inputs = el("div", {"class": "inputs"});
    const widget = f.widget || {control: "json", accept: "", preview: "", hint: ""};
    switch (widget.control) {
      case "file":
        inputs.append(...fileInput(f, widget, f.columns[0]));
        extraColumns(inputs, f.columns.slice(1));
        break;
      case "columns":
        extraColumns(inputs, f.columns);
        break;
      default:  // "text" or "json": a text area per column
        for (const c of f.columns) {
          const area = el("textarea", {"data-column": c, "data-control": widget.control, placeholder: widget.hint, "aria-label": f.columns.length > 1 ? c : f.name});
          inputs.append(area);
        }
    }
    if (f.accepts) inputs.append(el("div", {"class": "muted"}, f.accepts));
    wrap.append(inputs); box.append(wrap);
  }
}

function fileInput(f, widget, column) {
  const file = el("input", {type: "file", accept: widget.accept, "data-column": column, "aria-label": f.name + " file"});
  const preview = el("div", {"class": "preview"});
  file.addEventListener("change", () => {
    preview.replaceChildren();
    if (!file.files.length || !widget.preview) return;
    const url = URL.createObjectURL(file.files[0]);
    const still = widget.preview === "img";  // an image has alt text; audio and video have controls
    preview.append(el(widget.preview, still ? {src: url, alt: f.name + " preview"} : {src: url, controls: ""}));
  });
  return [file, preview];
}

function extraColumns(parent, columns) {
  if (!columns.length) return;
  const grid = el("div", {"class": "cols"});
  for (const c of columns) {
    const label = el("label", {}, c);
    label.append(el("input", {type: "text", "data-column": c, "data-control": "columns", "aria-label": c}));
    grid.append(label);
  }
  parent.append(grid);
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function parseValue(control, text) {
  const t = text.trim();
  if (t === "") return undefined;
  switch (control) {
    case "text": return text;
    case "json": try { return JSON.parse(t); } catch (e) { return t; }
    default: {  // "columns": a number when it reads as one, else the text (a category level)
      const n = Number(t);
      return Number.isFinite(n) && /^[-+0-9.eE]+$/.test(t) ? n : t;
    }
  }
}

async function record() {
  const out = {};
  for (const f of info.fields) {
    const wrap = document.querySelector(`[data-field="${CSS.escape(f.name)}"]`);
    if (wrap.querySelector("[data-leave]").checked) continue;
    for (const input of wrap.querySelectorAll("[data-column]")) {
      const column = input.getAttribute("data-column");
      if (input.type === "file") {
        if (input.files.length) out[column] = await readBase64(input.files[0]);
      } else {
        const value = parseValue(input.getAttribute("data-control"), input.value);
        if (value !== undefined) out[column] = value;
      }
    }
  }
  return out;
}

async function predict(event) {
  event.preventDefault();
  $("submit").disabled = true; $("error").hidden = true;
  try {
    const body = JSON.stringify(await record());
    const response = await fetch("/v1/predict?explain=true", {method: "POST", headers: headers(true), body});
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const err = data.error || {};
      showError(`${response.status}: ${err.message || "the server refused the request"}`);
      return;
    }
    show(data.predictions ? data.predictions[0] : data);
  } catch (e) {
    showError("request failed: " + e);
  } finally {
    $("submit").disabled = false;
  }
}

function show(p) {
  $("idle").hidden = true; $("result").hidden = false;
  $("prediction").textContent = typeof p.prediction === "number" ? p.prediction.toFixed(3) : p.prediction;
  const badge = $("badge");
  badge.className = "badge " + (p.degraded ? "degraded" : "complete");
  const without = (p.fields_missing || []).length ? "without " + p.fields_missing.join(", ") : "";
  const imputed = (p.fields_imputed || []).length ? "imputed " + p.fields_imputed.join(", ") : "";
  badge.textContent = p.degraded ? "degraded: " + [without, imputed].filter(Boolean).join("; ") : "all fields used";
  badge.setAttribute("data-degraded", p.degraded ? "true" : "false");
  const temp = p.temperature ? ` · calibrated (T ${p.temperature.toFixed(2)})` : "";
  $("latency").textContent = (p.latency_ms !== undefined ? `${p.latency_ms.toFixed(1)} ms` : "") + temp;
  const probs = $("probs"); probs.replaceChildren();
  const entries = Object.entries(p.probabilities || {}).sort((a, b) => b[1] - a[1]);
  $("probs-title").hidden = entries.length === 0;
  entries.forEach(([name, value], i) => {
    const row = el("div", {"class": "bar" + (i === 0 ? " top" : ""), "data-class": name});
    const track = el("div", {"class": "track"}); const fill = el("div", {"class": "fill"});
    fill.style.width = (100 * value).toFixed(1) + "%"; track.append(fill);
    row.append(el("span", {"class": "label", title: name}, name), track, el("span", {"class": "num"}, (100 * value).toFixed(1) + " %"));
    probs.append(row);
  });
  const rows = $("field-rows"); rows.replaceChildren();
  const weights = p.weights || {};
  $("weight-head").textContent = p.weights ? "weight" : "";
  for (const [name, status] of Object.entries(p.fields || {})) {
    const tr = el("tr", {"data-field-state": status.state});
    tr.append(el("td", {}, name));
    tr.append(el("td", {"class": "state-" + status.state}, status.state + (status.reason ? ": " + status.reason : "")));
    tr.append(el("td", {"class": "num"}, name in weights ? weights[name].toFixed(3) : ""));
    const part = (p.contributions || {})[name];
    const partText = part === undefined ? "" : p.probabilities ? (100 * part).toFixed(1) + " pts" : part.toFixed(3);
    tr.append(el("td", {"class": "num", "data-contribution": name}, partText));
    rows.append(tr);
  }
}

$("form").addEventListener("submit", predict);
$("auth-go").addEventListener("click", () => { apiKey = $("api-key").value; load(); });
load().catch((e) => showError("could not load the model's fields: " + e));
</script>
</body></html>
"""
