// sortgw status page: the item list of each line (GET /api/items). One
// row per pass of an item, its decision and outcome together. The live
// list polls the newest passes of the line; a search looks on every line
// for a TID, a barcode (with or without its symbology identifier), a
// tracking number or a ZIP. "Older" pages back through the journal.
// Independent of app.js: it owns only the elements inside its block.
"use strict";
(function () {
  const POLL_MS = 2000;
  const $ = (sel, root) => (root || document).querySelector(sel);

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  }
  const hhmmss = (t) => { const d = new Date(t); return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false }); };
  const full = (t) => { const d = new Date(t); return isNaN(d) ? "" : d.toLocaleString([], { hour12: false }); };
  // GS (0x1D) separates GS1 fields; show it as a visible mark.
  const showCode = (c) => c.replace(/\x1d/g, "\u241d");
  const SORTED = new Set(["diverted", "diverted-other"]);

  function outcomeCell(r) {
    if (r.outcome === "open") return h("td", { class: "muted" }, "open");
    const cls = SORTED.has(r.outcome) ? "" : "badge warn";
    const text = r.outcome + (r.detail ? " (" + r.detail + ")" : "");
    const td = h("td", {}, cls ? h("span", { class: cls }, text) : text);
    if (r.outcome_at) td.title = "at " + full(r.outcome_at) + (r.container ? ", container " + r.container : "");
    return td;
  }

  function row(r) {
    const tr = h("tr", { "data-seq": r.seq },
      h("td", { title: full(r.read_at) }, hhmmss(r.read_at)),
      h("td", {}, r.tid),
      h("td", { class: "i-opt" }, r.pass),
      h("td", { class: "i-line" }, r.line),
      h("td", { class: "codes" }, r.noread ? "no read" : (r.codes || []).map(showCode).join(" ")),
      h("td", { class: "i-opt codes" }, r.package_id || ""),
      h("td", { title: r.postal ? "postal code " + r.postal : "" }, r.destination || ""),
      h("td", { title: r.route ? "route " + r.route : "" }, r.chute || ""),
      h("td", { class: "i-opt" }, r.reason || ""),
      outcomeCell(r));
    if (r.outcome !== "open" && !SORTED.has(r.outcome)) tr.className = "exception";
    return tr;
  }

  function ItemList(box) {
    const line = box.dataset.items;
    const form = $('[data-i="form"]', box);
    const input = form.q;
    const rowsEl = $('[data-i="rows"]', box);
    const status = $('[data-i="status"]', box);
    const pauseBtn = $('[data-i="pause"]', box);
    const exc = $('[data-i="exceptions"]', box);
    const olderBtn = $('[data-i="older"]', box);
    const liveBtn = $('[data-i="live"]', box);
    const table = $("table", box);
    if (document.querySelectorAll("[data-items]").length > 1) table.classList.add("multi-line");
    let q = "";          // the search shown; "" is the live list
    let paused = false;  // the live list stops refreshing
    let next = null;     // cursor of the next older page
    let timer = null;
    let gen = 0;         // drops answers to superseded requests

    function url(before) {
      const p = new URLSearchParams();
      if (q) p.set("q", q); else p.set("line", line);
      if (exc.checked) p.set("exceptions", "1");
      if (before) p.set("before", before);
      p.set("limit", "50");
      return "/api/items?" + p.toString();
    }

    function say(text, err) {
      status.textContent = text;
      status.className = err ? "bad-text" : "muted";
    }

    function empty() {
      let text = q ? "nothing found for " + q : (exc.checked ? "no exceptions" : "no passes yet");
      if (next) text += " in the passes looked at; Older looks further back";
      return h("tr", {}, h("td", { colspan: "10", class: "muted" }, text));
    }

    function showState() {
      pauseBtn.textContent = paused ? "Resume" : "Pause";
      pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
      pauseBtn.hidden = !!q;
      liveBtn.hidden = !q;
      olderBtn.hidden = !next;
    }

    async function load(before) {
      const my = ++gen;
      let res, body;
      try {
        res = await fetch(url(before), { headers: { Accept: "application/json" } });
        body = await res.json();
      } catch (e) {
        if (my === gen) say("item list: " + e, true);
        return false;
      }
      if (my !== gen) return false;
      if (!res.ok) { say((body && body.error) || res.statusText, true); return false; }
      next = body.next;
      const rows = (body.items || []).map(row);
      if (before) {
        rowsEl.querySelectorAll("tr:not([data-seq])").forEach((tr) => tr.remove());
        rowsEl.append(...rows);
      } else {
        rowsEl.replaceChildren(...rows);
      }
      if (!rowsEl.children.length || (!rows.length && !before)) rowsEl.replaceChildren(empty());
      const n = rowsEl.querySelectorAll("tr[data-seq]").length;
      say(q ? n + " passes for \u201c" + q + "\u201d (all lines)" : (paused ? "paused, " : "live, ") + n + " newest passes");
      showState();
      return true;
    }

    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (q || paused) return;
      timer = setTimeout(async () => {
        if (!document.hidden) await load();
        schedule();
      }, POLL_MS);
    }

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      q = input.value.trim();
      load().then(schedule);
    });
    liveBtn.addEventListener("click", () => {
      q = "";
      input.value = "";
      load().then(schedule);
    });
    pauseBtn.addEventListener("click", () => {
      paused = !paused;
      showState();
      if (paused) say("paused", false); else load();
      schedule();
    });
    exc.addEventListener("change", () => load().then(schedule));
    olderBtn.addEventListener("click", () => {
      if (!next) return;
      // Older rows below a live list that refreshes would vanish: pause.
      if (!q && !paused) { paused = true; schedule(); }
      load(next);
    });
    load().then(schedule);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-items]").forEach(ItemList);
  });
})();
