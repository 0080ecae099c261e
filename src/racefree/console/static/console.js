// racefree console: progressive enhancement only. Every page and every kill-switch action
// works without this file; with it, event tables update live and countdowns tick.
(function () {
  "use strict";

  var POLL_MS = 3000;
  var KEEP_ROWS = 200;

  function bannerState() {
    var banner = document.querySelector(".banner[data-state]");
    return banner ? banner.getAttribute("data-state") : null;
  }

  function announceState(state) {
    var note = document.querySelector("[data-live-state]");
    if (note && state && state !== bannerState()) {
      note.textContent = "The kill switch is now " + state + ". Reload the page to act on it.";
    }
  }

  function addRows(table, html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html; // server-rendered, escaped rows of our own origin
    var body = table.tBodies[0];
    var first = body.firstElementChild;
    var added = 0;
    while (holder.firstElementChild) {
      var row = holder.firstElementChild;
      row.classList.add("fresh");
      body.insertBefore(row, first);
      added += 1;
    }
    while (body.rows.length > KEEP_ROWS) { body.deleteRow(body.rows.length - 1); }
    return added;
  }

  function poll(table) {
    var url = table.getAttribute("data-live");
    var count = table.querySelector("[data-live-count]");
    var total = 0;
    function tick() {
      var after = table.getAttribute("data-after-id") || "0";
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "after_id=" + encodeURIComponent(after), {
        credentials: "same-origin",
        headers: { Accept: "text/html" }
      }).then(function (response) {
        var next = response.headers.get("X-Next-After-Id");
        if (!response.ok || response.redirected || next === null) {
          // signed out or expired (redirected to the sign-in page): say so, stop polling
          if (response.redirected) { stop("Your console session ended: reload to sign in."); }
          return null;
        }
        table.setAttribute("data-after-id", next);
        announceState(response.headers.get("X-Kill-Switch-State"));
        return response.text();
      }).then(function (html) {
        if (!html || !html.trim()) { return; }
        var added = addRows(table, html);
        if (added) {
          total += added;
          var empty = document.querySelector("[data-empty]");
          if (empty) { empty.remove(); }
          if (count) { count.textContent = "(" + total + " new)"; }
        }
      }).catch(function () { /* offline for a moment: the next tick tries again */ });
    }
    var timer = window.setInterval(tick, POLL_MS);
    function stop(message) {
      window.clearInterval(timer);
      if (count) { count.textContent = message; }
    }
  }

  function countdown(el) {
    var target = parseInt(el.getAttribute("data-countdown-to"), 10) * 1000;
    function tick() {
      var left = Math.round((target - Date.now()) / 1000);
      if (left <= 0) { el.textContent = "eligible now"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = "in " + (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
    }
    tick();
    window.setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-live]").forEach(poll);
    document.querySelectorAll("[data-countdown-to]").forEach(countdown);
  });
})();
