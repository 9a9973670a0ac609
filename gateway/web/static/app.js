// sortgw status page: live updates over Server-Sent Events, technician
// actions with a bearer token kept in sessionStorage. No dependencies.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const TOKEN_KEY = "sortgw-token";
  let snapshot = null;

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  }
  const badge = (cls, text) => h("span", { class: "badge " + cls }, text);
  const pct = (f) => (Math.round(f * 10) / 10).toFixed(1) + "%";
  const hhmmss = (t) => { const d = new Date(t); return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false }); };
  const fill = (root) => $$(".fill", root).forEach((e) => { e.style.width = e.dataset.fill || "0%"; });

  function message(text, err) {
    const m = $("#msg");
    m.textContent = text;
    m.className = "msg" + (err ? " err" : "");
    m.hidden = !text;
    clearTimeout(message.t);
    if (text) message.t = setTimeout(() => { m.hidden = true; }, 6000);
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function showToken() {
    const t = token();
    $("#token-state").textContent = t ? "actions enabled" : "read-only";
  }

  async function action(url) {
    const headers = {};
    if (token()) headers["Authorization"] = "Bearer " + token();
    let res;
    try {
      res = await fetch(url, { method: "POST", headers });
    } catch (e) {
      message("request failed: " + e, true);
      return null;
    }
    let body = {};
    try { body = await res.json(); } catch (e) { /* empty */ }
    if (res.status === 401) { message("refused: enter the bearer token first", true); return null; }
    if (!res.ok) { message("refused (" + res.status + "): " + (body.error || res.statusText), true); return null; }
    return body;
  }

  function renderLinks(l) {
    const rows = [];
    const p = l.plc;
    rows.push(h("tr", {},
      h("td", {}, "PLC " + p.name + " ", h("small", {}, p.protocol + " " + p.addr)),
      h("td", {}, badge(p.state === "up" ? "ok" : "bad", p.state)),
      h("td", {}, p.heartbeat_age),
      h("td", {}, p.round_trip_p50 + " / " + p.round_trip_p99),
      h("td", {}, p.reconnects)));
    for (const s of l.scanners || []) {
      rows.push(h("tr", {},
        h("td", {}, "Scanner " + s.name + " ", h("small", {}, s.addr)),
        h("td", {}, badge(s.online ? "ok" : "bad", s.online ? "online" : s.state)),
        h("td", {}, s.heard_age),
        h("td", {}, "-"),
        h("td", {}, s.reconnects)));
    }
    return rows;
  }

  function kv(pairs) {
    const out = [];
    for (const [k, v] of pairs) { out.push(h("dt", {}, k)); out.push(h("dd", {}, v)); }
    return out;
  }

  function renderRates(r) {
    const t = (v, label) => h("div", { class: "tile" }, h("b", {}, v), h("span", {}, label));
    return [t(r.reads, "reads/min"), t(pct(r.noread_pct), "no-read"), t(pct(r.unknown_pct), "unknown"),
      t(pct(r.multiread_pct), "multi-read"), t(pct(r.sorted_pct), "sorted"), t(r.recirculated, "recirculated"),
      t(r.late, "host late"), t(r.lost, "lost")];
  }

  function chuteClass(c) {
    if (c.tech_disabled || c.plc_disabled) return "chute disabled";
    if (c.full) return "chute full";
    return "chute";
  }

  function renderChutes(grid, chutes) {
    // Update in place: a full rebuild of 2048 buttons every second is wasteful.
    const btns = grid.children;
    if (btns.length !== chutes.length) {
      grid.replaceChildren(...chutes.map((c) => h("button", { type: "button", "data-chute": c.n },
        h("b", {}, c.n), h("i", {}, ""), h("span", {}, ""), h("em", { class: "fill" }))));
    }
    chutes.forEach((c, i) => {
      const b = btns[i];
      b.className = chuteClass(c);
      b.title = c.container + (c.tech_disabled ? " (disabled by technician)" : c.plc_disabled ? " (disabled at PLC)" : c.full ? " (full)" : "");
      b.children[1].textContent = c.route || "";
      b.children[2].textContent = c.items + " / " + c.count;
      b.children[3].style.width = Math.round(Math.min(c.fill || 0, 1) * 100) + "%";
    });
  }

  function renderDiff(diff) {
    if (!diff || !diff.length) return [h("p", { class: "muted" }, "no changes in the last reload")];
    const rows = diff.slice(0, 200).map((c) => h("tr", {},
      h("td", {}, c.dest), h("td", {}, (c.old_chutes || []).join(",") + " → " + (c.new_chutes || []).join(",")),
      h("td", {}, (c.old_route || "") + (c.old_route !== c.new_route ? " → " + (c.new_route || "") : ""))));
    const t = h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Dest"), h("th", {}, "Chutes"), h("th", {}, "Route"))), h("tbody", {}, ...rows));
    return diff.length > 200 ? [t, h("p", { class: "muted" }, (diff.length - 200) + " more")] : [t];
  }

  const stateClass = (st) => st === "ok" ? "ok" : (st === "failing" || st === "low" || st === "unknown") ? "warn" : "bad";

  // The journal card: state first, then the numbers (ISA-101).
  function renderJournal(j) {
    const sec = $("#journal");
    if (!sec || !j) return;
    const f = (name) => $('[data-j="' + name + '"]', sec);
    f("state").className = "badge " + stateClass(j.state);
    f("state").textContent = j.state;
    f("disk").className = "badge " + stateClass(j.disk.state);
    f("disk").textContent = "disk " + j.disk.state;
    f("warning").textContent = j.warning || "";
    f("warning").hidden = !j.warning;
    f("kv").replaceChildren(...kv([["Since", hhmmss(j.since) + " (" + j.for + ")"],
      ["Queue", j.queued + " / " + j.capacity + " (" + Math.round(Math.min(j.fill, 1) * 100) + "%)"],
      ["Not kept", j.not_kept_total],
      ["Last commit", j.last_commit ? j.last_commit_age + " ago" : "none yet"],
      ["Commit errors", j.commit_errors + (j.last_error ? ": " + j.last_error : "")],
      ["Disk free", j.disk.free + " (" + pct(j.disk.free_pct) + ")"],
      ["When full", j.when_full + (j.holding_reads ? ": new reads stopped" : "")]]));
  }

  // Grey for normal, colour only when abnormal (ISA-101).
  const condClass = (c) => c === "sorting" ? "" : c === "degraded" ? "warn" : "bad";
  const condRank = { "sorting": 0, "degraded": 1, "stopped": 2, "no-data": 3, "fault": 4, "down": 5 };

  function renderAlarms(lines) {
    const all = lines.flatMap((l) => l.alarms || []);
    let worst = "sorting";
    for (const l of lines) { const c = l.condition || "no-data"; if (condRank[c] > condRank[worst]) worst = c; }
    const gc = $("#gw-cond");
    if (gc) { gc.className = "badge " + condClass(worst); gc.textContent = worst; }
    const ac = $("#alarm-count");
    ac.className = "badge " + (all.length ? "bad" : "");
    ac.textContent = all.length + " alarms";
    document.title = (all.length ? "(" + all.length + ") " : "") + "sortgw status";
    $("#alarms").hidden = all.length === 0;
    $("#alarm-list").replaceChildren(...all.map((a) => h("li", {},
      h("span", { className: "badge " + (a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "") }, a.severity), " ",
      h("b", {}, a.text), " ",
      h("small", {}, a.id + " since " + hhmmss(a.since) + (a.cleared ? ", cleared" : "") + (a.acked_by ? ", acked by " + a.acked_by : "")),
      h("br", {}), a.action)));
  }

  function render(s) {
    snapshot = s;
    renderJournal(s.journal);
    const gs = $("#gw-state");
    gs.className = "badge " + (s.ready ? "ok" : s.draining ? "warn" : "bad");
    gs.textContent = s.ready ? "ready" : s.draining ? "draining" : "not ready";
    $("#gw-at").textContent = hhmmss(s.at);
    renderAlarms(s.lines || []);
    for (const l of s.lines || []) {
      const sec = $('section.line[data-line="' + CSS.escape(l.name) + '"]');
      if (!sec) continue;
      const f = (name) => $('[data-f="' + name + '"]', sec);
      const rd = f("ready");
      const cond = l.condition || "no-data";
      rd.className = "badge " + condClass(cond);
      rd.textContent = l.draining ? "draining" : cond;
      rd.title = (l.reasons || []).join("; ");
      f("reasons").textContent = (l.reasons || []).join("; ");
      f("links").replaceChildren(...renderLinks(l));
      f("sorter").replaceChildren(...kv([["State", l.plc.sorter_state], ["Fault", l.plc.fault_code + " " + l.plc.fault],
        ["Plan", (l.plan.name || "none") + " v" + l.plan.version], ["Open items", l.open],
        ["Ring", l.plc.outstanding + " outstanding, " + l.plc.queued + " queued"]]));
      f("rates").replaceChildren(...renderRates(l.per_minute));
      renderChutes(f("chutes"), l.chutes || []);
      const err = l.plan.last_reload_error;
      f("plan").replaceChildren(...kv([["Name", l.plan.name || "none"], ["Version", l.plan.version],
        ["Last reload", err ? h("span", { class: "bad-text" }, err) : (l.plan.last_reload_at ? "ok " + hhmmss(l.plan.last_reload_at) : "-")],
        ["Changes", (l.plan.diff || []).length]]));
      f("diff").replaceChildren(...renderDiff(l.plan.diff));
    }
  }

  function connect() {
    const live = $("#live");
    const es = new EventSource("/events");
    es.addEventListener("snapshot", (ev) => {
      live.className = "badge ok";
      live.textContent = "live";
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    });
    es.onerror = () => { live.className = "badge bad"; live.textContent = "reconnecting"; };
  }

  let dialogChute = null;
  function openChute(sec, n) {
    const line = sec.dataset.line;
    const l = snapshot && snapshot.lines.find((x) => x.name === line);
    const c = l && l.chutes[n - 1];
    dialogChute = { line, n };
    $("#cd-title").textContent = "Line " + line + " chute " + n;
    $("#cd-info").textContent = c ? ("container " + c.container + ", " + c.items + " items; " + c.count + " since start" +
      (c.route ? "; route " + c.route : "") + (c.tech_disabled ? "; disabled by technician" : "") + (c.plc_disabled ? "; disabled at PLC" : "") + (c.full ? "; full" : "")) : "";
    const base = "/api/lines/" + encodeURIComponent(line) + "/manifests?format=";
    $("#cd-csv").href = base + "csv&container=" + encodeURIComponent(c ? c.container : "");
    $("#cd-json").href = base + "json&download=1&container=" + encodeURIComponent(c ? c.container : "");
    $("#cd-route").href = base + "csv&route=" + encodeURIComponent(c ? c.route || "" : "");
    $("#chute-dialog").showModal();
  }

  document.addEventListener("DOMContentLoaded", () => {
    fill(document);
    showToken();
    const ti = $("#token");
    ti.value = token();
    ti.addEventListener("change", () => {
      if (ti.value) sessionStorage.setItem(TOKEN_KEY, ti.value.trim()); else sessionStorage.removeItem(TOKEN_KEY);
      showToken();
    });
    $("#token-form").addEventListener("submit", (e) => { e.preventDefault(); ti.dispatchEvent(new Event("change")); });

    for (const sec of $$("section.line")) {
      const line = sec.dataset.line;
      $('[data-f="chutes"]', sec).addEventListener("click", (e) => {
        const b = e.target.closest("[data-chute]");
        if (b) openChute(sec, Number(b.dataset.chute));
      });
      $('[data-f="reload"]', sec).addEventListener("click", async () => {
        const r = await action("/api/lines/" + encodeURIComponent(line) + "/reload");
        if (r) message("plan reloaded: " + r.lines.map((p) => p.name + " v" + p.version).join(", "));
      });
    }
    $("#chute-dialog").addEventListener("close", async () => {
      const v = $("#chute-dialog").returnValue;
      if (!dialogChute || !["disable", "enable", "close"].includes(v)) return;
      const { line, n } = dialogChute;
      const r = await action("/api/lines/" + encodeURIComponent(line) + "/chutes/" + n + "/" + v);
      if (r) message("chute " + n + ": " + v + (r.manifest ? " (" + r.manifest.container + ", " + r.manifest.items.length + " items)" : "") + " done");
    });
    connect();
  });
})();
