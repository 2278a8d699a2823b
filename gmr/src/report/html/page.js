"use strict";
// gmr's HTML report: search, expand/collapse, flame-graph zoom. Reads the page, never writes
// report content as markup (textContent and classes only), and needs no network.
(function () {
  var d = document;
  function byId(id) { return d.getElementById(id); }
  function all(selector, root) {
    return Array.prototype.slice.call((root || d).querySelectorAll(selector));
  }
  function lower(el) { return (el.textContent || "").toLowerCase(); }

  byId("gmr-expand").addEventListener("click", function () {
    all("details").forEach(function (e) { e.open = true; });
  });
  byId("gmr-collapse").addEventListener("click", function () {
    all("details.group, details.fold").forEach(function (e) { e.open = false; });
  });

  // ---- the flame graph: hover shows a frame, a click zooms into it ----
  var CHAR_WIDTH = 12 * 0.59;
  var flames = [];
  var svg = d.querySelector("#gmr-flame svg.fg");
  var info = byId("gmr-flame-info");
  var reset = byId("gmr-flame-reset");
  if (svg) {
    var box = svg.querySelector("svg.fg-frames");
    var total = box ? Number(box.getAttribute("data-total")) : 0;
    var boxWidth = box ? Number(box.getAttribute("width")) : 1180;
    flames = all("g.fr", svg).map(function (g, i) {
      var rect = g.querySelector("rect");
      var title = g.querySelector("title");
      var label = title ? title.textContent : "";
      var cut = label.lastIndexOf(" (");
      g.setAttribute("data-i", String(i));
      return {
        g: g, rect: rect, text: g.querySelector("text"), label: label,
        name: cut > 0 ? label.slice(0, cut) : label,
        x: Number(rect.getAttribute("data-x")), w: Number(rect.getAttribute("data-w")),
        y: Number(rect.getAttribute("y"))
      };
    });
    var fit = function (f, xPct, wPct) {
      f.rect.setAttribute("x", xPct.toFixed(4) + "%");
      f.rect.setAttribute("width", wPct.toFixed(4) + "%");
      if (!f.text) { return; }
      f.text.setAttribute("x", (xPct + 300 / boxWidth).toFixed(4) + "%");
      var chars = Math.floor((wPct / 100 * boxWidth - 3) / CHAR_WIDTH);
      f.text.textContent = chars < 3 ? "" :
        (f.name.length <= chars ? f.name : f.name.slice(0, chars - 2) + "..");
    };
    var unzoom = function () {
      flames.forEach(function (f) {
        f.g.classList.remove("zpar", "zhide");
        fit(f, 100 * f.x / total, 100 * f.w / total);
      });
      reset.hidden = true;
    };
    var zoom = function (z) {
      flames.forEach(function (f) {
        f.g.classList.remove("zpar", "zhide");
        if (f.y < z.y) {
          if (f.x <= z.x && f.x + f.w >= z.x + z.w) {
            f.g.classList.add("zpar");
            fit(f, 0, 100);
          } else {
            f.g.classList.add("zhide");
          }
        } else if (f.x >= z.x && f.x + f.w <= z.x + z.w) {
          fit(f, 100 * (f.x - z.x) / z.w, 100 * f.w / z.w);
        } else {
          f.g.classList.add("zhide");
        }
      });
      reset.hidden = false;
    };
    var frameOf = function (target) {
      var g = target && target.closest ? target.closest("g.fr") : null;
      return g ? flames[Number(g.getAttribute("data-i"))] : null;
    };
    svg.addEventListener("click", function (e) {
      var f = frameOf(e.target);
      if (f) { zoom(f); }
    });
    svg.addEventListener("mouseover", function (e) {
      var f = frameOf(e.target);
      if (f) { info.textContent = f.label; }
    });
    svg.addEventListener("mouseleave", function () { info.textContent = ""; });
    reset.addEventListener("click", unzoom);
  }

  // ---- search: filters stack groups, threads, requests and frames ----
  var search = byId("gmr-search");
  var count = byId("gmr-count");
  var units = null;
  var index = function () {
    units = all(".unit").map(function (u) {
      var summary = u.querySelector("summary");
      return {
        el: u,
        head: summary ? lower(summary) : "",
        frames: all(".f", u).map(function (el) { return { el: el, text: lower(el) }; }),
        rows: all("tr.t", u).map(function (el) { return { el: el, text: lower(el) }; })
      };
    });
  };
  var openUp = function (el) {
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") { p.open = true; }
    }
  };
  var run = function () {
    var q = search.value.trim().toLowerCase();
    if (units === null) { index(); }
    all(".hit").forEach(function (e) { e.classList.remove("hit"); });
    all(".gone, tr.miss").forEach(function (e) { e.classList.remove("gone", "miss"); });
    if (q === "") { count.textContent = ""; return; }
    var frames = 0, rows = 0, shown = 0;
    units.forEach(function (u) {
      var hitFrames = u.frames.filter(function (f) { return f.text.indexOf(q) >= 0; });
      var hitRows = u.rows.filter(function (r) {
        r.hit = r.text.indexOf(q) >= 0;
        return r.hit;
      });
      var hit = hitFrames.length > 0 || hitRows.length > 0 || u.head.indexOf(q) >= 0;
      if (!hit) { u.el.classList.add("gone"); return; }
      shown += 1;
      frames += hitFrames.length;
      rows += hitRows.length;
      hitFrames.forEach(function (f) { f.el.classList.add("hit"); openUp(f.el); });
      if (hitRows.length > 0) {
        u.rows.forEach(function (r) {
          r.el.classList.add(r.hit ? "hit" : "miss");
        });
      }
      openUp(u.el);
    });
    var marked = 0;
    flames.forEach(function (f) {
      if (f.name.toLowerCase().indexOf(q) >= 0) { f.g.classList.add("hit"); marked += 1; }
    });
    count.textContent = frames + " frames and " + rows + " threads or requests match, in " +
      shown + " of " + units.length + " groups; " + marked + " frames marked in the flame graph";
  };
  search.addEventListener("input", run);
  search.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { search.value = ""; run(); }
  });
  d.addEventListener("keydown", function (e) {
    if (e.key === "/" && d.activeElement !== search) { e.preventDefault(); search.focus(); }
  });
}());
