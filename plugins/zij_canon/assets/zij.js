// zij site behaviour: copy buttons (LaTeX, BibTeX, reference), the method-name search index, and math on API pages.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? script.src.replace(/assets\/zij\/zij\.js(\?.*)?$/, "") : "/";

  // ---- A method page's benchmark block, kept out of the page's own bytes ----
  function fillBenchSlots() {
    document.querySelectorAll(".zij-bench-slot[data-card]").forEach(function (slot) {
      fetch(slot.getAttribute("data-card")).then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      }).then(function (html) {
        slot.innerHTML = html;  // a fragment the site's own build wrote, escaped there
        slot.removeAttribute("data-card");
      }).catch(function () { /* the slot's links stay */ });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fillBenchSlots);
  else fillBenchSlots();

  // ---- Copy LaTeX / Copy BibTeX ------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    document.body.removeChild(area);
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-from]");
    if (!button) return;
    var source = button.getAttribute("data-copy-from");
    var holder = button.closest("[data-" + source + "]");
    // the text to copy is the holder's data attribute, or (when that is empty) the text it shows
    var text = holder.getAttribute("data-" + source) || holder.querySelector(".zij-copy-source").textContent;
    copyText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("zij-copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("zij-copied"); }, 1500);
    });
  });

  // ---- Name index: exact names and aliases first ---------------------------
  var names = null;
  function norm(s) { return s.toLowerCase().replace(/[^a-z0-9\u00c0-\uffff]+/g, ""); }
  function score(entry, q) {
    var n = norm(entry.name), best = 99;
    if (n === q) return 0;
    if (n.indexOf(q) === 0) best = 10 + n.length - q.length;
    entry.aliases.forEach(function (alias) {
      var a = norm(alias);
      if (a === q) best = Math.min(best, 5);
      else if (a.indexOf(q) === 0) best = Math.min(best, 30 + a.length - q.length);
    });
    if (best === 99 && n.indexOf(q) > 0) best = 60 + n.length;
    return best;
  }
  function search(query) {
    var q = norm(query);
    if (!q || !names) return [];
    return names
      .map(function (e) { return { e: e, s: score(e, q) }; })
      .filter(function (x) { return x.s < 99; })
      .sort(function (a, b) { return a.s - b.s || a.e.name.length - b.e.name.length || a.e.name.localeCompare(b.e.name); })
      .slice(0, 8)
      .map(function (x) { return x.e; });
  }
  function render(input) {
    var box = document.getElementById("zij-name-hits");
    if (!box) {
      var anchor = document.querySelector(".md-search-result");
      if (!anchor) return;
      box = document.createElement("div");
      box.id = "zij-name-hits";
      box.className = "zij-name-hits";
      anchor.parentNode.insertBefore(box, anchor);
    }
    box.textContent = "";
    search(input.value).forEach(function (entry) {
      var link = document.createElement("a");
      link.href = base + entry.url;
      link.className = "zij-name-hit";
      var title = document.createElement("strong");
      title.textContent = entry.name;
      var meta = document.createElement("span");
      meta.textContent = " " + entry.category + (entry.year ? ", " + entry.year : "");
      link.appendChild(title);
      link.appendChild(meta);
      box.appendChild(link);
    });
  }
  function loadNames() {
    if (names !== null) return Promise.resolve();
    return fetch(base + "assets/zij/names.json").then(function (r) { return r.json(); }).then(function (data) { names = data; });
  }
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-md-component=search-query]")) return;
    loadNames().then(function () { render(input); });
  });

  // ---- Math in API pages (arithmatex output) -------------------------------
  function renderArithmatex() {
    if (!window.katex) return;
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.getAttribute("data-zij-done")) return;
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      tex = tex.replace(/^\\\[|\\\]$/g, "").replace(/^\\\(|\\\)$/g, "");
      try {
        window.katex.render(tex, el, { displayMode: display, throwOnError: false });
      } catch (e) { /* leave the source visible */ }
      el.setAttribute("data-zij-done", "1");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderArithmatex);
  else renderArithmatex();
})();
