// The explorer's few behaviours: copy a link, and follow /logs/ live by polling its tail with the newest
// message's cursor and the ids it already has (every 1.5 s while the switch is on and the list's top is in view;
// no connection held open).
(function () {
  "use strict";
  var POLL_MS = 1500;

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    input.select();
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy link"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  });

  // A search's link holds only the filters set: empty fields are left out of the query.
  document.addEventListener("submit", function (event) {
    if (!event.target.matches("form.filters")) return;
    event.target.querySelectorAll("input[name], select[name]").forEach(function (field) {
      if (field.value === "") field.disabled = true;
    });
  });

  // The histogram comes after the page: counting a week of a million rows need not hold up the list.
  document.addEventListener("DOMContentLoaded", function () {
    var chart = document.querySelector("[data-chart]");
    if (!chart) return;
    fetch(chart.getAttribute("data-chart"), { credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.text(); })
      .then(function (html) { chart.outerHTML = html; })
      .catch(function () { chart.querySelector("h2").textContent = "The histogram could not be counted; reload to try again."; chart.removeAttribute("aria-busy"); });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("follow");
    var list = document.getElementById("log-rows");
    if (!toggle || !list) return;
    var state = document.getElementById("follow-state");
    var cursor = toggle.getAttribute("data-cursor");
    var seen = "";  // the ids of the last answer: the server draws only the messages the page does not have
    var timer = null;
    var busy = false;

    function atTop() { return window.scrollY < 120; }
    function say(text) { state.textContent = text; }

    function setUrl(on) {
      var url = new URL(window.location.href);
      if (on) url.searchParams.set("follow", "1"); else url.searchParams.delete("follow");
      history.replaceState(null, "", url);
    }

    function poll() {
      if (!toggle.checked || busy) return;
      if (!atTop() || document.hidden) { say(document.hidden ? "" : "paused while you scroll"); return; }
      busy = true;
      var query = toggle.getAttribute("data-query");
      var url = toggle.getAttribute("data-tail") + "?" + (query ? query + "&" : "") + "after=" + encodeURIComponent(cursor || "") + (seen ? "&seen=" + seen : "");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
        .then(function (answer) {
          cursor = answer.cursor || cursor;
          seen = answer.ids.join(",");
          var holder = document.createElement("ol");
          holder.innerHTML = answer.html;
          var fresh = Array.prototype.filter.call(holder.children, function (item) {
            return !list.querySelector('[data-pk="' + item.getAttribute("data-pk") + '"]');
          });
          for (var i = fresh.length - 1; i >= 0; i--) {
            fresh[i].classList.add("fresh");
            list.insertBefore(fresh[i], list.firstChild);
          }
          if (fresh.length) { var empty = document.getElementById("empty"); if (empty) empty.remove(); }
          say(fresh.length ? fresh.length + " new" : "live");
        })
        .catch(function () { say("reconnecting…"); })
        .finally(function () { busy = false; });
    }

    function start() { say("live"); poll(); timer = setInterval(poll, POLL_MS); }
    function stop() { clearInterval(timer); timer = null; say(""); }

    toggle.addEventListener("change", function () { setUrl(toggle.checked); if (toggle.checked) start(); else stop(); });
    window.addEventListener("scroll", function () { if (toggle.checked && atTop()) say("live"); }, { passive: true });
    if (toggle.checked) start();
  });
})();
