// The sandbox page: polls /api/state, renders what the fake Slack holds (Block Kit included), and sends what
// the person does to /api/* (which drives opsbot exactly as Slack would). No build step, no dependencies.
"use strict";

const POLL_MS = 500;
const AWS_POLL_MS = 3000;
const EMOJI = {
  alarm_clock: "⏰", arrow_forward: "▶️", arrows_counterclockwise: "🔄", ballot_box_with_check: "☑️",
  arrow_heading_down: "⤵️", boom: "💥", bulb: "💡", calendar: "📆", eyes: "👀", fast_forward: "⏩", gear: "⚙️", grey_question: "❔", heavy_check_mark: "✔️", heavy_multiplication_x: "✖️",
  hourglass: "⌛", hourglass_flowing_sand: "⏳", inbox_tray: "📥", information_source: "ℹ️",
  large_green_circle: "🟢", large_yellow_circle: "🟡", leftwards_arrow_with_hook: "↩️", lock: "🔒", mag: "🔍",
  memo: "📝", raising_hand: "🙋", no_entry: "⛔", no_entry_sign: "🚫", octagonal_sign: "🛑", red_circle: "🔴", repeat: "🔁",
  rewind: "⏪", robot_face: "🤖", rotating_light: "🚨", skull: "💀", sparkles: "✨", stopwatch: "⏱️",
  tada: "🎉", unlock: "🔓", warning: "⚠️", white_check_mark: "✅", white_circle: "⚪", x: "❌", zzz: "💤",
};

const ui = {
  user: null, channel: null, thread: null, pane: "channel", tab: "home",
  state: null, version: null, query: null, inflight: 0, asked: 0, applied: 0,
  modalKey: null, seen: {}, keys: {}, aws: null,
};

const $ = (id) => document.getElementById(id);

// --- text ------------------------------------------------------------------------------------------

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// Slack escapes &, < and > in mrkdwn itself: keep its entities, escape everything else.
function escSlack(text) {
  return String(text).replace(/&(?!(amp|lt|gt);)/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function emoji(html) {
  return html.replace(/:([a-z][a-z0-9_+-]*):/g, (whole, name) => EMOJI[name] || whole);
}

function nameOf(id) {
  return (ui.state && ui.state.names[id]) || id;
}

function channelName(id) {
  const found = ui.state && ui.state.channels.find((c) => c.id === id);
  return found ? found.name : id;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function clock(date, secs) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}${secs ? ":" + pad(date.getSeconds()) : ""}`;
}

function shortDate(date) {
  return date.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" });
}

function prettyDate(date) {
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (date.toDateString() === today.toDateString()) return "today";
  if (date.toDateString() === yesterday.toDateString()) return "yesterday";
  return shortDate(date);
}

function slackDate(inner) {
  // !date^1714564920^{date_short_pretty} {time}^optional_link|fallback
  const [spec, fallback] = inner.split("|", 2);
  const parts = spec.split("^");
  const date = new Date(Number(parts[1]) * 1000);
  if (Number.isNaN(date.getTime())) return esc(fallback || spec);
  const tokens = {
    date_num: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    date: date.toLocaleDateString("en-US", { month: "long", day: "numeric", year: "numeric" }),
    date_short: shortDate(date),
    date_long: date.toLocaleDateString("en-US", { weekday: "long", month: "long", day: "numeric", year: "numeric" }),
    date_pretty: prettyDate(date), date_short_pretty: prettyDate(date), date_long_pretty: prettyDate(date),
    time: clock(date, false), time_secs: clock(date, true),
    ago: `${Math.max(0, Math.round((Date.now() - date.getTime()) / 60000))} min ago`,
  };
  const text = (parts[2] || "{date_short} {time}").replace(/\{(\w+)\}/g, (w, t) => tokens[t] || w);
  return `<time title="${esc(fallback || "")}">${esc(text)}</time>`;
}

function special(inner) {
  if (inner.startsWith("@")) {
    const [id, label] = inner.slice(1).split("|", 2);
    return `<span class="mention">@${esc(label || nameOf(id))}</span>`;
  }
  if (inner.startsWith("#")) {
    const [id, label] = inner.slice(1).split("|", 2);
    return `<a href="#" class="mention channel-link" data-goto="${esc(id)}">#${esc(label || channelName(id))}</a>`;
  }
  if (inner.startsWith("!date^")) return slackDate(inner.slice(1));
  if (inner.startsWith("!subteam^")) return `<span class="mention">${esc(inner.split("|")[1] || "@team")}</span>`;
  if (inner.startsWith("!")) return `<span class="mention">@${esc(inner.slice(1).split("|")[0])}</span>`;
  const [url, label] = inner.split("|", 2);
  const shown = label ? mrkdwn(label, true) : esc(url);
  if (!/^(https?:|mailto:)/.test(url)) return shown;
  return `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${shown}</a>`;
}

// Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ```pre```, > quotes, <links|…>, <@mentions>, :emoji:.
function mrkdwn(text, inline) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let s = String(text || "");
  s = s.replace(/```([\s\S]*?)```/g, (w, code) => hold(`<pre>${escSlack(code.replace(/^\n/, ""))}</pre>`));
  s = s.replace(/`([^`\n]+)`/g, (w, code) => hold(`<code>${escSlack(code)}</code>`));
  s = s.replace(/<([^<>\n]+)>/g, (w, inner) => hold(special(inner)));
  s = escSlack(s);
  const edge = "(^|[\\s(\\u0000])";
  const end = "(?=$|[\\s).,:;!?\\u0000])";
  s = s.replace(new RegExp(`${edge}\\*([^*\\n]+?)\\*${end}`, "g"), "$1<b>$2</b>");
  s = s.replace(new RegExp(`${edge}_([^_\\n]+?)_${end}`, "g"), "$1<i>$2</i>");
  s = s.replace(new RegExp(`${edge}~([^~\\n]+?)~${end}`, "g"), "$1<s>$2</s>");
  s = emoji(s);
  if (!inline) {
    s = s.split("\n").map((line) => (line.startsWith("&gt; ") ? `<q>${line.slice(5)}</q>` : line)).join("\n");
    s = s.replace(/\n/g, "<br>");
  }
  return s.replace(/\u0000(\d+)\u0000/g, (w, i) => held[Number(i)]);
}

function textObject(obj) {
  if (!obj) return "";
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  const plain = esc(obj.text || "").replace(/\n/g, "<br>");
  return obj.emoji === false ? plain : emoji(plain);
}

function plainText(obj) {
  return obj ? String(obj.text || "") : "";
}

// --- Block Kit ---------------------------------------------------------------------------------------

function elementHtml(el, blockId) {
  const data = `data-block-id="${esc(blockId || "")}" data-element="${esc(JSON.stringify(el))}"`;
  if (el.type === "button") {
    const style = el.style ? ` bk-${el.style}` : "";
    if (el.url) {
      return `<a class="bk-button${style}" href="${esc(el.url)}" target="_blank" rel="noopener">${textObject(el.text)}</a>`;
    }
    return `<button type="button" class="bk-button${style}" ${data}>${textObject(el.text)}</button>`;
  }
  if (el.type === "static_select" || el.type === "overflow") {
    const options = (el.options || []).map((o) => `<option value="${esc(o.value)}">${esc(plainText(o.text))}</option>`);
    const placeholder = el.type === "overflow" ? "⋯" : plainText(el.placeholder) || "Select";
    return `<select class="bk-select" ${data}><option value="">${esc(placeholder)}</option>${options.join("")}</select>`;
  }
  if (el.type === "image") return `<span class="bk-image" title="${esc(el.alt_text || "")}">🖼</span>`;
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObject(el)}</span>`;
  return `<span class="bk-unsupported">[${esc(el.type)}]</span>`;
}

function inputHtml(block) {
  const el = block.element || {};
  const id = `in-${esc(block.block_id)}`;
  const attrs = `id="${id}" data-block-id="${esc(block.block_id)}" data-action-id="${esc(el.action_id)}"` +
    ` data-optional="${block.optional ? "1" : ""}" data-min="${el.min_length || ""}"`;
  let control;
  if (el.type === "plain_text_input") {
    const common = `${attrs} placeholder="${esc(plainText(el.placeholder))}"` +
      (el.max_length ? ` maxlength="${el.max_length}"` : "");
    control = el.multiline
      ? `<textarea ${common} rows="3">${esc(el.initial_value || "")}</textarea>`
      : `<input ${common} value="${esc(el.initial_value || "")}">`;
  } else if (el.type === "static_select") {
    const initial = el.initial_option ? el.initial_option.value : "";
    const options = (el.options || []).map((o) => {
      const selected = o.value === initial ? " selected" : "";
      return `<option value="${esc(o.value)}"${selected}>${esc(plainText(o.text))}</option>`;
    });
    const placeholder = `<option value="">${esc(plainText(el.placeholder) || "Select an item")}</option>`;
    control = `<select ${attrs}>${placeholder}${options.join("")}</select>`;
  } else {
    control = `<span class="bk-unsupported">[${esc(el.type)} input]</span>`;
  }
  const optional = block.optional ? ' <span class="muted">(optional)</span>' : "";
  const hint = block.hint ? `<div class="bk-hint">${textObject(block.hint)}</div>` : "";
  return `<div class="bk-input" data-input="${esc(block.block_id)}"><label for="${id}">${esc(plainText(block.label))}` +
    `${optional}</label>${control}${hint}<div class="bk-error" hidden></div></div>`;
}

function blockHtml(block) {
  const id = block.block_id || "";
  switch (block.type) {
    case "header":
      return `<div class="bk-header">${textObject(block.text)}</div>`;
    case "divider":
      return `<hr class="bk-divider">`;
    case "context":
      return `<div class="bk-context">${(block.elements || []).map((e) => elementHtml(e, id)).join(" ")}</div>`;
    case "actions":
      return `<div class="bk-actions">${(block.elements || []).map((e) => elementHtml(e, id)).join("")}</div>`;
    case "input":
      return inputHtml(block);
    case "image":
      return `<div class="bk-image-block">🖼 ${esc(block.alt_text || "image")}</div>`;
    case "section": {
      const text = block.text ? `<div class="bk-text">${textObject(block.text)}</div>` : "";
      const fields = block.fields
        ? `<div class="bk-fields">${block.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>`
        : "";
      const accessory = block.accessory ? `<div class="bk-accessory">${elementHtml(block.accessory, id)}</div>` : "";
      return `<div class="bk-section"><div class="bk-section-body">${text}${fields}</div>${accessory}</div>`;
    }
    default:
      return `<div class="bk-unsupported">[unsupported block: ${esc(block.type)}]</div>`;
  }
}

function blocksHtml(blocks) {
  return (blocks || []).map(blockHtml).join("");
}

// --- messages ----------------------------------------------------------------------------------------

function when(ts) {
  return clock(new Date(Number(ts) * 1000), false);
}

function avatar(name, bot) {
  const letter = bot ? "ob" : esc(name.slice(0, 1).toUpperCase());
  return `<div class="avatar${bot ? " bot" : ""}">${letter}</div>`;
}

function body(m) {
  const attachments = (m.attachments || [])
    .map((a) => `<div class="attachment" style="border-color:${esc(a.color || "#ddd")}">${mrkdwn(a.text || a.fallback || "")}</div>`)
    .join("");
  const content = m.blocks && m.blocks.length ? blocksHtml(m.blocks) : `<div class="bk-text">${mrkdwn(m.text)}</div>`;
  return content + attachments;
}

function messageHtml(m, channel, inThread) {
  const name = nameOf(m.user);
  const badge = m.bot ? '<span class="app-badge">APP</span>' : "";
  const edited = m.edited ? '<span class="muted edited">(edited)</span>' : "";
  const replies = !inThread && m.reply_count
    ? `<a href="#" class="replies" data-thread="${esc(m.ts)}">${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}</a>` +
      ` <span class="muted">last reply ${when(m.latest_reply)}</span>`
    : "";
  return `<div class="message" data-surface="message" data-channel="${esc(channel)}" data-ts="${esc(m.ts)}">` +
    `${avatar(name, m.bot)}<div class="message-main"><div class="message-head"><b>${esc(name)}</b>${badge}` +
    `<span class="muted">${when(m.ts)}</span>${edited}</div>${body(m)}<div class="thread-link">${replies}</div></div></div>`;
}

function ephemeralHtml(e) {
  const who = e.kind === "slackbot" || e.kind === "error" ? "Slackbot" : nameOf(ui.state.workspace.bot.id);
  const cls = e.kind === "error" ? " failed" : "";
  return `<div class="message ephemeral${cls}" data-surface="message" data-channel="${esc(e.channel)}" data-ts="${esc(e.ts)}">` +
    `${avatar(who, who !== "Slackbot")}<div class="message-main"><div class="message-head"><b>${esc(who)}</b>` +
    `<span class="muted">${when(e.ts)}</span></div><div class="only-you">👁 Only visible to you</div>${body(e)}</div></div>`;
}

function refusalHtml(r) {
  const detail = r.detail.length ? `<ul>${r.detail.map((d) => `<li>${esc(d)}</li>`).join("")}</ul>` : "";
  const where = r.channel ? ` in #${esc(channelName(r.channel))}` : "";
  return `<div class="slack-error" data-ts="${esc(r.ts)}"><b>Not shown: Slack refused opsbot's <code>${esc(r.method)}</code>` +
    `${where}</b> <span class="muted">${when(r.ts)}</span><div><code>${esc(r.error)}</code>` +
    `${r.status !== 200 ? ` (HTTP ${r.status})` : ""}</div>${detail}</div>`;
}

function timeline(items) {
  return items.sort((a, b) => Number(a.ts) - Number(b.ts)).map((i) => i.html).join("") ||
    '<div class="empty muted">Nothing here yet.</div>';
}

// --- rendering ---------------------------------------------------------------------------------------

function changed(key, value) {
  const text = JSON.stringify(value);
  if (ui.keys[key] === text) return false;
  ui.keys[key] = text;
  return true;
}

function fill(el, html) {
  const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
  const top = el.scrollTop;
  el.innerHTML = html;
  el.scrollTop = atBottom ? el.scrollHeight : top;
}

function render() {
  const s = ui.state;
  renderPeople(s);
  renderChannels(s);
  const eph = s.ephemerals;
  if (changed("channel", [ui.channel, s.channel, eph, s.errors, s.names])) {
    const items = s.channel.messages.map((m) => ({ ts: m.ts, html: messageHtml(m, ui.channel, false) }));
    eph.filter((e) => (e.channel === ui.channel || !e.channel) && !e.thread_ts)
      .forEach((e) => items.push({ ts: e.ts, html: ephemeralHtml(e) }));
    // A refusal names its channel, or none (views.open, views.publish): those show wherever the person is.
    s.errors.filter((r) => r.channel === ui.channel || !r.channel).forEach((r) => items.push({ ts: r.ts, html: refusalHtml(r) }));
    fill($("messages"), timeline(items));
  }
  $("channel-title").textContent = `# ${channelName(ui.channel)}`;
  $("composer").placeholder = `Message #${channelName(ui.channel)} (try /ops help)`;
  renderThread(s);
  renderApp(s);
  renderModal(s);
  renderErrors(s);
}

function renderPeople(s) {
  if (!changed("people", [s.people, ui.user])) return;
  $("user-switcher").innerHTML = s.people
    .map((p) => `<option value="${esc(p.id)}"${p.id === ui.user ? " selected" : ""}>${esc(p.name)}</option>`)
    .join("");
  const me = s.people.find((p) => p.id === ui.user);
  $("user-roles").textContent = me && me.roles.length ? me.roles.join(", ") : "no role (outsider)";
}

function renderChannels(s) {
  for (const c of s.channels) {
    if (!(c.id in ui.seen) || (c.id === ui.channel && ui.pane === "channel")) ui.seen[c.id] = c.count;
  }
  const items = s.channels.map((c) => {
    const active = c.id === ui.channel && ui.pane === "channel" ? " active" : "";
    const unread = c.count > ui.seen[c.id] ? " unread" : "";
    return `<a href="#" class="sidebar-item channel${active}${unread}" data-goto="${esc(c.id)}"># ${esc(c.name)}</a>`;
  });
  if (changed("channels", items)) $("channel-list").innerHTML = items.join("");
  $("app-link").classList.toggle("active", ui.pane === "app");
}

function renderThread(s) {
  const pane = $("thread");
  pane.hidden = !ui.thread || !s.thread;
  if (pane.hidden) return;
  if (!changed("thread", [s.thread, s.ephemerals, s.names])) return;
  const t = s.thread;
  $("thread-channel").textContent = `#${channelName(t.channel)}`;
  const replies = t.replies.map((m) => ({ ts: m.ts, html: messageHtml(m, t.channel, true) }));
  s.ephemerals.filter((e) => e.thread_ts === t.parent.ts).forEach((e) => replies.push({ ts: e.ts, html: ephemeralHtml(e) }));
  const count = `<div class="reply-count muted">${t.replies.length} ${t.replies.length === 1 ? "reply" : "replies"}</div>`;
  fill($("thread-body"), messageHtml(t.parent, t.channel, true) + count + timeline(replies));
}

function renderApp(s) {
  $("channel-view").hidden = ui.pane !== "channel";
  $("app-view").hidden = ui.pane !== "app";
  $("home").hidden = ui.tab !== "home";
  $("dm").hidden = ui.tab !== "messages";
  $("tab-home").classList.toggle("active", ui.tab === "home");
  $("tab-messages").classList.toggle("active", ui.tab === "messages");
  if (ui.pane !== "app") return;
  const elsewhere = s.errors.filter((r) => !r.channel);
  if (ui.tab === "home" && changed("home", [s.home, s.names, elsewhere])) {
    const home = $("home");
    home.dataset.surface = "view";
    home.dataset.viewId = s.home ? s.home.id : "";
    const view = s.home ? `<div class="home">${blocksHtml(s.home.blocks)}</div>` : '<div class="empty muted">Opening the Home tab…</div>';
    home.innerHTML = elsewhere.map(refusalHtml).join("") + view;
  }
  if (ui.tab === "messages" && changed("dm", [s.dm, s.errors, s.names])) {
    const items = s.dm.messages.map((m) => ({ ts: m.ts, html: messageHtml(m, s.dm.id, false) }));
    s.errors.filter((r) => r.channel === s.dm.id).forEach((r) => items.push({ ts: r.ts, html: refusalHtml(r) }));
    fill($("dm"), timeline(items));
  }
}

function renderErrors(s) {
  const n = s.errors.length;
  const toggle = $("errors-toggle");
  toggle.textContent = n ? `⚠ ${n} refused by Slack` : "No refusals";
  toggle.classList.toggle("alert", n > 0);
  if (changed("errors", s.errors)) {
    $("errors-list").innerHTML = s.errors.slice().reverse().map(refusalHtml).join("") ||
      '<div class="empty muted">Slack has refused nothing opsbot sent.</div>';
  }
}

function renderModal(s) {
  const overlay = $("modal-overlay");
  const m = s.modal;
  const key = m ? `${m.id}:${m.hash}` : null;
  if (key === ui.modalKey) return;
  ui.modalKey = key;
  overlay.hidden = !m;
  if (!m) return;
  const form = $("modal");
  form.dataset.surface = "view";
  form.dataset.viewId = m.id;
  const submit = m.submit ? `<button type="submit" class="bk-button bk-primary">${esc(plainText(m.submit))}</button>` : "";
  form.innerHTML = `<div class="dialog-head"><b>${esc(plainText(m.title))}</b>` +
    `<button type="button" class="quiet modal-close" aria-label="Close">✕</button></div>` +
    `<div class="dialog-body">${blocksHtml(m.blocks)}<div class="modal-error" hidden></div></div>` +
    `<div class="dialog-foot"><button type="button" class="bk-button modal-close">${esc(plainText(m.close) || "Cancel")}</button>${submit}</div>`;
  const first = form.querySelector("input, textarea, select");
  if (first) first.focus();
}

// --- talking to the sandbox --------------------------------------------------------------------------

function query() {
  const q = new URLSearchParams({ user: ui.user || "", channel: ui.channel || "" });
  if (ui.thread) q.set("thread", ui.thread);
  return q.toString();
}

async function refresh(force) {
  if (ui.inflight && !force) return;
  const asked = ++ui.asked;
  ui.inflight += 1;
  try {
    const q = query();
    const since = !force && q === ui.query && ui.version ? `&since=${encodeURIComponent(ui.version)}` : "";
    const reply = await fetch(`/api/state?${q}${since}`);
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error || reply.statusText);
    if (asked < ui.applied) return;  // a slower answer to an older question
    ui.applied = asked;
    ui.query = q;
    ui.version = data.version;
    if (data.unchanged) return;
    ui.state = data;
    if (!ui.user) ui.user = data.user;
    if (!ui.channel) ui.channel = data.channel.id;
    render();
  } catch (err) {
    console.error(err);
  } finally {
    ui.inflight -= 1;
  }
}

async function post(action, payload) {
  let outcome;
  try {
    const reply = await fetch(`/api/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: ui.user, ...payload }),
    });
    outcome = reply.headers.get("Content-Type") === "application/json"
      ? await reply.json()
      : { ok: false, error: `the sandbox answered HTTP ${reply.status} (its terminal says why)` };
  } catch (err) {
    outcome = { ok: false, error: `the sandbox did not answer: ${err.message}` };
  }
  if (outcome.error) toast(outcome.error);
  await refresh(true);
  refreshAws();
  return outcome;
}

async function refreshAws() {
  try {
    const data = await (await fetch("/api/aws")).json();
    const rows = data.instances.map((i) => {
      const note = data.notes[i.id] ? `<div class="muted small">${esc(data.notes[i.id])}</div>` : "";
      const replica = i.source ? `<div class="muted small">replica of ${esc(i.source)}${i.replication ? ` · ${esc(i.replication)}` : ""}</div>` : "";
      return `<div class="aws-row"><span class="status-dot ${esc(i.status)}"></span><b>${esc(i.id)}</b> ` +
        `<span class="muted small">${esc(i.status)} · ${esc(i.class)}</span>${replica}${note}</div>`;
    });
    if (changed("aws", rows)) $("aws").innerHTML = rows.join("");
  } catch (err) {
    console.error(err);
  }
}

function toast(text) {
  const el = document.createElement("div");
  el.className = "toast";
  el.textContent = text;
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), 8000);
}

function confirmFirst(confirm) {
  if (!confirm) return Promise.resolve(true);
  return new Promise((resolve) => {
    const overlay = $("confirm-overlay");
    const style = confirm.style === "danger" ? " bk-danger" : " bk-primary";
    $("confirm").innerHTML = `<div class="dialog-head"><b>${esc(plainText(confirm.title))}</b></div>` +
      `<div class="dialog-body">${textObject(confirm.text)}</div><div class="dialog-foot">` +
      `<button type="button" class="bk-button" data-answer="no">${esc(plainText(confirm.deny) || "Cancel")}</button>` +
      `<button type="button" class="bk-button${style}" data-answer="yes">${esc(plainText(confirm.confirm) || "Yes")}</button></div>`;
    overlay.hidden = false;
    overlay.onclick = (ev) => {
      const answer = ev.target.closest("[data-answer]");
      if (!answer && ev.target !== overlay) return;
      overlay.hidden = true;
      overlay.onclick = null;
      resolve(answer ? answer.dataset.answer === "yes" : false);
    };
  });
}

async function interact(control, value) {
  const element = JSON.parse(control.dataset.element);
  const surface = control.closest("[data-surface]");
  if (!surface) return;
  if (!(await confirmFirst(element.confirm))) return;
  const target = surface.dataset.surface === "view"
    ? { view_id: surface.dataset.viewId }
    : { channel: surface.dataset.channel, ts: surface.dataset.ts };
  control.disabled = true;
  try {
    await post("click", { ...target, action_id: element.action_id, block_id: control.dataset.blockId || null, value });
  } finally {
    control.disabled = false;
  }
}

function modalValues(form) {
  const values = {};
  let missing = false;
  form.querySelectorAll("[data-action-id]").forEach((input) => {
    const box = input.closest(".bk-input");
    const error = box.querySelector(".bk-error");
    const value = input.value.trim();
    let problem = "";
    if (!value && !input.dataset.optional) problem = "Please complete this required field.";
    else if (value && input.dataset.min && value.length < Number(input.dataset.min)) {
      problem = `Must be at least ${input.dataset.min} characters.`;
    }
    error.textContent = problem;
    error.hidden = !problem;
    missing = missing || Boolean(problem);
    if (value) values[input.dataset.blockId] = { [input.dataset.actionId]: value };
  });
  return missing ? null : values;
}

async function submitModal(form) {
  const values = modalValues(form);
  if (!values) return;
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const outcome = await post("submit", { view_id: form.dataset.viewId, values });
    for (const [blockId, message] of Object.entries(outcome.errors || {})) {
      const box = form.querySelector(`[data-input="${CSS.escape(blockId)}"] .bk-error`);
      if (box) { box.textContent = message; box.hidden = false; }
    }
    const general = form.querySelector(".modal-error");
    if (general) { general.textContent = outcome.error || ""; general.hidden = !outcome.error; }
  } finally {
    if (button) button.disabled = false;
  }
}

// --- navigation and wiring ---------------------------------------------------------------------------

function goChannel(id) {
  ui.pane = "channel";
  if (ui.channel !== id) ui.thread = null;
  ui.channel = id;
  ui.keys = {};
  refresh(true);
}

function openApp(tab) {
  ui.pane = "app";
  ui.tab = tab;
  ui.thread = null;
  ui.keys = {};
  if (tab === "home") post("home", {});
  else refresh(true);
}

function wire() {
  document.addEventListener("click", (ev) => {
    const goto = ev.target.closest("[data-goto]");
    if (goto) { ev.preventDefault(); goChannel(goto.dataset.goto); return; }
    const thread = ev.target.closest("[data-thread]");
    if (thread) {
      ev.preventDefault();
      ui.thread = thread.dataset.thread;
      ui.keys.thread = null;
      refresh(true);
      return;
    }
    const button = ev.target.closest("button.bk-button[data-element]");
    if (button) { ev.preventDefault(); interact(button, null); }
  });
  document.addEventListener("change", (ev) => {
    const select = ev.target.closest("select.bk-select[data-element]");
    if (select && select.value) interact(select, select.value);
  });
  $("composer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("composer");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await post("message", { channel: ui.channel, text });
  });
  $("suggestions").innerHTML = ["/ops help", "/ops list", "/ops rds.create-replica",
    "/ops rds.create-replica source=billing-db replica=billing-db-r1 env=prod"]
    .map((t) => `<button type="button" class="chip" data-suggest="${esc(t)}">${esc(t)}</button>`).join("");
  $("suggestions").addEventListener("click", (ev) => {
    const chip = ev.target.closest("[data-suggest]");
    if (chip) { $("composer").value = chip.dataset.suggest; $("composer").focus(); }
  });
  $("user-switcher").addEventListener("change", (ev) => {
    ui.user = ev.target.value;
    ui.keys = {};
    ui.modalKey = undefined;
    if (ui.pane === "app" && ui.tab === "home") post("home", {});
    else refresh(true);
  });
  $("app-link").addEventListener("click", (ev) => { ev.preventDefault(); openApp("home"); });
  $("tab-home").addEventListener("click", (ev) => { ev.preventDefault(); openApp("home"); });
  $("tab-messages").addEventListener("click", (ev) => { ev.preventDefault(); openApp("messages"); });
  $("thread-close").addEventListener("click", () => { ui.thread = null; refresh(true); });
  $("errors-toggle").addEventListener("click", () => { $("errors-panel").hidden = !$("errors-panel").hidden; });
  $("errors-close").addEventListener("click", () => { $("errors-panel").hidden = true; });
  const modal = $("modal");
  modal.addEventListener("submit", (ev) => { ev.preventDefault(); submitModal(modal); });
  modal.addEventListener("click", (ev) => {
    if (ev.target.closest(".modal-close")) post("close", { view_id: modal.dataset.viewId });
  });
}

wire();
refresh(true);
refreshAws();
setInterval(() => refresh(false), POLL_MS);
setInterval(refreshAws, AWS_POLL_MS);
