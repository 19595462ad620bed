// The console's one script: keeps the live lists of the page current without a reload.
// The page works without it (reload to see what changed).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch) {
    return;
  }
  var events = new EventSource("/console/events");
  events.addEventListener("decisions", function () {
    fetch("/console/live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          // Rendered by the gateway, every value escaped there.
          live.innerHTML = html;
          live.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () {});
  });
})();
