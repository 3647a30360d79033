// argalign review report: filters, search and pages over the rows in #rows-data.
// Row text is put into the page with textContent and text nodes only, never as HTML.
(function () {
  "use strict";
  var PAGE = 25;
  var rows = JSON.parse(document.getElementById("rows-data").textContent);
  var state = { page: 0, matches: rows };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(x, digits) {
    return typeof x === "number" ? x.toFixed(digits === undefined ? 3 : digits) : "–";
  }

  // --- filters ---------------------------------------------------------------------------
  var FILTERS = ["outcome", "mode", "config", "model", "code"];

  function values(row, key) { return key === "code" ? (row.codes || []) : [row[key]]; }

  function fillSelect(key) {
    var select = $("f-" + key), seen = {};
    rows.forEach(function (row) {
      values(row, key).forEach(function (v) { if (v !== undefined && v !== null && v !== "") seen[v] = (seen[v] || 0) + 1; });
    });
    var all = el("option", null, "all");
    all.value = "";
    select.appendChild(all);
    Object.keys(seen).sort().forEach(function (v) {
      var option = el("option", null, v + " (" + seen[v] + ")");
      option.value = v;
      select.appendChild(option);
    });
    select.addEventListener("change", apply);
  }

  function searchText(row) {
    if (row._text === undefined) {
      var parts = [row.id, row.reason || ""];
      (row.msgs || []).forEach(function (m) {
        m.parts.forEach(function (p) {
          if (p.k === "diff") p.ops.forEach(function (op) { parts.push(op[1]); });
          else if (p.k === "text") parts.push(p.text);
        });
      });
      row._text = parts.join("\n").toLowerCase();
    }
    return row._text;
  }

  function gain(row) { return row.s && row.s.score ? row.s.score[1] - row.s.score[0] : null; }

  function apply() {
    var wanted = {};
    FILTERS.forEach(function (key) { wanted[key] = $("f-" + key).value; });
    var query = $("f-search").value.trim().toLowerCase();
    var order = $("f-order").value;
    var matches = rows.filter(function (row) {
      for (var i = 0; i < FILTERS.length; i++) {
        var key = FILTERS[i];
        if (wanted[key] && values(row, key).indexOf(wanted[key]) < 0) return false;
      }
      return !query || searchText(row).indexOf(query) >= 0;
    });
    if (order !== "file") {
      var sign = order === "gain" ? -1 : 1;
      matches = matches.slice().sort(function (a, b) {
        var x = gain(a), y = gain(b);
        if (x === null) return y === null ? 0 : 1;
        if (y === null) return -1;
        return sign * (x - y);
      });
    }
    state.matches = matches;
    state.page = 0;
    remember();
    render();
  }

  // The filters live in the address (#outcome=failed&q=placeholder), so a view can be shared
  // and a test can open the page already filtered.
  var KEYS = FILTERS.concat(["search", "order"]);

  function remember() {
    var pairs = [];
    KEYS.forEach(function (key) {
      var value = $("f-" + key).value;
      if (value && !(key === "order" && value === "file")) pairs.push(key + "=" + encodeURIComponent(value));
    });
    if (state.page) pairs.push("page=" + (state.page + 1));
    var hash = pairs.length ? "#" + pairs.join("&") : "";
    if (window.location.hash !== hash && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", hash || window.location.pathname);
    }
  }

  function restore() {
    var page = 0;
    window.location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at < 0) return;
      var key = pair.slice(0, at), value = decodeURIComponent(pair.slice(at + 1));
      if (key === "page") page = Math.max(0, (parseInt(value, 10) || 1) - 1);
      else if (KEYS.indexOf(key) >= 0) $("f-" + key).value = value;
    });
    return page;
  }

  // --- one conversation ------------------------------------------------------------------
  function side(ops, which) {
    var box = el("div", "side " + which);
    ops.forEach(function (op) {
      if (op[0] === "=") box.appendChild(document.createTextNode(op[1]));
      else if (op[0] === "-" && which === "before") box.appendChild(el("del", null, op[1]));
      else if (op[0] === "+" && which === "after") box.appendChild(el("ins", null, op[1]));
    });
    if (!box.childNodes.length) box.appendChild(el("span", "empty", "(empty)"));
    return box;
  }

  function part(p) {
    var wrap = el("div", "part " + p.k);
    if (p.k === "kept") {
      var details = el("details", "kept");
      details.appendChild(el("summary", null, p.label + ": " + p.n.toLocaleString() + " characters, unchanged"));
      var text = p.head + (p.tail ? "\n[… " + (p.n - p.head.length - p.tail.length).toLocaleString() + " characters …]\n" + p.tail : "");
      details.appendChild(el("pre", null, text));
      wrap.appendChild(details);
      return wrap;
    }
    wrap.appendChild(el("div", "label", p.label));
    if (p.k === "text") {
      wrap.appendChild(el("div", "side before", p.text));
      return wrap;
    }
    var pair = el("div", "pair");
    pair.appendChild(side(p.ops, "before"));
    pair.appendChild(side(p.ops, "after"));
    wrap.appendChild(pair);
    return wrap;
  }

  function card(row) {
    var box = el("article", "row");
    box.setAttribute("data-outcome", row.outcome);
    var head = el("div", "row-head");
    head.appendChild(el("span", "row-id", row.id));
    head.appendChild(el("span", "badge " + row.outcome, row.outcome));
    head.appendChild(el("span", "facts", "mode " + row.mode + " · " + row.model + " · " + row.config +
                        "/" + row.split + " · program " + row.program));
    (row.codes || []).forEach(function (c) { head.appendChild(el("span", "code", c)); });
    box.appendChild(head);
    var facts = [];
    if (row.s && row.s.score) {
      var d = row.s.score[1] - row.s.score[0];
      facts.push("score " + num(row.s.score[0]) + " → " + num(row.s.score[1]) + " (" + (d >= 0 ? "+" : "") + num(d) + ")");
      ["forward", "backward", "coherence"].forEach(function (k) {
        if (row.s[k]) facts.push(k + " " + num(row.s[k][0], 2) + " → " + num(row.s[k][1], 2));
      });
    } else if (row.score_error) {
      facts.push("not scored: " + row.score_error);
    }
    var u = row.u || {};
    facts.push(u.calls + " LM calls, " + u.in + " → " + u.out + " tokens, " + num(u.s, 1) + " s" +
               (u.judge ? "; judge: " + u.judge + " calls, " + num(u.js, 1) + " s" : ""));
    if (row.attempts) facts.push(row.attempts + " attempt" + (row.attempts === 1 ? "" : "s"));
    box.appendChild(el("div", "facts", facts.join(" · ")));
    if (row.reason) box.appendChild(el("div", "reason", row.reason));
    if (row.retries && row.retries.length) box.appendChild(el("div", "facts", "retries: " + row.retries.join("; ")));
    if (labellable(row)) box.appendChild(labelBar(row));
    (row.msgs || []).forEach(function (m) {
      var message = el("div", "message");
      message.appendChild(el("div", "role", m.role));
      m.parts.forEach(function (p) { message.appendChild(part(p)); });
      box.appendChild(message);
    });
    return box;
  }

  // --- labels: the curator's reading of each rewrite, kept in localStorage ----------------
  // Stored per report and example (config/split and id: a source id may recur in another split)
  // as {"better": "a" | "b" | "same", "why": text}; the download is an oracle file
  // (argalign.calibration): "a" is the aligned row, "b" the original.
  var CHOICES = { better: "a", same: "same", worse: "b" };
  var section = $("conversations");
  var prefix = "argalign-labels|" + section.getAttribute("data-labels") + "|";
  var memory = Object.create(null);  // what was set here, also when localStorage is unavailable

  function key(row) { return prefix + row.config + "/" + row.split + "|" + row.id; }

  function loadLabel(row) {
    var k = key(row);
    if (k in memory) return memory[k];
    try { return JSON.parse(window.localStorage.getItem(k)) || {}; } catch (e) { return {}; }
  }

  function saveLabel(row, label) {
    var k = key(row);
    memory[k] = label;
    try {
      if (label.better || label.why) window.localStorage.setItem(k, JSON.stringify(label));
      else window.localStorage.removeItem(k);
    } catch (e) { /* kept in memory until the page is closed */ }
    countLabels();
  }

  function labellable(row) { return typeof row.pair === "number"; }

  function labelled() {
    return rows.filter(function (row) { return labellable(row) && loadLabel(row).better; });
  }

  function countLabels() {
    var n = labelled().length;
    $("labels-count").textContent = n + " labelled";
    $("download-labels").disabled = n === 0;
  }

  // Both rows of a conversation (#pairs-data, parsed on the first download): the original, and
  // the aligned row whole or as edits of the original's text fields (argalign.review.collect).
  var pairs = null;
  function rowsOf(row) {
    if (!pairs) pairs = JSON.parse($("pairs-data").textContent);
    var pair = pairs[row.pair], aligned = pair.aligned;
    if (!aligned) {
      aligned = Object.assign({}, pair.original);
      aligned.messages = pair.original.messages.map(function (m, i) {
        var out = Object.assign({}, m), edits = pair.edits[i];
        Object.keys(edits).forEach(function (k) { out[k] = applyEdit(m[k], edits[k]); });
        return out;
      });
    }
    return { aligned: aligned, original: pair.original };
  }

  // Pieces [i, j] are lines i to j of the original text (each with its newline), others new text.
  function applyEdit(text, pieces) {
    var lines = text.split(/(?<=\n)/);
    return pieces.map(function (p) { return typeof p === "string" ? p : lines.slice(p[0], p[1]).join(""); }).join("");
  }

  function labelBar(row) {
    var bar = el("div", "labelling");
    bar.appendChild(el("span", "label", "the aligned row is"));
    var buttons = Object.keys(CHOICES).map(function (name) {
      var button = el("button", "choice " + name, name);
      button.type = "button";
      button.setAttribute("aria-pressed", String(loadLabel(row).better === CHOICES[name]));
      button.addEventListener("click", function () {
        var label = loadLabel(row);
        label.better = label.better === CHOICES[name] ? undefined : CHOICES[name];  // again: unset
        buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b === button && !!label.better)); });
        saveLabel(row, label);
      });
      bar.appendChild(button);
      return button;
    });
    var why = el("input", "why");
    why.type = "text";
    why.placeholder = "reason (one line)";
    why.value = loadLabel(row).why || "";
    why.addEventListener("input", function () {
      var label = loadLabel(row);
      label.why = why.value.replace(/\s+/g, " ");
      saveLabel(row, label);
    });
    bar.appendChild(why);
    return bar;
  }

  function labelsJsonl() {
    return labelled().map(function (row) {
      var label = loadLabel(row), both = rowsOf(row);
      return JSON.stringify({ id: row.id, a: both.aligned, b: both.original, better: label.better,
                              by: "curator", why: label.why || "" }) + "\n";
    }).join("");
  }

  var download = null;
  function downloadLabels() {
    if (download) URL.revokeObjectURL(download);
    download = URL.createObjectURL(new Blob([labelsJsonl()], { type: "application/x-ndjson" }));
    var link = document.createElement("a");
    link.href = download;
    link.download = section.getAttribute("data-labels-file");
    link.click();
  }

  // --- pages -----------------------------------------------------------------------------
  function render() {
    var list = $("rows");
    while (list.firstChild) list.removeChild(list.firstChild);
    var pages = Math.max(1, Math.ceil(state.matches.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE;
    state.matches.slice(start, start + PAGE).forEach(function (row) { list.appendChild(card(row)); });
    $("status").textContent = state.matches.length + " of " + rows.length + " conversations match · page " +
      (state.page + 1) + " of " + pages;
    ["prev", "prev2"].forEach(function (id) { $(id).disabled = state.page === 0; });
    ["next", "next2"].forEach(function (id) { $(id).disabled = state.page >= pages - 1; });
  }

  function turn(delta) {
    state.page += delta;
    remember();
    render();
    window.scrollTo(0, $("conversations").offsetTop);
  }

  FILTERS.forEach(fillSelect);
  $("f-order").addEventListener("change", apply);
  var timer = null;
  $("f-search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 200); });
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  $("prev").addEventListener("click", function () { turn(-1); });
  $("prev2").addEventListener("click", function () { turn(-1); });
  $("next").addEventListener("click", function () { turn(1); });
  $("next2").addEventListener("click", function () { turn(1); });
  $("download-labels").addEventListener("click", downloadLabels);
  countLabels();
  var page = restore();
  apply();
  state.page = page;
  render();
  // When the first page was on screen, in ms since the navigation started (the benchmark reads it).
  document.body.setAttribute("data-ready-ms", String(Math.round(window.performance.now())));
})();
