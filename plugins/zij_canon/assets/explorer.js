// zij explorer: facet chips, a name/alias filter and sortable columns over a table of Canon records.
// Used by the explorer page and by every category page: an element with data-zij-explorer (the URL of
// the facet data, assets/zij/explorer.json) wraps the table; data-facets names the facets to offer,
// data-columns the sort key of each header. The records are those the table lists: its rows
// (<tr data-id>) are the page's own, filtering hides them and sorting moves them; the
// whole filter state lives in the query string, so a link restores it and back/forward step through it.
(function () {
  "use strict";

  var LABELS = {
    category: "Category", family: "Family", year: "Year", kind: "Venue kind", code: "Official code",
    license: "Code license", zij: "Implemented in zij", source: "Rule source"
  };
  var YES_NO = [["yes", "yes"], ["no", "no"]];

  function norm(s) { return s.toLowerCase().replace(/[^a-z0-9\u00c0-\uffff]+/g, ""); }

  // ---- data -------------------------------------------------------------
  // Each facet: values [[id, label]], and per record the indices of its values (vals[i]).
  function facetsOf(data) {
    var v = data.vocab, recs = data.records, F = {};
    function field(name) { return data.fields.indexOf(name); }
    var fCat = field("categories"), fFam = field("families"), fVenue = field("venue"), fCode = field("code"),
        fLic = field("licenses"), fCls = field("zij_class"), fSrc = field("rule_source");
    function facet(values, of) { return { values: values, vals: recs.map(of) }; }
    function ids(list) { return list.map(function (x) { return typeof x === "string" ? [x, x] : [x[0], x[1]]; }); }
    F.category = facet(ids(v.category), function (r) { return r[fCat]; });
    F.family = facet(ids(v.family), function (r) { return r[fFam]; });
    F.kind = facet(ids(v.kind), function (r) { return [v.venue[r[fVenue]][2]]; });
    F.code = facet(YES_NO, function (r) { return [r[fCode] === 2 ? 0 : 1]; });
    F.license = facet(ids(v.license), function (r) { return r[fLic]; });
    F.zij = facet(YES_NO, function (r) { return [r[fCls] ? 0 : 1]; });
    F.source = facet(ids(v.source), function (r) { return [r[fSrc]]; });
    return F;
  }

  function sortKeys(data) {
    var v = data.vocab, fd = data.fields;
    function at(r, name) { return r[fd.indexOf(name)]; }
    function first(list, vocab) { return list.length ? vocab[list[0]][1].toLowerCase() : "\uffff"; }
    return {
      name: function (r) { return at(r, "name").toLowerCase(); },
      year: function (r) { return at(r, "year"); },
      category: function (r) { return first(at(r, "categories"), v.category); },
      family: function (r) { return first(at(r, "families"), v.family); },
      venue: function (r) { return v.venue[at(r, "venue")][1].toLowerCase(); },
      code: function (r) { return -at(r, "code"); },
      zij: function (r) { var c = at(r, "zij_class"); return c ? c.toLowerCase() : "\uffff"; },
      source: function (r) { return at(r, "rule_source"); }
    };
  }

  // ---- one filterable table ------------------------------------------------
  function Explorer(root, data) {
    var self = this;
    this.root = root;
    this.table = root.querySelector("table");
    this.tbody = this.table.tBodies[0];
    var fields = data.fields, fId = fields.indexOf("id"), fName = fields.indexOf("name"),
        fAliases = fields.indexOf("aliases"), fYear = fields.indexOf("year");
    var byId = {};
    data.records.forEach(function (r, i) { byId[r[fId]] = i; });
    // the rows of this page, in their order in the HTML, and their records
    this.rows = [];
    this.recs = [];
    Array.prototype.forEach.call(this.tbody.rows, function (tr) {
      var i = byId[tr.getAttribute("data-id")];
      if (i === undefined) return;
      self.rows.push(tr);
      self.recs.push(i);
    });
    var n = this.rows.length;
    this.n = n;
    this.shown = new Uint8Array(n).fill(1);
    this.years = new Int32Array(n);
    this.hay = new Array(n);
    this.hayNorm = new Array(n);
    for (var k = 0; k < n; k++) {
      var r = data.records[this.recs[k]];
      var text = [r[fName]].concat(r[fAliases], [r[fId]]).join("\n").toLowerCase();
      this.hay[k] = text;
      this.hayNorm[k] = norm(text);
      this.years[k] = r[fYear];
    }
    this.data = data;
    var all = facetsOf(data);
    this.facetNames = (root.getAttribute("data-facets") || "").split(",").filter(function (f) { return f && (all[f] || f === "year"); });
    this.facets = [];  // facets with chips: {name, values, vals (per row), selected, nSelected, counts, chips}
    this.facetNames.forEach(function (name) {
      if (name === "year") return;
      var f = all[name], vals = self.recs.map(function (i) { return f.vals[i]; });
      var present = new Uint8Array(f.values.length);
      vals.forEach(function (list) { list.forEach(function (x) { present[x] = 1; }); });
      self.facets.push({
        name: name, values: f.values, vals: vals, present: present,
        selected: new Uint8Array(f.values.length), nSelected: 0,
        counts: new Int32Array(f.values.length), shownCounts: new Int32Array(f.values.length).fill(-1), chips: []
      });
    });
    this.minYear = Math.min.apply(null, Array.from(this.years));
    this.maxYear = Math.max.apply(null, Array.from(this.years));
    this.yearFrom = null;
    this.yearTo = null;
    this.query = "";
    this.sort = null;  // {key, dir: 1 or -1}
    this.pendingURL = null;  // "push" or "replace" while the address waits to be written
    this.keys = sortKeys(data);
    this.columns = (root.getAttribute("data-columns") || "").split(",");
    this.build();
    this.readURL();
    this.update();
    this.applySort();
  }

  Explorer.prototype.build = function () {
    var self = this, panel = document.createElement("div");
    panel.className = "zij-facets";
    panel.setAttribute("role", "search");
    var label = document.createElement("label");
    label.className = "zij-facet-text";
    label.textContent = "Name or alias ";
    this.text = document.createElement("input");
    this.text.type = "search";
    this.text.name = "name";
    this.text.placeholder = "e.g. adamw, decoupled weight decay";
    this.text.setAttribute("autocomplete", "off");
    label.appendChild(this.text);
    panel.appendChild(label);
    this.text.addEventListener("input", function () {
      self.query = self.text.value;
      self.update();
      self.writeURL(true);
    });
    this.facetNames.forEach(function (name) {
      var box = document.createElement("fieldset");
      box.className = "zij-facet zij-facet-" + name;
      var legend = document.createElement("legend");
      legend.textContent = LABELS[name];
      box.appendChild(legend);
      if (name === "year") {
        self.yearInputs = ["from", "to"].map(function (side) {
          var l = document.createElement("label"), input = document.createElement("input");
          l.textContent = side + " ";
          input.type = "number";
          input.min = self.minYear;
          input.max = self.maxYear;
          input.placeholder = side === "from" ? self.minYear : self.maxYear;
          input.setAttribute("data-year", side);
          input.addEventListener("change", function () {
            var y = parseInt(input.value, 10);
            self[side === "from" ? "yearFrom" : "yearTo"] = isNaN(y) ? null : y;
            self.update();
            self.writeURL(false);
          });
          l.appendChild(input);
          box.appendChild(l);
          return input;
        });
      } else {
        var facet = self.facets.filter(function (f) { return f.name === name; })[0];
        facet.values.forEach(function (value, v) {
          if (!facet.present[v]) return;
          var chip = document.createElement("button");
          chip.type = "button";
          chip.className = "zij-chip zij-facet-chip";
          chip.setAttribute("aria-pressed", "false");
          chip.setAttribute("data-facet", name);
          chip.setAttribute("data-value", value[0]);
          chip.appendChild(document.createTextNode(value[1] + " "));
          var count = document.createElement("span");
          count.className = "zij-facet-count";
          chip.appendChild(count);
          chip.addEventListener("click", function () {
            facet.selected[v] ^= 1;
            facet.nSelected += facet.selected[v] ? 1 : -1;
            chip.setAttribute("aria-pressed", facet.selected[v] ? "true" : "false");
            self.update();
            self.writeURL(false);
          });
          facet.chips[v] = { el: chip, count: count };
          box.appendChild(chip);
        });
      }
      panel.appendChild(box);
    });
    var foot = document.createElement("p");
    foot.className = "zij-facet-status";
    this.status = document.createElement("span");
    this.status.setAttribute("aria-live", "polite");
    foot.appendChild(this.status);
    var clear = document.createElement("button");
    clear.type = "button";
    clear.className = "md-button zij-facet-clear";
    clear.textContent = "Clear filters";
    clear.addEventListener("click", function () {
      self.setState(new URLSearchParams(self.sort ? "sort=" + (self.sort.dir < 0 ? "-" : "") + self.sort.key : ""));
      self.update();
      self.writeURL(false);
    });
    foot.appendChild(clear);
    panel.appendChild(foot);
    this.root.insertBefore(panel, this.table);
    // sortable headers: a button in each header whose column has a sort key
    Array.prototype.forEach.call(this.table.tHead.rows[0].cells, function (th, c) {
      var key = self.columns[c];
      if (!self.keys[key]) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "zij-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("data-sort-key", key);
      button.addEventListener("click", function () {
        var dir = self.sort && self.sort.key === key ? -self.sort.dir : 1;
        self.sort = { key: key, dir: dir };
        self.applySort();
        self.writeURL(false);
      });
    });
  };

  // ---- state <-> URL ---------------------------------------------------------
  Explorer.prototype.params = function () {
    var p = new URLSearchParams();
    if (this.query) p.set("name", this.query);  // not "q": the theme opens its search box for ?q=
    this.facetNames.forEach(function (name) {
      if (name === "year") {
        if (this.yearFrom !== null || this.yearTo !== null) {
          p.set("year", (this.yearFrom === null ? "" : this.yearFrom) + "-" + (this.yearTo === null ? "" : this.yearTo));
        }
        return;
      }
      var facet = this.facets.filter(function (f) { return f.name === name; })[0];
      facet.values.forEach(function (value, v) { if (facet.selected[v]) p.append(name, value[0]); });
    }, this);
    if (this.sort) p.set("sort", (this.sort.dir < 0 ? "-" : "") + this.sort.key);
    return p;
  };

  // The address is written after the next frame, once per burst of changes (typing replaces the entry a
  // change made; any other change adds one), so the history API stays off the path of the filtering.
  Explorer.prototype.writeURL = function (replace) {
    var self = this;
    if (this.pendingURL) {
      this.pendingURL = this.pendingURL === "push" || !replace ? "push" : "replace";
      return;
    }
    this.pendingURL = replace ? "replace" : "push";
    requestAnimationFrame(function () { setTimeout(function () { self.flushURL(); }, 0); });
  };

  Explorer.prototype.flushURL = function () {
    var mode = this.pendingURL, query = this.params().toString();
    var url = location.pathname + (query ? "?" + query : "") + location.hash;
    this.pendingURL = null;
    if (!mode || url === location.pathname + location.search + location.hash) return;
    history[mode === "replace" ? "replaceState" : "pushState"](null, "", url);
  };

  Explorer.prototype.setState = function (p) {
    this.query = p.get("name") || "";
    this.text.value = this.query;
    this.facets.forEach(function (facet) {
      var wanted = p.getAll(facet.name);
      facet.nSelected = 0;
      facet.values.forEach(function (value, v) {
        var on = wanted.indexOf(value[0]) >= 0 && facet.present[v] ? 1 : 0;
        facet.selected[v] = on;
        facet.nSelected += on;
        if (facet.chips[v]) facet.chips[v].el.setAttribute("aria-pressed", on ? "true" : "false");
      });
    });
    var year = (p.get("year") || "").split("-");
    this.yearFrom = year[0] ? parseInt(year[0], 10) : null;
    this.yearTo = year[1] ? parseInt(year[1], 10) : null;
    if (isNaN(this.yearFrom)) this.yearFrom = null;
    if (isNaN(this.yearTo)) this.yearTo = null;
    if (this.yearInputs) {
      this.yearInputs[0].value = this.yearFrom === null ? "" : this.yearFrom;
      this.yearInputs[1].value = this.yearTo === null ? "" : this.yearTo;
    }
    var sort = p.get("sort") || "", dir = sort.charAt(0) === "-" ? -1 : 1, key = sort.replace(/^-/, "");
    this.sort = this.keys[key] && this.columns.indexOf(key) >= 0 ? { key: key, dir: dir } : null;
  };

  Explorer.prototype.readURL = function () { this.setState(new URLSearchParams(location.search)); };

  // ---- filtering ----------------------------------------------------------------
  // A row's "misses" are the filters it fails, one bit each (facets first, then year, then text). A row
  // with none is shown and counts for every facet value it has; a row that misses exactly one facet
  // counts for that facet's values (a facet's counts apply every filter but its own).
  Explorer.prototype.update = function () {
    var facets = this.facets, nf = facets.length, n = this.n, YEAR = 1 << nf, TEXT = 1 << (nf + 1);
    var q = this.query.trim().toLowerCase(), words = q ? q.split(/\s+/) : [], qn = norm(q);
    var from = this.yearFrom, to = this.yearTo, f, k, j, v, list;
    for (f = 0; f < nf; f++) facets[f].counts.fill(0);
    var visible = 0;
    for (k = 0; k < n; k++) {
      var miss = 0;
      for (f = 0; f < nf; f++) {
        var facet = facets[f];
        if (!facet.nSelected) continue;
        list = facet.vals[k];
        for (j = 0; j < list.length; j++) if (facet.selected[list[j]]) break;
        if (j === list.length) miss |= 1 << f;
      }
      var y = this.years[k];
      if ((from !== null && y < from) || (to !== null && y > to)) miss |= YEAR;
      if (words.length) {
        var hay = this.hay[k], ok = true;
        for (j = 0; j < words.length; j++) if (hay.indexOf(words[j]) < 0) { ok = false; break; }
        if (!ok && !(qn && this.hayNorm[k].indexOf(qn) >= 0)) miss |= TEXT;
      }
      if (miss === 0) {
        visible++;
        for (f = 0; f < nf; f++) {
          list = facets[f].vals[k];
          for (j = 0; j < list.length; j++) facets[f].counts[list[j]]++;
        }
      } else if ((miss & (miss - 1)) === 0 && miss < YEAR) {
        f = 31 - Math.clz32(miss);
        list = facets[f].vals[k];
        for (j = 0; j < list.length; j++) facets[f].counts[list[j]]++;
      }
      var show = miss === 0 ? 1 : 0;
      if (show !== this.shown[k]) {
        this.shown[k] = show;
        this.rows[k].hidden = !show;
      }
    }
    for (f = 0; f < nf; f++) {
      var fc = facets[f];
      for (v = 0; v < fc.values.length; v++) {
        var chip = fc.chips[v];
        if (!chip || fc.shownCounts[v] === fc.counts[v]) continue;
        fc.shownCounts[v] = fc.counts[v];
        chip.count.textContent = fc.counts[v];
        chip.el.classList.toggle("zij-facet-empty", fc.counts[v] === 0);
      }
    }
    this.visible = visible;
    this.status.textContent = visible === n ? "All " + n + " methods shown." : visible + " of " + n + " methods shown.";
  };

  // ---- sorting ----------------------------------------------------------------------
  Explorer.prototype.applySort = function () {
    var self = this, order = [], k;
    for (k = 0; k < this.n; k++) order.push(k);
    if (this.sort) {
      var key = this.keys[this.sort.key], dir = this.sort.dir, recs = this.data.records, name = this.keys.name;
      var values = this.recs.map(function (i) { return key(recs[i]); });
      var names = this.recs.map(function (i) { return name(recs[i]); });
      order.sort(function (a, b) {
        var x = values[a], y = values[b];
        if (x !== y) return (x < y ? -1 : 1) * dir;
        return names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b;
      });
    }
    var frag = document.createDocumentFragment();
    order.forEach(function (k2) { frag.appendChild(self.rows[k2]); });
    this.tbody.appendChild(frag);
    Array.prototype.forEach.call(this.table.tHead.rows[0].cells, function (th) {
      var key2 = th.getAttribute("data-sort-key");
      if (!key2) return;
      if (self.sort && self.sort.key === key2) th.setAttribute("aria-sort", self.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  };

  // ---- start ----------------------------------------------------------------------
  var explorers = [];
  window.addEventListener("popstate", function () {
    explorers.forEach(function (e) { e.pendingURL = null; e.readURL(); e.update(); e.applySort(); });
  });

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-zij-explorer]"), function (root) {
      if (root.getAttribute("data-zij-ready")) return;
      root.setAttribute("data-zij-ready", "loading");
      fetch(root.getAttribute("data-zij-explorer"))
        .then(function (response) { return response.json(); })
        .then(function (data) {
          var e = new Explorer(root, data);
          explorers.push(e);
          root.zijExplorer = e;
          root.setAttribute("data-zij-ready", "1");
        });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
