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

// The Leaks page's upload: sent by XMLHttpRequest so that the page shows how much of a
// large dump is sent; without the script the form is posted as it is.
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) {
    return;
  }
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var mb = function (n) { return (n / 1048576).toFixed(1); };
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) {
        return;
      }
      bar.hidden = false;
      bar.max = e.total;
      bar.value = e.loaded;
      form.setAttribute("data-sent", String(e.loaded));
      status.textContent = Math.floor(100 * e.loaded / e.total) + " % · " +
        mb(e.loaded) + " / " + mb(e.total) + " MB";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status >= 200 && xhr.status < 300 && xhr.responseURL) {
        location.assign(xhr.responseURL);
        return;
      }
      // The gateway's page saying what was wrong (rendered there, every value escaped).
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      status.textContent = form.getAttribute("data-broken");
      form.querySelector("button").disabled = false;
    });
    form.querySelector("button").disabled = true;
    xhr.send(new FormData(form));
  });
})();
