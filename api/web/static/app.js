// meterwatch workbench: one-click lifecycle actions without a reload, and live updates.
// No inline script anywhere (CSP script-src 'self'); everything the page needs is read from the DOM.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  function label(status) {
    return document.body.getAttribute("data-status-" + status) || status;
  }
  function setStatus(el, status) {
    var cell = el.querySelector(".status");
    if (cell) { cell.textContent = label(status); }
    el.classList.remove("st-open", "st-acknowledged", "st-resolved");
    el.classList.add("st-" + status);
    if (status !== "open") {
      el.querySelectorAll("button.ack").forEach(function (b) { b.closest("form").remove(); });
    }
    if (status === "resolved") {
      el.querySelectorAll("details.outcome").forEach(function (d) { d.remove(); });
    }
  }
  function flash(el, text) {
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = text;
    el.appendChild(p);
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("js-life") || !window.fetch) { return; }
    ev.preventDefault();
    var row = form.closest("[data-alert-id]");
    var body = new URLSearchParams(new FormData(form));
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf(),
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (resp) {
      if (resp.ok) { return resp.json().then(function (v) { setStatus(row, v.status); }); }
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      if (resp.status === 409) { flash(row, document.body.getAttribute("data-conflict")); return; }
      if (resp.status === 401 || resp.status === 303) { window.location.reload(); return; }
      return resp.json().then(function (e) { flash(row, e.message || String(resp.status)); });
    }).catch(function () { form.submit(); });
  });
  function live() {
    var list = document.getElementById("worklist");
    if (!list || !list.getAttribute("data-live") || !window.EventSource) { return; }
    var es = new EventSource("/events");
    es.addEventListener("ready", function () { list.setAttribute("data-live-state", "ready"); });
    es.addEventListener("error", function () { list.setAttribute("data-live-state", "reconnecting"); });
    es.addEventListener("alert", function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      var row = document.querySelector('[data-alert-id="' + (window.CSS && CSS.escape ? CSS.escape(ev.alert_id) : ev.alert_id) + '"]');
      if (ev.type === "lifecycle" && row) { setStatus(row, ev.status); return; }
      if (ev.type === "alert" && !row) {
        var note = document.getElementById("live-notice");
        if (note) { note.hidden = false; }
      }
    });
  }
  document.addEventListener("DOMContentLoaded", live);
})();
