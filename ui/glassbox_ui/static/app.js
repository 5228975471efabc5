// The glassbox UI: views by URL hash (#/ the runs, #/run/NS/KIND/LEAF one run), drawn from the JSON
// endpoints of glassbox_ui.app and refreshed by polling every 2 s (no reload). Errors from the
// server are {"error": message} and are shown as messages on the page.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const view = document.getElementById("view");
  let timer = null;

  // ---- helpers ---------------------------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  async function api(url, body) {
    let resp;
    try {
      resp = await fetch(url, body ? {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify(body)} : {cache: "no-store"});
    } catch (e) {
      throw new Error("the glassbox ui server cannot be reached (" + e.message + ")");
    }
    let data;
    try { data = await resp.json(); } catch (e) { throw new Error(url + " answered " + resp.status + " without JSON"); }
    if (!resp.ok || data.error) throw new Error(data.error || (url + " answered " + resp.status));
    return data;
  }
  function errorBox(msg) { return el("div", {class: "error", role: "alert"}, msg); }
  function num(v) {
    if (typeof v === "number") return GlassboxCharts.fmt(v);
    if (v === null || v === undefined) return "-";
    if (Array.isArray(v) && v.every(x => typeof x !== "object")) return v.join(" | ");
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  function cell(v) { return el("td", {class: typeof v === "number" ? "num" : (String(v).length > 40 ? "text" : "")}, num(v)); }
  function table(header, rows, attrs) {
    return el("table", attrs || {}, el("thead", {}, el("tr", {}, header.map(h => el("th", {}, h)))),
              el("tbody", {}, rows.map(r => el("tr", {}, r.map(v => v instanceof Node ? el("td", {}, v) : cell(v))))));
  }
  function stateSpan(s) { return el("span", {class: "state-" + String(s).toLowerCase()}, s); }
  function runLink(id, text) { return el("a", {href: "#/run/" + id}, text || id); }
  function setLive(ok, text) { document.getElementById("live").textContent = (ok ? "live · " : "") + (text || ""); }
  function poll(fn) {
    // One refresh at a time: on a slow store a tick that finds the last one running is skipped.
    clearInterval(timer);
    let busy = false;
    const tick = async () => { if (busy) return; busy = true; try { await fn(); } finally { busy = false; } };
    tick();
    timer = setInterval(tick, POLL_MS);
  }

  // ---- a server-paged, sortable, searchable table ------------------------------------------------
  function pagedTable(url, opts) {
    const st = {offset: 0, limit: (opts && opts.limit) || 100, sort: "", desc: false, q: ""};
    const box = el("div", {class: "paged", "data-table": (opts && opts.name) || url});
    const info = el("span", {class: "muted"});
    const search = el("input", {type: "text", placeholder: "search", "aria-label": "search"});
    let t;
    search.addEventListener("input", () => { clearTimeout(t); t = setTimeout(() => { st.q = search.value; st.offset = 0; load(); }, 250); });
    const prev = el("button", {onclick: () => { st.offset = Math.max(0, st.offset - st.limit); load(); }}, "‹ prev");
    const next = el("button", {onclick: () => { st.offset += st.limit; load(); }}, "next ›");
    const size = el("select", {"aria-label": "rows per page"}, [100, 1000].map(n => el("option", {value: n}, n + " rows")));
    size.value = String(st.limit);
    size.addEventListener("change", () => { st.limit = +size.value; st.offset = 0; load(); });
    const body = el("div");
    box.append(el("div", {class: "controls"}, search, prev, next, size, info), body);
    let lastUpdated = null, seq = 0;
    async function load() {
      const mine = ++seq;  // a slower earlier answer must not overwrite a later one
      const q = new URLSearchParams({offset: st.offset, limit: st.limit, q: st.q});
      if (st.sort) { q.set("sort", st.sort); q.set("desc", st.desc ? "1" : "0"); }
      if (opts && opts.params) for (const [k, v] of Object.entries(opts.params)) q.set(k, v);
      let d;
      try { d = await api(url + (url.includes("?") ? "&" : "?") + q); } catch (e) { if (mine === seq) body.replaceChildren(errorBox(e.message)); return; }
      if (mine !== seq) return;
      lastUpdated = d.version;
      const cols = (opts && opts.columns) ? opts.columns.filter(c => d.columns.includes(c)).concat(d.columns.filter(c => !opts.columns.includes(c))) : d.columns;
      const head = el("tr", {}, cols.map(c => el("th", {class: "sortable", title: "sort by " + c, onclick: () => {
        st.desc = st.sort === c ? !st.desc : true; st.sort = c; st.offset = 0; load(); }},
        c + (st.sort === c ? (st.desc ? " ▼" : " ▲") : ""))));
      const rows = d.rows.map(r => el("tr", {}, cols.map(c => cell(r[c]))));
      body.replaceChildren(...(d.note ? [el("div", {class: "note"}, d.note)] : []),
                           el("table", {"data-total": d.total}, el("thead", {}, head), el("tbody", {}, rows)));
      info.textContent = d.total ? `rows ${d.offset + 1}–${d.offset + d.rows.length} of ${d.total}` : "no rows";
      prev.disabled = st.offset === 0; next.disabled = st.offset + st.limit >= d.total;
    }
    box.reload = load;
    box.refreshIf = (updated) => { if (updated !== lastUpdated) load(); };
    load();
    return box;
  }

  // ---- all runs ----------------------------------------------------------------------------------
  function runsView() {
    const filter = el("input", {type: "text", id: "filter", placeholder: "filter: name, namespace, state", "aria-label": "filter"});
    const kind = el("select", {id: "kind-filter", "aria-label": "kind"}, el("option", {value: ""}, "all kinds"));
    const out = el("div", {id: "runs"});
    view.replaceChildren(el("h1", {}, "Runs"), el("div", {class: "controls"}, filter, kind), out);
    let runs = [];
    function render() {
      const f = filter.value.toLowerCase(), k = kind.value;
      const rows = runs.filter(r => (!k || r.kind === k) && (!f || `${r.kind} ${r.namespace} ${r.name} ${r.state}`.toLowerCase().includes(f)));
      out.replaceChildren(rows.length || runs.length ? table(["kind", "name", "namespace", "state", "progress", "last update"],
        rows.map(r => [r.kind, runLink(r.id, r.name), r.namespace,
                       r.error ? el("span", {}, stateSpan(r.state), " ", el("span", {class: "muted"}, r.error)) : stateSpan(r.state),
                       r.progress.label, r.updated]), {id: "runs-table"})
        : el("p", {class: "muted"}, "No runs in this store yet. `glassbox run examples/pretrain-tiny.yaml` publishes one."));
    }
    filter.addEventListener("input", render);
    kind.addEventListener("change", render);
    poll(async () => {
      try {
        const d = await api("/api/runs");
        document.getElementById("store").textContent = d.store;
        runs = d.runs;
        const kinds = Array.from(new Set(runs.map(r => r.kind))).sort();
        if (kind.options.length - 1 !== kinds.length) {
          const keep = kind.value;
          kind.replaceChildren(el("option", {value: ""}, "all kinds"), ...kinds.map(k => el("option", {value: k}, k)));
          kind.value = keep;
        }
        render();
        setLive(true, new Date().toLocaleTimeString());
      } catch (e) {
        out.replaceChildren(errorBox(e.message));
        setLive(false, "");
      }
    });
  }

  // ---- one run -----------------------------------------------------------------------------------
  function factsGrid(obj) {
    return el("div", {class: "grid2"}, Object.entries(obj).filter(([k, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("span", {class: "muted"}, k), el("span", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
  }
  function lineageBox(lin) {
    const items = [];
    for (const u of lin.from) items.push(el("li", {}, `from ${u.kind} ${u.name} @ ${u.checkpoint} (${u.field}): `,
      u.runs.length ? u.runs.map(r => runLink(r)) : el("span", {class: "muted"}, "not in this store")));
    for (const d of lin.to) items.push(el("li", {}, "used by ", runLink(d.run), ` @ ${d.checkpoint} (${d.field})`));
    return items.length ? el("ul", {id: "lineage"}, items) : el("p", {class: "muted", id: "lineage"}, "no runs before or after this one in the store");
  }
  function checkpointsTable(cks) {
    if (!cks.length) return el("p", {class: "muted"}, "no checkpoint published yet");
    const evalKeys = Array.from(new Set(cks.flatMap(c => Object.keys(c.evals).filter(k => !k.endsWith("_samples")))));
    return table(["step", "tokens", "loss", "samples", "chunks done", ...evalKeys, "size", "resumable", "time"],
      cks.map(c => [c.step, c.tokens, c.loss, `${c.samplesStart}–${c.samplesEnd}`, c.chunksCompleted,
                    ...evalKeys.map(k => c.evals[k]), c.size, c.resumable ? "yes" : "weights only", c.time]),
      {id: "checkpoints-table", "data-rows": cks.length});
  }
  function drawCharts(box, d) {
    const kids = d.warnings.map(w => el("div", {class: "note"}, w));
    box.replaceChildren(...kids);
    if (!d.charts.length) { box.append(el("p", {class: "muted"}, "no curves yet")); return; }
    const wrap = el("div", {class: "charts"});
    box.append(wrap);
    for (const spec of d.charts) {
      const c = el("div", {class: "chart"});
      wrap.append(c);
      GlassboxCharts.draw(c, spec, 560);
    }
  }

  function runView(id) {
    const base = "/api/runs/" + id;
    const head = el("div"), facts = el("div"), kindBox = el("div"), charts = el("div", {id: "charts"});
    const cks = el("div", {id: "checkpoints"}), spec = el("div");
    view.replaceChildren(head, kindBox, el("h2", {}, "Curves"), charts, el("h2", {}, "Checkpoints"), cks,
                         el("h2", {}, "Record"), facts, el("h2", {}, "Spec as applied"), spec);
    let updated = null, kindDrawn = false, tables = [];
    poll(async () => {
      let d;
      try { d = await api(base); } catch (e) { head.replaceChildren(el("h1", {}, id), errorBox(e.message)); setLive(false, ""); return; }
      setLive(true, new Date().toLocaleTimeString());
      document.getElementById("store").textContent = d.uri;
      head.replaceChildren(el("h1", {}, `${d.kind} ${d.namespace}/${d.name}`),
        el("div", {class: "controls"}, stateSpan(d.state), el("span", {id: "progress"}, d.progress.label),
           el("span", {class: "muted"}, "updated " + (d.manifest.updated || "-"))),
        d.manifest.present ? "" : el("div", {class: "note"}, "run.json is there but no manifest.json yet: nothing is published"));
      if (!kindDrawn) { kindDrawn = true; tables = kindSection(kindBox, d, base); }
      if (d.version === updated) return;
      updated = d.version;
      facts.replaceChildren(el("p", {}, d.uri), factsGrid(d.facts), el("h3", {}, "Lineage"), lineageBox(d.lineage));
      spec.replaceChildren(el("pre", {}, JSON.stringify(d.spec, null, 2)));
      cks.replaceChildren(checkpointsTable(d.checkpoints));
      if (d.summary || d.summaryError) kindBox.querySelector("#summary")?.replaceChildren(summaryBox(d));
      for (const t of tables) t.refreshIf(updated);
      try { drawCharts(charts, await api(base + "/charts")); } catch (e) { charts.replaceChildren(errorBox(e.message)); }
    });
  }

  // ---- per kind ----------------------------------------------------------------------------------
  function summaryBox(d) {
    if (d.summaryError) return errorBox(d.summaryError);
    const s = d.summary || {}, parts = [];
    const res = s.results || {};
    parts.push(table(["metric", "corpus value"], Object.entries(res).map(([k, v]) => [k, v]), {id: "results-table"}));
    if (s.correlations) parts.push(el("h3", {}, "Correlation with human scores"), correlationTable(s.correlations));
    if (s.curve) parts.push(el("h3", {}, "Checkpoint curve"), factsGrid(s.curve));
    return el("div", {}, parts);
  }

  function correlationTable(c) {
    // summary.json: correlations[metric][human aspect] = {n, pearson, spearman, kendall}
    const rows = [];
    for (const [metric, aspects] of Object.entries(c)) {
      if (!aspects || typeof aspects !== "object") continue;
      for (const [aspect, v] of Object.entries(aspects)) {
        if (v && typeof v === "object") rows.push([metric, aspect, v.pearson, v.spearman, v.kendall, v.n]);
      }
    }
    return rows.length ? table(["metric", "human aspect", "Pearson", "Spearman", "Kendall", "n"], rows, {id: "correlations-table"})
                       : el("pre", {}, JSON.stringify(c, null, 2));
  }

  function kindSection(box, d, base) {
    if (d.kind === "KGHarvest") return harvestSection(box, d, base);
    if (d.kind === "MetricEval") {
      const scores = pagedTable(base + "/table/scores", {name: "scores", columns: ["id", "output", "source", "references"]});
      box.replaceChildren(el("h2", {}, "Corpus results"), el("div", {id: "summary"}, summaryBox(d)),
                          el("h2", {}, "Per-example scores"), scores);
      return [scores];
    }
    if (d.kind === "ScorerService" || d.kind === "DialogBot") {
      const stage = d.kind === "ScorerService" ? "adaptation" : "finetuning";
      box.replaceChildren(playground(d), el("p", {class: "muted"},
        `The curves and checkpoints below are this service's ${stage} stage; the served model is its latest checkpoint.`));
      return [];
    }
    return [];
  }

  function harvestSection(box, d, base) {
    const rels = d.relations || [];
    const pick = el("select", {id: "relation", "aria-label": "relation"}, el("option", {value: ""}, "all relations"),
                    rels.map(r => el("option", {value: r.name}, r.name)));
    const promptsBox = el("div", {id: "prompts"});
    let tuples = pagedTable(base + "/table/tuples", {name: "tuples", columns: ["relation", "entities", "score", "weight"]});
    const tuplesBox = el("div", {}, tuples);
    function show() {
      const r = pick.value;
      tuples = pagedTable(base + "/table/tuples", {name: "tuples", params: r ? {relation: r} : {}, columns: ["relation", "entities", "score", "weight"]});
      tuplesBox.replaceChildren(tuples);
      promptsBox.replaceChildren(r ? pagedTable(base + "/table/prompts", {name: "prompts", params: {relation: r}, columns: ["prompt", "weight"]})
                                   : el("p", {class: "muted"}, "pick a relation to see its prompts and their weights"));
    }
    pick.addEventListener("change", show);
    if (rels.length === 1) pick.value = rels[0].name;  // one relation: show its prompts straight away
    box.replaceChildren(el("h2", {}, "Relations"),
      rels.length ? table(["relation", "tuples", "prompts kept", "prompts tried"], rels.map(r => [r.name, r.tuples, r.prompts, r.promptsTried]), {id: "relations-table"})
                  : el("p", {class: "muted"}, "no relation published yet"),
      el("div", {class: "controls"}, "relation", pick), el("h2", {}, "Prompts"), promptsBox, el("h2", {}, "Tuples"), tuplesBox);
    show();
    return [{refreshIf: (u) => tuples.refreshIf(u)}];
  }

  function playground(d) {
    const params = new URLSearchParams(location.hash.split("?")[1] || "");
    const endpoint = el("input", {type: "url", id: "endpoint", size: 40, placeholder: "http://127.0.0.1:8080",
                                  value: params.get("endpoint") || localStorage.getItem("glassbox.endpoint") || ""});
    const model = el("input", {type: "text", id: "model", value: d.name, size: 20});
    const out = el("div", {id: "playground-out"});
    const ep = () => { localStorage.setItem("glassbox.endpoint", endpoint.value); return endpoint.value; };
    const head = [el("h2", {}, "Playground"), el("p", {class: "muted"},
      "Requests go through this UI's server to the endpoint you give (the service's URL, e.g. from `glassbox run` or a port-forward)."),
      el("div", {class: "controls"}, "endpoint", endpoint, "model", model)];
    if (d.kind === "ScorerService") {
      const instr = el("textarea", {id: "instruction", rows: 2}, "Give the chemical symbol for gold.");
      const cands = el("textarea", {id: "candidates", rows: 4}, "Ag\nAu\ngold");
      const go = el("button", {id: "rank", onclick: async () => {
        out.replaceChildren(el("p", {class: "muted"}, "ranking…"));
        try {
          const r = await api("/api/playground/rank", {endpoint: ep(), model: model.value, instruction: instr.value,
                                                       candidates: cands.value.split("\n").filter(s => s.trim())});
          const ranked = r.answer.ranked || r.answer.candidates || r.answer.predictions || [];
          out.replaceChildren(Array.isArray(ranked) && ranked.length && typeof ranked[0] === "object"
            ? table(Object.keys(ranked[0]), ranked.map(x => Object.values(x)), {id: "rank-table"})
            : el("pre", {id: "rank-json"}, JSON.stringify(r.answer, null, 2)));
        } catch (e) { out.replaceChildren(errorBox(e.message)); }
      }}, "rank");
      return el("div", {}, head, el("div", {}, "instruction"), instr, el("div", {}, "candidates, one per line"), cands, el("div", {}, go), out);
    }
    const disclaimer = ((d.spec || {}).serving || {}).disclaimer || "";
    const shown = el("div", {class: "disclaimer", id: "disclaimer"}, disclaimer || "This assistant is a research system, not a doctor.");
    const log = el("div", {class: "chat-log", id: "chat-log"}), msg = el("textarea", {id: "message", rows: 2});
    const history = [];
    const send = el("button", {id: "send", onclick: async () => {
      const text = msg.value.trim(); if (!text) return;
      history.push({role: "user", content: text}); log.append(el("div", {class: "user"}, "you: " + text)); msg.value = "";
      try {
        const r = await api("/api/playground/chat", {endpoint: ep(), model: model.value, messages: history, disclaimer: disclaimer});
        history.push({role: "assistant", content: r.reply});
        shown.textContent = r.disclaimer;
        log.append(el("div", {class: "bot"}, "bot: " + r.reply));
      } catch (e) { history.pop(); log.append(errorBox(e.message)); }
    }}, "send");
    return el("div", {}, head, shown, log, msg, el("div", {}, send), out);
  }

  // ---- routing -----------------------------------------------------------------------------------
  function route() {
    const h = location.hash.replace(/^#/, "").split("?")[0];
    const m = h.match(/^\/run\/([^/]+\/[^/]+\/[^/]+)$/);
    if (m) runView(m[1]); else runsView();
  }
  window.addEventListener("hashchange", route);
  route();
})();
