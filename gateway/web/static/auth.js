// sortgw status page: technician login. Asks /api/session who this page
// is, logs in and out through the header's dialog, and gives the rest of
// the page two things:
//   window.sortgwSession = {name, role, csrf, readOnly, auth, canAct}
//   window.sortgwFetch(url, opts): fetch with the session's CSRF header
//     (and the bearer token when one is entered), JSON content type for
//     a string body.
// Buttons with data-action are disabled while this page cannot act
// (read-only mode, not logged in, a viewer). No dependencies.
"use strict";
(function () {
  const TOKEN_KEY = "sortgw-token"; // app.js keeps the entered token here
  const $ = (sel) => document.querySelector(sel);
  const session = { name: "", role: "", csrf: "", readOnly: false, auth: "none", canAct: false, loginEnabled: false };
  window.sortgwSession = session;

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  window.sortgwFetch = function (url, opts) {
    opts = Object.assign({ credentials: "same-origin" }, opts || {});
    const headers = new Headers(opts.headers || {});
    if (session.csrf) headers.set("X-CSRF-Token", session.csrf);
    if (token() && !headers.has("Authorization")) headers.set("Authorization", "Bearer " + token());
    if (typeof opts.body === "string" && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    opts.headers = headers;
    return fetch(url, opts);
  };

  // gate disables every data-action button while the page cannot act;
  // the page re-renders, so new buttons are caught as they appear.
  function gate(root) {
    const off = !session.canAct;
    const why = session.readOnly ? "read-only mode" : (session.auth === "none" ? "log in first" : "your role may not act");
    for (const b of (root || document).querySelectorAll("[data-action]")) {
      if (b.disabled !== off) b.disabled = off;
      if (off) b.title = why; else if (b.title === "read-only mode" || b.title === "log in first" || b.title === "your role may not act") b.title = "";
    }
  }

  function show(state) {
    const el = $("#auth-state");
    const btn = $("#login-btn");
    if (!el || !btn) return;
    el.className = "muted";
    if (state === "token-rejected") {
      el.textContent = "token rejected";
      el.className = "bad-text";
    } else if (session.auth === "session") {
      el.textContent = session.name + " (" + session.role + ")";
    } else if (session.auth === "token") {
      el.textContent = "token";
    } else if (session.readOnly) {
      el.textContent = "read-only";
    } else {
      el.textContent = session.loginEnabled ? "not logged in" : "";
    }
    if (session.readOnly && session.auth !== "none" && state !== "token-rejected") el.textContent += " · read-only";
    btn.textContent = session.auth === "session" ? "Log out" : "Log in";
    btn.hidden = !session.loginEnabled && session.auth !== "session";
    document.body.classList.toggle("read-only", !session.canAct);
    gate();
    document.dispatchEvent(new Event("sortgw-session")); // core.js asks again
  }

  function apply(v) {
    session.name = v.name || "";
    session.role = v.role || "";
    session.csrf = v.csrf || "";
    session.auth = v.auth || "none";
    session.readOnly = !!v.read_only;
    session.loginEnabled = !!v.login_enabled;
    session.canAct = !session.readOnly && (session.auth === "token" || (session.auth === "session" && session.role !== "viewer"));
  }

  // refresh asks the gateway who this page is; a wrong token is said at once.
  async function refresh() {
    const headers = {};
    if (token()) headers["Authorization"] = "Bearer " + token();
    let res;
    try {
      res = await fetch("/api/session", { headers, credentials: "same-origin" });
    } catch (e) {
      return;
    }
    let body = {};
    try { body = await res.json(); } catch (e) { /* empty */ }
    if (res.status === 401) {
      apply({ read_only: session.readOnly, login_enabled: session.loginEnabled });
      show("token-rejected");
      return;
    }
    if (res.ok) apply(body);
    show();
  }

  async function login(e) {
    e.preventDefault();
    const err = $("#login-error");
    err.textContent = "";
    const name = $("#login-name").value.trim();
    const pin = $("#login-pin").value;
    let res;
    try {
      res = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, pin }),
      });
    } catch (ex) {
      err.textContent = "login failed: " + ex;
      return;
    }
    let body = {};
    try { body = await res.json(); } catch (ex) { /* empty */ }
    if (!res.ok) {
      err.textContent = body.error || ("login refused (" + res.status + ")");
      $("#login-pin").value = "";
      return;
    }
    $("#login-pin").value = "";
    $("#login-dialog").close();
    await refresh();
  }

  async function logout() {
    try {
      await window.sortgwFetch("/api/logout", { method: "POST" });
    } catch (e) { /* the cookie stays until it expires */ }
    apply({ read_only: session.readOnly, login_enabled: session.loginEnabled });
    await refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const btn = $("#login-btn");
    const dlg = $("#login-dialog");
    if (!btn || !dlg) return;
    btn.addEventListener("click", () => {
      if (session.auth === "session") { logout(); return; }
      $("#login-error").textContent = "";
      dlg.showModal();
      $("#login-name").focus();
    });
    $("#login-form").addEventListener("submit", login);
    $("#login-cancel").addEventListener("click", () => dlg.close());
    // The token is checked as soon as it is entered (app.js stores it on change).
    const ti = $("#token");
    if (ti) ti.addEventListener("change", () => setTimeout(refresh, 0));
    new MutationObserver(() => gate()).observe(document.body, { childList: true, subtree: true });
    refresh();
  });
})();
