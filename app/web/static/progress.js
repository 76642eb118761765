// "Run report" with a live progress bar. Without JavaScript the form posts to /reports and
// the report page refreshes itself; with it, the button calls the JSON API and polls it.
(function () {
  "use strict";
  const POLL_MS = 300;

  function show(progress, text, fraction) {
    progress.value = fraction;
    progress.textContent = text.textContent = Math.round(fraction * 100) + " %";
  }

  function poll(url, progress, text, onDone, onError) {
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.status === "Running") {
          show(progress, text, body.progress || 0);
          setTimeout(function () { poll(url, progress, text, onDone, onError); }, POLL_MS);
        } else if (body.status === "Complete") {
          show(progress, text, 1);
          onDone();
        } else {
          onError(body.error || body.message || "the report failed");
        }
      })
      .catch(function () { setTimeout(function () { poll(url, progress, text, onDone, onError); }, 1000); });
  }

  const form = document.getElementById("run-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const button = document.getElementById("run-report");
      const box = document.getElementById("run-status");
      const error = document.getElementById("run-error");
      button.disabled = true;
      error.hidden = true;
      const token = document.querySelector('meta[name="csrf-token"]');
      fetch(form.dataset.triggerUrl, { method: "POST", headers: {
        Accept: "application/json", "X-CSRFToken": token ? token.content : "" } })
        .then(function (r) {
          if (!r.ok) { throw new Error("the service answered " + r.status); }
          return r.json();
        })
        .then(function (body) {
          const id = body.report_id;
          document.getElementById("run-id").textContent = id.slice(0, 8);
          box.hidden = false;
          box.dataset.reportId = id;
          poll("/get_report?format=json&report_id=" + encodeURIComponent(id),
            document.getElementById("progress"), document.getElementById("progress-text"),
            function () { window.location.href = "/reports/" + id; },
            function (message) { error.textContent = "Report failed: " + message; error.hidden = false; button.disabled = false; });
        })
        .catch(function (e) { error.textContent = "Could not start a report: " + e.message; error.hidden = false; button.disabled = false; });
    });
  }

  const running = document.getElementById("progress-box");
  if (running) {
    poll(running.dataset.pollUrl, document.getElementById("progress"),
      document.getElementById("progress-text"),
      function () { window.location.href = running.dataset.reportUrl; },
      function () { window.location.reload(); });
  }
})();
