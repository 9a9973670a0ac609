// sortgw status page, core: DOM helpers, the toast, who is logged in,
// actions (POST with the session's CSRF token or the bearer token) and
// the in-page confirmation dialog. No dependencies. Shared as
// window.sortgw with lineview.js, app.js and the other helpers' files.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const TOKEN_KEY = "sortgw-token";

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-") || k.startsWith("aria-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids.flat()) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  }
  const badge = (cls, text) => h("span", { class: "badge " + (cls || "") }, text);
  const pct = (f) => (Math.round(f * 10) / 10).toFixed(1) + "%";
  const hhmmss = (t) => {
    if (!t) return "";
    const d = new Date(t);
    return isNaN(d) || d.getFullYear() < 2000 ? "" : d.toLocaleTimeString([], { hour12: false });
  };
  // Grey for normal, colour only when abnormal (ISA-101).
  const condClass = (c) => c === "sorting" ? "" : c === "degraded" ? "warn" : "bad";
  const sevClass = (s) => s === "critical" ? "bad" : s === "warning" ? "warn" : "";

  // The toast: fixed at the bottom of the viewport, always in view, out
  // of the layout's flow (nothing moves under the technician's finger).
  function toast(text, err) {
    const m = $("#msg");
    m.textContent = text;
    m.className = "toast" + (err ? " err" : " ok");
    m.hidden = !text;
    clearTimeout(toast.t);
    if (text) toast.t = setTimeout(() => { m.hidden = true; }, err ? 10000 : 5000);
  }

  // Who is acting: the session (GET /api/session, or auth.js's
  // window.sortgwSession) or the bearer token typed in. null: unknown.
  let session = null;
  let sessionAPI = true; // false once /api/session answered 404
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  async function loadSession() {
    // Asked here rather than read from auth.js's window.sortgwSession,
    // so this works with or without the login block; auth.js sends
    // "sortgw-session" after a login, a logout or a token check.
    let s = null;
    if (sessionAPI) {
      const headers = {};
      if (token()) headers["Authorization"] = "Bearer " + token();
      try {
        const res = await fetch("/api/session", { headers, credentials: "same-origin" });
        if (res.status === 404) sessionAPI = false;
        else if (res.status === 401) s = { auth: "none", read_only: false, rejected: true };
        else if (res.ok) s = await res.json();
      } catch (e) { /* the gateway is away: the stale banner says so */ }
    }
    session = s;
    showWho();
    return s;
  }

  // The header never claims more than is known: with a session API the
  // gateway says who this is; without one a typed token is "not checked"
  // until an action succeeds with it.
  let tokenWorked = false;
  function showWho() {
    const who = $("#who");
    if (!who) return;
    let text = "read-only", cls = "who";
    if (session && !session.read_only && session.auth && session.auth !== "none") {
      text = (session.name || "technician") + (session.role ? " (" + session.role + ")" : "") + ": actions enabled";
      cls = "who on";
    } else if (session) {
      text = (session.name ? session.name + ": " : "") + "read-only";
      if (token() && (session.auth === "none" || session.rejected)) text = "token refused: read-only";
    } else if (token()) {
      text = tokenWorked ? "token accepted: actions enabled" : "token entered (not checked yet)";
      cls = tokenWorked ? "who on" : "who";
    }
    // No token configured and no login: nothing can act from this page.
    const ti = $("#token");
    const noAuth = ti && ti.disabled && (!session || session.auth === "none" || (session.read_only && !session.login_enabled));
    if (noAuth) text = "read-only: actions disabled";
    who.textContent = text;
    who.className = cls;
    document.body.classList.toggle("read-only", noAuth || (!!session && !!session.read_only));
  }

  function setToken(v) {
    if (v) sessionStorage.setItem(TOKEN_KEY, v.trim()); else sessionStorage.removeItem(TOKEN_KEY);
    tokenWorked = false;
    return loadSession();
  }

  // action POSTs to url and shows the result in the toast: the refusal
  // with the server's message, or null; done returns the body.
  async function action(url, body) {
    const headers = {};
    if (session && session.auth === "session" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (session && session.name) headers["X-Sortgw-By"] = session.name;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, { method: "POST", headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      toast("refused: the gateway did not answer (" + e + ")", true);
      return null;
    }
    let out = {};
    try { out = await res.json(); } catch (e) { /* empty */ }
    if (res.status === 401 || res.status === 403) {
      tokenWorked = false;
      showWho();
      toast("refused: " + (out.error || "log in or enter the bearer token first"), true);
      return null;
    }
    if (!res.ok) { toast("refused: " + (out.error || res.statusText) + " (" + res.status + ")", true); return null; }
    if (token()) { tokenWorked = true; showWho(); }
    return out;
  }

  // confirm asks in an in-page dialog (not window.confirm): resolves
  // true only for the confirm button.
  function confirmAction(title, text, okLabel) {
    const d = $("#confirm-dialog");
    $("#cf-title").textContent = title;
    $("#cf-text").textContent = text;
    $("#cf-ok").textContent = okLabel || "Confirm";
    d.returnValue = "";
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
      d.showModal();
    });
  }

  window.sortgw = { $, $$, h, badge, pct, hhmmss, condClass, sevClass, toast, action, confirmAction,
    loadSession, setToken, token, showWho, session: () => session };
})();
