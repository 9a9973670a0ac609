// The dock's departures board: polls /api/routes and renders one card per
// route; close, load and depart go through the token-protected API with
// the same bearer token the status page keeps in sessionStorage.
(function () {
  "use strict";
  const TOKEN_KEY = "sortgw-token";
  const BY_KEY = "sortgw-by";
  const $ = (s) => document.querySelector(s);
  const board = $("#board");
  const every = Math.max(250, parseInt(board.dataset.refresh, 10) || 1000);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  function message(t, bad) { const m = $("#msg"); m.textContent = t; m.className = bad ? "bad" : "ok"; }
  function countdown(s) {
    const neg = s < 0; s = Math.abs(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return (neg ? "-" : "") + (h ? h + "h " : "") + String(m).padStart(2, "0") + ":" + String(x).padStart(2, "0");
  }
  async function act(path, body) {
    const headers = { "Content-Type": "application/json" };
    const t = sessionStorage.getItem(TOKEN_KEY) || "";
    if (t) headers["Authorization"] = "Bearer " + t;
    body.by = localStorage.getItem(BY_KEY) || "";
    body.source = "page";
    const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    const j = await res.json().catch(() => ({}));
    if (!res.ok) { message(j.error || res.statusText, true); return null; }
    refresh();
    return j;
  }
  function containers(title, list, cls, extra) {
    const ul = el("ul", { class: "conts " + cls });
    for (const c of list) {
      const li = el("li", { "data-container": c.container },
        el("a", { href: "/containers/" + encodeURIComponent(c.container) + "/label", target: "_blank" }, c.container),
        " chute " + c.chute + " · " + c.parcels + " parcels" + (c.van ? " · van " + c.van : ""));
      if (extra) li.append(extra(c));
      ul.append(li);
    }
    return el("div", { class: "group" }, el("h3", {}, title + " (" + list.length + ")"), ul);
  }
  function card(r) {
    const next = r.next ? new Date(r.next) : null;
    const van = el("input", { placeholder: "van", class: "van" });
    const dep = el("form", { class: "depart", onsubmit: async (e) => {
      e.preventDefault();
      const v = await act("/api/routes/" + encodeURIComponent(r.route) + "/depart", { van: van.value });
      if (v) message("van " + v.van + " departed: " + v.container_count + " containers, " + v.parcel_count + " parcels");
    } }, van, el("button", {}, "Depart"));
    return el("section", { class: "route " + r.status, "data-route": r.route },
      el("h2", {}, r.route, el("span", { class: "status" }, r.status)),
      el("p", { class: "next" }, next ? "next " + next.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }) : "no departure",
        next ? el("b", { class: "countdown" }, " " + countdown(r.countdown_s)) : ""),
      el("p", { class: "meta" }, "line " + r.line + " · chutes " + (r.chutes.join(", ") || "-") + " · van " + r.van_capacity +
        " containers · container " + r.container_capacity + " parcels · late: " + r.late_policy),
      containers("Open", r.open, "open", (c) => el("button", { class: "close", onclick: () => act("/api/containers/" + encodeURIComponent(c.container) + "/close", {}) }, "Close")),
      containers("Closed", r.closed, "closed"),
      containers("Loaded", r.loaded, "loaded"),
      dep);
  }
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch("/api/routes", { cache: "no-store" });
      const routes = await res.json();
      const f = document.activeElement;
      if (f && f.tagName === "INPUT" && f.value && f.closest("section.route")) return; // someone is typing a van id
      board.replaceChildren(...(routes.length ? routes.map(card) : [el("p", {}, "No routes with departures in the plan.")]));
    } catch (e) {
      message("board: " + e, true);
    } finally {
      busy = false;
    }
  }
  const ti = $("#token"), bi = $("#by");
  ti.value = sessionStorage.getItem(TOKEN_KEY) || "";
  bi.value = localStorage.getItem(BY_KEY) || "";
  ti.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, ti.value.trim()));
  bi.addEventListener("change", () => localStorage.setItem(BY_KEY, bi.value.trim()));
  $("#tok").addEventListener("submit", (e) => e.preventDefault());
  $("#load").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = $("#load-id").value.trim();
    const c = await act("/api/containers/" + encodeURIComponent(id) + "/load", { van: $("#load-van").value.trim() });
    if (c) { message(c.container + " loaded onto " + c.van); $("#load-id").value = ""; $("#load-id").focus(); }
  });
  refresh();
  setInterval(refresh, every);
})();
