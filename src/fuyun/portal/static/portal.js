/* fuyun portal: small progressive enhancements. Every page works without this file.
 *
 * 1. Focus the first field in error (or the alert) so keyboard and screen-reader users
 *    land on what needs fixing.
 * 2. Long actions: a form with data-progress="<workflow kind>" keeps working as a plain
 *    POST; while the browser waits for the answer, the workflow's steps are polled from
 *    /ui/workflows.json and shown in the form's progress slot.
 * 3. Workflow rows/pages ([data-workflow]) that are still running refresh themselves.
 * 4. Heat maps: arrow keys move between cells.
 * 5. "Copy" buttons for a freshly issued token.
 * 6. A running migration batch ([data-batch]) moves its progress bar, and reloads the
 *    page (each VM's outcome) when it ends.
 */
(function () {
  "use strict";
  var TERMINAL = { succeeded: 1, rolled_back: 1, failed: 1 };

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        var type = r.headers.get("content-type") || "";
        if (!r.ok || type.indexOf("application/json") < 0) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }

  function describe(wf) {
    var text = wf.state + " · step " + Math.min(wf.done + 1, wf.total) + " of " + wf.total;
    if (wf.current) { text += " (" + wf.current + ")"; }
    if (TERMINAL[wf.state]) { text = wf.state + " (" + wf.done + "/" + wf.total + ")"; }
    return text;
  }

  function paint(box, wf) {
    var bar = box.querySelector("progress");
    if (!bar) {
      bar = document.createElement("progress");
      box.appendChild(bar);
    }
    bar.max = Math.max(wf.total, 1);
    bar.value = wf.done;
    bar.setAttribute("aria-label", wf.kind + " progress");
    var label = box.querySelector(".wf-text");
    if (!label) {
      label = document.createElement("span");
      label.className = "wf-text";
      box.appendChild(label);
    }
    label.textContent = describe(wf);
    box.setAttribute("data-state", wf.state);
  }

  function focusError() {
    var bad = document.querySelector("[aria-invalid='true']");
    if (bad && bad.focus) { bad.focus(); return; }
    var alert = document.querySelector(".alert[role='alert']");
    if (alert) { alert.focus(); }
  }

  function watchSubmit(form) {
    form.addEventListener("submit", function () {
      var kind = form.getAttribute("data-progress");
      var subject = form.getAttribute("data-subject");
      var field = form.getAttribute("data-subject-field");
      if (field && form.elements[field]) { subject = form.elements[field].value.trim(); }
      var slot = form.querySelector(".progress-slot");
      var button = form.querySelector("button[type='submit']");
      if (button) {
        // Disabled a tick later, so the browser still sends the click that submitted it.
        setTimeout(function () { button.disabled = true; }, 0);
      }
      if (!slot) { return; }
      slot.textContent = "Working…";
      var started = Date.now();
      // Only workflows started after this page was rendered (server clock): an earlier
      // resize of the same VM must not pass for this one.
      var url = "/ui/workflows.json?kind=" + encodeURIComponent(kind) +
        "&subject=" + encodeURIComponent(subject || "") +
        "&since=" + encodeURIComponent(form.getAttribute("data-since") || "");
      function poll() {
        getJSON(url).then(function (body) {
          var wf = body.items && body.items[0];
          if (wf) {
            slot.textContent = "";
            paint(slot, wf);
          }
          if (!wf || !TERMINAL[wf.state]) { setTimeout(poll, 400); }
        }).catch(function () {
          if (Date.now() - started < 60000) { setTimeout(poll, 1000); }
        });
      }
      setTimeout(poll, 100);
    });
  }

  function watchWorkflow(box) {
    if (TERMINAL[box.getAttribute("data-state")]) { return; }
    var id = box.getAttribute("data-workflow");
    function poll() {
      getJSON("/ui/workflows/" + encodeURIComponent(id) + ".json").then(function (wf) {
        paint(box, wf);
        if (!TERMINAL[wf.state]) { setTimeout(poll, 1000); }
      }).catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 1000);
  }

  function watchBatch(box) {
    if (box.getAttribute("data-state") !== "running") { return; }
    var id = box.getAttribute("data-batch");
    var bar = box.querySelector("progress");
    var text = box.querySelector("#batch-text");
    function poll() {
      getJSON("/ops/migrations/batches/" + encodeURIComponent(id) + ".json").then(function (b) {
        var done = b.moved + b.failed;
        if (bar) { bar.max = Math.max(b.total, 1); bar.value = done; }
        if (text) {
          text.textContent = b.moved + " moved, " + b.failed + " failed, " + (b.total - done) + " to go";
        }
        if (b.state === "running") { setTimeout(poll, 500); } else { window.location.reload(); }
      }).catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 300);
  }

  function arrowKeys(grid) {
    grid.addEventListener("keydown", function (event) {
      var cells = Array.prototype.slice.call(grid.querySelectorAll(".cell"));
      var i = cells.indexOf(document.activeElement);
      if (i < 0) { return; }
      var perRow = 1;
      var top = cells[0].offsetTop;
      while (perRow < cells.length && cells[perRow].offsetTop === top) { perRow++; }
      var next = { ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + perRow, ArrowUp: i - perRow,
        Home: 0, End: cells.length - 1 }[event.key];
      if (next === undefined) { return; }
      event.preventDefault();
      cells[Math.max(0, Math.min(cells.length - 1, next))].focus();
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source || !navigator.clipboard) { return; }
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusError();
    document.querySelectorAll("form[data-progress]").forEach(watchSubmit);
    document.querySelectorAll("[data-workflow]").forEach(watchWorkflow);
    document.querySelectorAll("[data-batch]").forEach(watchBatch);
    document.querySelectorAll(".heatgrid").forEach(arrowKeys);
    copyButtons();
  });
})();
