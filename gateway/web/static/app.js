// sortgw status page: the header, the alarms, the journal card, live
// updates over Server-Sent Events (greyed out with "no data since" when
// the gateway goes away), the chute dialog and the plan reload.
"use strict";
(function () {
  const S = window.sortgw;
  const { $, $$, h, badge, pct, hhmmss, condClass, sevClass, toast, action, confirmAction } = S;
  let snapshot = null;
  let lastData = 0; // Date.now() of the last snapshot
  let streamFailed = false;
  const condRank = { "sorting": 0, "degraded": 1, "stopped": 2, "no-data": 3, "fault": 4, "down": 5 };

  const stateClass = (st) => st === "ok" ? "" : (st === "failing" || st === "low" || st === "unknown") ? "warn" : "bad";

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
    f("kv").replaceChildren(...[["Queue", j.queued + " / " + j.capacity + " (" + Math.round(Math.min(j.fill, 1) * 100) + "%)"],
      ["Last commit", j.last_commit ? j.last_commit_age + " ago" : "none yet"],
      ["Commit errors", j.commit_errors + (j.last_error ? ": " + j.last_error : "")],
      ["Not kept", j.not_kept_total], ["Disk free", j.disk.free + " (" + pct(j.disk.free_pct) + ")"]]
      .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function title(n) {
    if (isStale()) return "no data since " + hhmmss(lastData) + " · sortgw status";
    return (n ? "(" + n + ") " : "") + "sortgw status";
  }

  // The header: the worst line's condition first, the alarm count, and
  // the active alarms on top, each with what to do.
  function renderHeader(s) {
    const lines = s.lines || [];
    const all = lines.flatMap((l) => l.alarms || []);
    let worst = "sorting";
    for (const l of lines) { const c = l.condition || "no-data"; if (condRank[c] > condRank[worst]) worst = c; }
    const gc = $("#gw-cond");
    if (gc) { gc.className = "badge big " + condClass(worst); gc.textContent = worst; }
    const ac = $("#alarm-count");
    ac.className = "badge " + (all.some((a) => a.severity === "critical") ? "bad" : all.length ? "warn" : "");
    ac.textContent = all.length + (all.length === 1 ? " alarm" : " alarms");
    document.title = title(all.length);
    const gs = $("#gw-state");
    gs.className = "badge " + (s.ready ? "" : s.draining ? "warn" : "bad");
    gs.textContent = s.ready ? "ready" : s.draining ? "draining" : "not ready";
    $("#gw-at").textContent = hhmmss(s.at);
    $("#alarms").hidden = all.length === 0;
    $("#alarm-list").replaceChildren(...all.map((a) => h("li", { class: "alarm " + sevClass(a.severity) },
      badge(sevClass(a.severity), a.severity), " ", h("b", {}, a.text), " ",
      h("small", {}, a.id + " · " + a.state + " · since " + hhmmss(a.since) + (a.acked_by ? " · acked by " + a.acked_by : "")),
      h("div", { class: "todo" }, a.action),
      a.state === "unacked" || a.state === "cleared-unacked" ? h("button", { type: "button", class: "action ack", "data-ack": a.id }, "Acknowledge") : "")));
  }

  // ack acknowledges an alarm in the technician's name: the session's, or
  // the one typed into the dialog (kept for the tab's next ack).
  async function ack(id) {
    const a = snapshot && snapshot.lines.flatMap((l) => l.alarms || []).find((x) => x.id === id);
    const sess = S.session();
    let by = sess && sess.name;
    if (!by) {
      const d = $("#ack-dialog");
      $("#ack-text").textContent = a ? a.text : id;
      $("#ack-by").value = sessionStorage.getItem("sortgw-name") || "";
      d.returnValue = "";
      const ok = await new Promise((resolve) => {
        d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
        d.showModal();
      });
      by = $("#ack-by").value.trim();
      if (!ok) return;
      if (!by) { toast("refused: acknowledging needs your name", true); return; }
      sessionStorage.setItem("sortgw-name", by);
    }
    const r = await action("/api/alarms/" + id.split("/").map(encodeURIComponent).join("/") + "/ack", { by });
    if (r) toast("alarm " + id + " acknowledged by " + by);
  }

  function render(s) {
    snapshot = s;
    lastData = Date.now();
    streamFailed = false;
    setStale(false);
    renderJournal(s.journal);
    renderHeader(s);
    for (const l of s.lines || []) {
      const sec = $('section.line[data-line="' + CSS.escape(l.name) + '"]');
      if (sec) S.renderLine(sec, l);
    }
  }

  // Stale: no snapshot for 5 s, or the stream failed and none for 2.5 s.
  function isStale() {
    if (!lastData) return streamFailed;
    const age = Date.now() - lastData;
    return age > 5000 || (streamFailed && age > 2500);
  }
  function setStale(on) {
    document.body.classList.toggle("stale", on);
    $("#gone").hidden = !on;
    if (on) {
      $("#gone-at").textContent = lastData ? hhmmss(lastData) : "the page was loaded";
      const live = $("#live");
      live.className = "badge bad";
      live.textContent = "no data since " + (lastData ? hhmmss(lastData) : "load");
      document.title = title(0);
    }
  }

  function connect() {
    const live = $("#live");
    const es = new EventSource("/events");
    es.addEventListener("snapshot", (ev) => {
      live.className = "badge";
      live.textContent = "live";
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    });
    es.onerror = () => {
      streamFailed = true;
      if (!isStale()) { live.className = "badge warn"; live.textContent = "reconnecting"; }
    };
    setInterval(() => { if (isStale()) setStale(true); }, 1000);
  }

  let dialogChute = null;
  function openChute(sec, n) {
    const line = sec.dataset.line;
    const l = snapshot && snapshot.lines.find((x) => x.name === line);
    const c = l && l.chutes[n - 1];
    const up = !!(l && l.link && l.link.up);
    dialogChute = { line, n, container: c ? c.container : "" };
    $("#cd-title").textContent = "Line " + line + " chute " + n;
    $("#cd-info").textContent = c ? ("container " + c.container + ", " + c.items + " items; " + c.count + " diverted since start" +
      (c.route ? "; route " + c.route : "") + (c.tech_disabled ? "; disabled by " + (c.disabled_by || "technician") : "") +
      (!up ? "; full and PLC-disabled unknown (PLC link down)" : (c.full ? "; full" : ""))) : "";
    // Only the actions that apply: a chute disabled at the PLC cannot be
    // enabled from here, and one not disabled needs no enable.
    const plcOnly = up && c && c.plc_disabled && !c.tech_disabled;
    $("#cd-plc").hidden = !(up && c && c.plc_disabled);
    $('#chute-dialog button[value="enable"]').hidden = !(c && c.tech_disabled);
    $('#chute-dialog button[value="disable"]').hidden = !!(c && c.tech_disabled) || plcOnly;
    const base = "/api/lines/" + encodeURIComponent(line) + "/manifests?format=";
    $("#cd-csv").href = base + "csv&container=" + encodeURIComponent(c ? c.container : "");
    $("#cd-json").href = base + "json&download=1&container=" + encodeURIComponent(c ? c.container : "");
    $("#cd-route").href = base + "csv&route=" + encodeURIComponent(c ? c.route || "" : "");
    $("#chute-dialog").showModal();
  }

  async function chuteAction(v) {
    if (!dialogChute || !["disable", "enable", "close"].includes(v)) return;
    const { line, n, container } = dialogChute;
    if (v === "close" && !(await confirmAction("Close container " + container + "?",
      "Its manifest is ended and a new container starts at chute " + n + ". This cannot be undone.", "Close container"))) {
      toast("chute " + n + ": close cancelled");
      return;
    }
    const r = await action("/api/lines/" + encodeURIComponent(line) + "/chutes/" + n + "/" + v);
    if (r) toast("chute " + n + ": " + v + (r.manifest ? " (" + r.manifest.container + ", " + r.manifest.items.length + " items)" : "") + " done");
  }

  async function reload(line) {
    if (!(await confirmAction("Reload the plan of line " + line + "?",
      "The plan file is read again and, if valid, replaces the active plan at once for every new decision.", "Reload plan"))) {
      toast("reload cancelled");
      return;
    }
    const r = await action("/api/lines/" + encodeURIComponent(line) + "/reload");
    if (r) toast("plan reloaded: " + r.lines.map((p) => p.name + " v" + p.version).join(", "));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const ti = $("#token");
    ti.value = S.token();
    ti.addEventListener("change", () => S.setToken(ti.value));
    $("#token-form").addEventListener("submit", (e) => { e.preventDefault(); S.setToken(ti.value); });
    S.loadSession();
    document.addEventListener("sortgw-session", () => S.loadSession());

    for (const sec of $$("section.line")) {
      $('[data-f="chutes"]', sec).addEventListener("click", (e) => {
        const b = e.target.closest("[data-chute]");
        if (b) openChute(sec, Number(b.dataset.chute));
      });
      $('[data-f="reload"]', sec).addEventListener("click", () => reload(sec.dataset.line));
    }
    $("#chute-dialog").addEventListener("close", () => chuteAction($("#chute-dialog").returnValue));
    $("#alarm-list").addEventListener("click", (e) => {
      const b = e.target.closest("[data-ack]");
      if (b) ack(b.dataset.ack);
    });

    connect();
  });
})();
