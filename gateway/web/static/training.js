// sortgw training panel: switches faults of the emulated sorter (the demo
// only). The panel stays hidden unless GET /api/training answers; the
// switches need the same bearer token as the page's other actions. No
// dependencies; kept apart from app.js so that the page can change
// around it.
"use strict";
(() => {
  const TOKEN_KEY = "sortgw-token"; // the page's token (app.js)
  const POLL_MS = 3000;
  let faults = [];

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) e.append(k);
    return e;
  }

  function say(text, bad) {
    const m = document.getElementById("training-msg");
    if (!m) return;
    m.textContent = text;
    m.classList.toggle("bad-text", !!bad);
    // A refusal must be read where it happened, even if an alarm banner
    // has pushed the panel down since the click.
    if (bad) m.scrollIntoView({ block: "center" });
  }

  async function load() {
    let res;
    try {
      res = await fetch("/api/training", { cache: "no-store" });
    } catch (e) {
      return; // the page shows the lost connection itself
    }
    const box = document.getElementById("training");
    box.dataset.status = res.status; // what the last poll got (tests wait on it)
    if (res.status === 404) { box.hidden = true; return; }
    if (!res.ok) return;
    const body = await res.json();
    faults = body.faults || [];
    render();
    box.hidden = !body.enabled;
  }

  function render() {
    const ul = document.getElementById("training-faults");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.tid : "";
    const chuteVal = (document.getElementById("training-chute") || {}).value || "";
    ul.replaceChildren(...faults.map((f) => {
      const box = el("input", { type: "checkbox", checked: f.active, className: "training-switch" });
      box.setAttribute("role", "switch");
      box.setAttribute("aria-checked", String(f.active));
      box.dataset.tid = f.id;
      box.addEventListener("change", () => toggle(f.id, box));
      const label = el("label", { className: "training-label" }, box, " ", el("b", { textContent: f.label }),
        " ", el("span", { className: "badge " + (f.active ? "warn" : ""), textContent: f.active ? "on" : "off" }));
      const li = el("li", { className: f.active ? "active" : "" }, label);
      if (f.id === "chute-full") {
        const chute = el("input", { type: "number", min: 1, id: "training-chute", value: chuteVal, placeholder: "chute" });
        chute.setAttribute("aria-label", "chute number for chute full");
        li.append(" ", chute);
      }
      li.append(el("small", { className: "training-help", textContent: f.help }));
      return li;
    }));
    if (focused) {
      const again = ul.querySelector('[data-tid="' + focused + '"]');
      if (again) again.focus();
    }
  }

  async function toggle(id, box) {
    const on = box.checked;
    const body = { on };
    if (id === "chute-full") {
      const v = parseInt((document.getElementById("training-chute") || {}).value, 10);
      if (v > 0) body.chute = v;
    }
    const headers = { "Content-Type": "application/json" };
    const tok = sessionStorage.getItem(TOKEN_KEY) || "";
    if (tok) headers["Authorization"] = "Bearer " + tok;
    box.disabled = true;
    say((on ? "switching on: " : "switching off: ") + id);
    let res, ans = {};
    try {
      res = await fetch("/api/training/" + encodeURIComponent(id), { method: "POST", headers, body: JSON.stringify(body) });
      try { ans = await res.json(); } catch (e) { /* empty */ }
    } catch (e) {
      box.checked = !on;
      box.disabled = false;
      say("request failed: " + e, true);
      return;
    }
    box.disabled = false;
    if (!res.ok) {
      box.checked = !on;
      say(res.status === 401 ? "refused: enter the bearer token first" : "refused (" + res.status + "): " + (ans.error || res.statusText), true);
      return;
    }
    faults = ans.faults || faults;
    render();
    say(id + (on ? " on" : " off") + (body.chute ? " (chute " + body.chute + ")" : "") + " — watch the line and its alarms");
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!document.getElementById("training")) return;
    load();
    setInterval(load, POLL_MS);
  });
})();
