// The page: every action goes through the documented HTTP API (docs/web.md). No build step, no libraries.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const state = { info: null, file: null, probe: null, style: null, painting: null, job: null, timer: null };

function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, token ? { "X-NST-Token": token } : {});
  return fetch(path, Object.assign({}, options, { headers })).then(async (response) => {
    const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
    return body;
  });
}
const media = (path) => (token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const seconds = (s) => (s == null ? "?" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min`
  : `${(s / 3600).toFixed(1)} h`);
const method = () => document.querySelector("input[name=method]:checked")?.value;
const showError = (message) => { $("error").textContent = message || ""; };

async function start() {
  try { state.info = await api("/api/styles"); } catch (e) { showError(e.message); return; }
  const info = state.info;
  $("device").textContent = `running on ${info.device.toUpperCase()}`;
  $("max_size").value = info.limits.max_size;
  $("max_size").max = info.limits.max_size_limit;
  $("iterations").value = info.limits.iterations;
  for (const n of info.networks) $("network").append(el("option", { value: n.name, textContent: n.name }));
  const fast = document.querySelector("input[value=fast]");
  fast.disabled = !info.fast;
  if (!info.fast) { $("fast-message").textContent = info.fast_message; $("fast-message").hidden = false; }
  document.querySelector(`input[value=${info.fast ? "fast" : "optimize"}]`).checked = true;
  document.querySelectorAll("input[name=method]").forEach((r) => r.addEventListener("change", drawStyles));
  $("network").addEventListener("change", drawStyles);
  drawStyles();
  refreshJobs();
}

// --- the style tiles: the bundled paintings (optimize) or the network's own styles (fast) ---
function styleNames() {
  if (method() === "fast") return state.info.networks.find((n) => n.name === $("network").value)?.styles || [];
  return state.info.styles.map((s) => s.name);
}
function drawStyles() {
  const fast = method() === "fast";
  $("fast-styles").hidden = !fast || state.info.networks.length < 2;
  const names = styleNames(), bundled = new Set(state.info.styles.map((s) => s.name));
  if (!names.includes(state.style)) state.style = state.painting && !fast ? null : names[0];
  const tiles = $("styles");
  tiles.replaceChildren();
  for (const name of names) {
    const tile = el("button", { type: "button", className: "tile", title: name }, el("span", { textContent: name }));
    if (bundled.has(name)) tile.prepend(el("img", { src: media(`/api/styles/${name}/thumbnail`), alt: name }));
    tile.dataset.style = name;
    tile.classList.toggle("selected", name === state.style);
    tile.onclick = () => { state.style = name; drawStyles(); };
    tiles.append(tile);
  }
  if (!fast) {
    const chooser = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", hidden: true, id: "painting" });
    const upload = el("label", { className: "tile upload" + (state.style === null && state.painting ? " selected" : "") },
      chooser, state.painting ? el("img", { src: URL.createObjectURL(state.painting) }) : "+ your painting");
    if (state.painting) upload.append(el("span", { textContent: "your painting" }));
    chooser.onchange = () => { if (chooser.files[0]) { state.painting = chooser.files[0]; state.style = null; drawStyles(); } };
    tiles.append(upload);
  }
  const second = $("style2"), kept = second.value;
  second.replaceChildren(el("option", { value: "", textContent: "(nothing)" }),
    ...names.map((n) => el("option", { value: n, textContent: n })));
  second.value = names.includes(kept) ? kept : "";
  second.disabled = (fast && names.length < 2) || state.style === null;
  updateForm();
}

function updateForm() {
  const blending = $("style2").value !== "" && !$("style2").disabled;
  $("blend").disabled = !blending;
  const w = Number($("blend").value);
  $("blend-label").textContent = blending ? `${100 - w}% ${state.style} + ${w}% ${$("style2").value}` : "";
  const video = state.probe?.kind === "video", optimizing = method() === "optimize";
  $("preserve_color").disabled = video;
  if (video) $("preserve_color").checked = false;
  $("metrics").disabled = !video;
  $("iterations-box").hidden = !optimizing;
  $("go").disabled = !state.probe || (state.style === null && !state.painting) || (state.job && !state.job.finished);
  $("estimate").textContent = estimate();
}

function estimate() {
  const p = state.probe;
  if (!p) return "";
  const limit = Number($("max_size").value) || p.width, scale = Math.min(1, limit / Math.max(p.width, p.height));
  const mpx = (p.width * scale) * (p.height * scale) / 1e6, speed = state.info.speed;
  if (method() === "fast") return `Fast: about ${seconds(speed.fast * mpx * p.frames + 2)} for ${p.frames} frame(s).`;
  const iterations = Number($("iterations").value) * (p.kind === "video" ? p.frames + 1 : 1);
  return `Optimize is slow: roughly ${seconds(speed.optimize * mpx * iterations)} on this ` +
    `${state.info.device.toUpperCase()} (${iterations} iterations at ${Math.round(p.width * scale)} px wide).`;
}

// --- the input: preview, and what the server says of it ---
async function chooseFile(file) {
  if (!file) return;
  state.file = file; state.probe = null; showError("");
  const url = URL.createObjectURL(file);
  const isVideo = file.type.startsWith("video/") || /\.(mp4|mov|mkv|webm)$/i.test(file.name);
  $("preview").replaceChildren(isVideo ? el("video", { src: url, controls: true, muted: true }) : el("img", { src: url }));
  $("drop-text").textContent = file.name;
  $("file-info").textContent = "checking…";
  const form = new FormData();
  form.append("input", file);
  try {
    const p = await api("/api/probe", { method: "POST", body: form });
    state.probe = p;
    const size = p.bytes < 1048576 ? `${Math.ceil(p.bytes / 1024)} kB` : `${(p.bytes / 1048576).toFixed(1)} MB`;
    const parts = [`${p.width}×${p.height}`, size];
    if (p.kind === "video") parts.push(`${p.seconds.toFixed(1)} s`, `${p.frames} frames`, p.has_audio ? "with sound" : "no sound");
    $("file-info").textContent = `${p.kind === "video" ? "Video" : "Photo"}: ${parts.join(" · ")}`;
  } catch (e) { $("file-info").textContent = ""; showError(e.message); }
  updateForm();
}

// --- a job: submit, follow, cancel, show ---
async function submit() {
  showError("");
  const form = new FormData();
  form.append("input", state.file);
  form.append("method", method());
  if (method() === "fast") form.append("network", $("network").value || state.info.networks[0].name);
  if (state.style === null) form.append("style_file", state.painting); else form.append("style", state.style);
  if (!$("blend").disabled) { form.append("style2", $("style2").value); form.append("blend", $("blend").value / 100); }
  for (const key of ["preserve_color", "side_by_side", "metrics"]) form.append(key, $(key).checked && !$(key).disabled);
  form.append("max_size", $("max_size").value);
  if (method() === "optimize") form.append("iterations", $("iterations").value);
  $("go").disabled = true;
  try { follow(await api("/api/jobs", { method: "POST", body: form })); } catch (e) { showError(e.message); updateForm(); }
}

function follow(job) {
  state.job = job;
  $("result").replaceChildren(); $("result-links").replaceChildren(); $("metrics-table").hidden = true;
  clearTimeout(state.timer);
  const poll = async () => {
    try { show(await api(`/api/jobs/${job.id}`)); } catch (e) { showError(e.message); return; }
    if (!state.job.finished) state.timer = setTimeout(poll, 600);
  };
  poll();
}

function show(job) {
  const active = job.status === "queued" || job.status === "running";
  state.job = Object.assign(job, { finished: !active });
  const p = job.progress || {}, total = p.total || 0;
  $("bar").hidden = !active;
  $("bar").firstElementChild.style.width = total ? `${(100 * p.done) / total}%` : "0";
  $("cancel").hidden = !active;
  if (job.status === "queued") $("status").textContent = "Waiting for the job before it…";
  else if (active) $("status").textContent = total ? `${p.done} / ${total} ${p.unit}s · ` +
    `${p.seconds_per_unit ? p.seconds_per_unit.toFixed(2) + " s/" + p.unit : "…"} · ${seconds(p.seconds_left)} left`
    : "Starting…";
  else if (job.status === "done") $("status").textContent = `Done in ${seconds(p.elapsed)}: ${job.name} in ${job.style}.`;
  else $("status").textContent = job.status === "cancelled" ? "Cancelled." : "Failed.";
  if (job.status === "failed") showError(job.error);
  if (job.status === "done") showResult(job, "result");
  if (!active) { updateForm(); refreshJobs(); }
}

function showResult(job, view) {
  const url = media(`/api/jobs/${job.id}/result?view=${view}`), name = job.result || "";
  const node = /\.(mp4|webm|mov)$/.test(name) ? el("video", { src: url, controls: true, autoplay: true, loop: true })
    : el("img", { src: url, alt: "the stylized result", id: "result-image" });
  $("result").replaceChildren(node);
  const links = [el("a", { href: media(`/api/jobs/${job.id}/result?download=1`), textContent: "Download", id: "download" })];
  if (job.side_by_side) {
    const other = view === "result" ? "side_by_side" : "result";
    links.push(el("button", { className: "link", textContent: other === "result" ? "Show the result" : "Show side by side",
      onclick: () => showResult(job, other) }));
    links.push(el("a", { href: media(`/api/jobs/${job.id}/result?view=side_by_side&download=1`), textContent: "Download side by side" }));
  }
  $("result-links").replaceChildren(...links);
  const rows = Object.entries(job.metrics || {});
  $("metrics-table").hidden = !rows.length;
  $("metrics-table").replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", { textContent: k.replaceAll("_", " ") }),
    el("td", { textContent: Number(v).toPrecision(4) }))));
}

async function refreshJobs() {
  let jobs;
  try { jobs = (await api("/api/jobs")).jobs; } catch { return; }
  $("jobs").tBodies[0].replaceChildren(...jobs.map((job) => {
    const actions = el("td");
    if (job.status === "done") actions.append(el("button", { className: "link", textContent: "show", onclick: () => follow(job) }), " ",
      el("a", { href: media(`/api/jobs/${job.id}/result?download=1`), textContent: "download" }), " ");
    const active = job.status === "queued" || job.status === "running";
    actions.append(el("button", { className: "link", textContent: active ? "cancel" : "remove",
      onclick: () => api(`/api/jobs/${job.id}`, { method: "DELETE" }).then(refreshJobs, (e) => showError(e.message)) }));
    const status = job.status === "failed" ? `failed: ${job.error}` : job.status;
    return el("tr", {}, el("td", { textContent: new Date(job.created * 1000).toLocaleString() }),
      el("td", { textContent: job.name }), el("td", { textContent: job.style }),
      el("td", { textContent: job.request.method }), el("td", { textContent: status, className: `status-${job.status}` }), actions);
  }));
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chooseFile(e.dataTransfer.files[0]); });
$("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
for (const id of ["style2", "blend", "max_size", "iterations"]) $(id).addEventListener("input", updateForm);
$("go").addEventListener("click", submit);
$("cancel").addEventListener("click", () => state.job && api(`/api/jobs/${state.job.id}`, { method: "DELETE" }).catch((e) => showError(e.message)));
setInterval(() => { if (state.job && !state.job.finished) refreshJobs(); }, 4000);
start();
