// sortgw status page: one line's section. State before numbers, grey for
// normal and colour only for what is abnormal (ISA-101); values that come
// from the PLC show as unknown while its link is down.
"use strict";
(function () {
  const { $, h, badge, pct, hhmmss, condClass } = window.sortgw;
  const SVG = "http://www.w3.org/2000/svg";

  const kv = (pairs) => pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
  const unknown = () => h("span", { class: "unknown" }, "unknown");
  const sorterClass = (s) => s === "running" ? "" : (s === "emergency stop" || s === "fault") ? "bad" : s === "unknown" ? "" : "warn";

  function banner(l) {
    if (l.link.up || !l.link.cause) return []; // up, or not started yet
    const out = [h("b", {}, "PLC link " + l.plc.state)];
    if (l.link.since) out.push(" since " + hhmmss(l.link.since) + " (" + l.link.for + ")");
    out.push(": " + (l.link.cause || "no answer"), h("br", {}), h("span", { class: "next" }, "Next step: " + l.link.next));
    out.push(h("br", {}), h("small", {}, "Sorter state and chute bits are unknown until the link is back; the values shown are greyed."));
    return out;
  }

  function sorter(l, up) {
    const st = up ? l.plc.sorter_state : "unknown";
    const fault = !up ? unknown() : l.plc.fault_code ? badge("bad", l.plc.fault_code + " " + l.plc.fault) : l.plc.fault === "unknown" ? unknown() : "none";
    return kv([["State", st === "unknown" ? unknown() : badge(sorterClass(st), st)], ["Fault", fault],
      ["Plan", (l.plan.name || "none") + " v" + l.plan.version], ["Open items", l.open],
      ["Ring", up ? l.plc.outstanding + " outstanding, " + l.plc.queued + " queued" : unknown()]]);
  }

  function links(l) {
    const p = l.plc;
    const rows = [h("tr", {}, h("td", {}, "PLC " + p.name, h("small", {}, p.protocol + " " + p.addr)),
      h("td", {}, badge(p.state === "up" ? "" : "bad", p.state)), h("td", {}, p.heartbeat_age, h("small", {}, p.reconnects + " reconn.")))];
    for (const s of l.scanners || []) {
      rows.push(h("tr", {}, h("td", {}, "Scanner " + s.name, h("small", {}, s.addr)),
        h("td", {}, badge(s.online ? "" : "bad", s.online ? "online" : s.state)), h("td", {}, s.heard_age, h("small", {}, s.reconnects + " reconn."))));
    }
    return rows;
  }

  function linkEvents(evs) {
    if (!evs || !evs.length) return [];
    return [h("h4", {}, "Recent PLC link events"), h("ul", {}, evs.map((e) => h("li", { class: e.to === "up" ? "" : "bad-text" },
      hhmmss(e.at) + " " + e.from + " → " + e.to + (e.cause ? ": " + e.cause : ""))))];
  }

  function shift(s) {
    if (!s) return kv([["Shift", h("span", { class: "muted" }, "no shifts configured")]]);
    return kv([["Shift", s.name + " from " + hhmmss(s.start).slice(0, 5)], ["Counting since", hhmmss(s.since) + (s.partial ? " (gateway start)" : "")],
      ["Sorted", s.sorted], ["Exceptions", s.exceptions], ["Total", s.total]]);
  }

  function tiles(t) {
    return (t.tiles || []).map((x) => {
      const parts = (x.parts || []).filter((p) => p.count > 0).map((p) => p.name + " " + p.count).join(", ");
      return h("div", { class: "tile " + (x.level || ""), "data-tile": x.key },
        h("b", {}, t.total ? pct(x.pct) : "–"), h("span", {}, x.label), h("small", {}, t.total ? x.count + (parts ? " · " + parts : "") : "no data"));
    });
  }

  // The trend: one bar per minute, sorted (dark) over all outcomes (light).
  function trend(el, pts) {
    pts = pts || [];
    const max = Math.max(1, ...pts.map((p) => p.outcomes));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 600 100");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const last = pts.length ? pts[pts.length - 1] : null;
    svg.setAttribute("aria-label", "sorted per minute, last hour" + (last ? "; this minute " + last.sorted + " of " + last.outcomes : ""));
    const bw = 10;
    pts.forEach((p, i) => {
      const x = (60 - pts.length + i) * bw;
      for (const [v, cls] of [[p.outcomes, "all"], [p.sorted, "sorted"]]) {
        const r = document.createElementNS(SVG, "rect");
        const hgt = Math.round(v / max * 96);
        r.setAttribute("x", x + 1); r.setAttribute("width", bw - 2);
        r.setAttribute("y", 100 - hgt); r.setAttribute("height", hgt);
        r.setAttribute("class", cls);
        const tt = document.createElementNS(SVG, "title");
        tt.textContent = hhmmss(p.at).slice(0, 5) + ": " + p.sorted + " sorted of " + p.outcomes;
        r.append(tt);
        svg.append(r);
      }
    });
    const first = pts.length ? hhmmss(pts[0].at).slice(0, 5) : "";
    el.replaceChildren(svg, h("div", { class: "axis" }, h("span", {}, first), h("span", {}, "max " + max + "/min"),
      h("span", {}, last ? "now: " + last.sorted + " sorted / " + last.outcomes : "no data")));
  }

  function chuteState(c, up) {
    if (c.tech_disabled) return ["chute disabled", "disabled by " + (c.disabled_by || "technician")];
    if (!up) return ["chute unknown", "unknown: PLC link down"];
    if (c.plc_disabled) return ["chute disabled", "disabled at the PLC"];
    if (c.full) return ["chute full", "full"];
    return ["chute", ""];
  }

  function chutes(grid, cs, up) {
    // Update in place: a full rebuild of 2048 buttons every second is wasteful.
    const btns = grid.children;
    if (btns.length !== cs.length) {
      grid.replaceChildren(...cs.map((c) => h("button", { type: "button", "data-chute": c.n },
        h("b", {}, c.n), h("i", {}, ""), h("span", {}, ""), h("em", { class: "fill" }))));
    }
    cs.forEach((c, i) => {
      const b = btns[i];
      const [cls, why] = chuteState(c, up);
      if (b.className !== cls) b.className = cls;
      b.title = "chute " + c.n + ", " + c.container + (why ? " (" + why + ")" : "");
      b.children[1].textContent = c.route || "";
      b.children[2].textContent = c.items + " / " + c.count;
      b.children[3].style.width = Math.round(Math.min(c.fill || 0, 1) * 100) + "%";
    });
  }

  function chuteLists(cs, up) {
    const full = up ? cs.filter((c) => c.full) : [];
    const dis = cs.filter((c) => c.tech_disabled || (up && c.plc_disabled));
    const item = (c, since, who) => h("li", {}, h("b", {}, "chute " + c.n), (c.route ? " (" + c.route + ")" : "") +
      (since ? " since " + hhmmss(since) : "") + (who ? ", by " + who : ""));
    const out = [];
    if (!up) out.push(h("p", { class: "unknown" }, "Full and PLC-disabled chutes unknown while the PLC link is down."));
    out.push(h("div", {}, h("h4", {}, "Full (" + full.length + ")"),
      full.length ? h("ul", {}, full.slice(0, 50).map((c) => item(c, c.full_since, "PLC sensor"))) : h("p", { class: "muted" }, "none")));
    out.push(h("div", {}, h("h4", {}, "Disabled (" + dis.length + ")"),
      dis.length ? h("ul", {}, dis.slice(0, 50).map((c) => item(c, c.disabled_since, c.disabled_by || (c.tech_disabled ? "technician" : "PLC")))) : h("p", { class: "muted" }, "none")));
    return out;
  }

  function diff(d) {
    if (!d || !d.length) return [h("p", { class: "muted" }, "no changes in the last reload")];
    const rows = d.slice(0, 200).map((c) => h("tr", {},
      h("td", {}, c.dest), h("td", {}, (c.old_chutes || []).join(",") + " → " + (c.new_chutes || []).join(",")),
      h("td", {}, (c.old_route || "") + (c.old_route !== c.new_route ? " → " + (c.new_route || "") : ""))));
    const t = h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Dest"), h("th", {}, "Chutes"), h("th", {}, "Route"))), h("tbody", {}, rows)));
    return d.length > 200 ? [t, h("p", { class: "muted" }, (d.length - 200) + " more")] : [t];
  }

  // renderLine draws one line's snapshot into its section.
  function renderLine(sec, l) {
    const f = (name) => $('[data-f="' + name + '"]', sec);
    l.link = l.link || {};
    l.outcome_tiles = l.outcome_tiles || { window: "0s", total: 0, tiles: [] };
    const up = !!l.link.up;
    sec.classList.toggle("plc-unknown", !up);
    const cond = l.condition || "no-data";
    const cb = f("cond");
    cb.className = "badge big " + condClass(cond);
    cb.textContent = l.draining ? "draining" : cond;
    f("reasons").textContent = (l.reasons || []).join("; ");
    const bn = f("banner");
    bn.hidden = up || !l.link.cause;
    bn.replaceChildren(...banner(l));
    f("sorter").replaceChildren(...sorter(l, up));
    f("links").replaceChildren(...links(l));
    f("link-events").replaceChildren(...linkEvents(l.link_events));
    f("shift").replaceChildren(...shift(l.shift));
    f("window").textContent = "last " + l.outcome_tiles.window + ", " + l.outcome_tiles.total + " outcomes · " + l.per_minute.reads + " reads";
    f("tiles").replaceChildren(...tiles(l.outcome_tiles));
    trend(f("trend"), l.trend);
    const bl = f("blocked");
    const br = up ? l.blocked_routes || [] : [];
    bl.hidden = br.length === 0;
    bl.textContent = br.map((r) => "Route " + r + " has no usable chute: its parcels recirculate.").join(" ");
    f("chute-lists").replaceChildren(...chuteLists(l.chutes || [], up));
    chutes(f("chutes"), l.chutes || [], up);
    const err = l.plan.last_reload_error;
    f("plan").replaceChildren(...kv([["Name", l.plan.name || "none"], ["Version", l.plan.version],
      ["Last reload", err ? h("span", { class: "bad-text" }, err) : (l.plan.last_reload_at ? "ok " + hhmmss(l.plan.last_reload_at) : "-")],
      ["Changes", (l.plan.diff || []).length]]));
    f("diff").replaceChildren(...diff(l.plan.diff));
  }

  window.sortgw.renderLine = renderLine;
})();
