// Live updates: one websocket per page; every element with data-live-topic is refreshed from
// its data-live-src when the server says its topic changed. The first subscribe says which version
// the page shows ("since"), so a change between render and connect is not missed; after a reconnect
// every element is refreshed, so a phone that slept never shows a stale view. A topic the viewer
// lost access to is blanked. A framed widget authenticates its socket with its embed token.
// Refetches send If-None-Match with the ETag of what the element shows; a 304 leaves it as it is.
(function () {
  "use strict";
  var delay = 500, socket = null, connectedBefore = false, retry = null;
  function watched() { return document.querySelectorAll("[data-live-topic]"); }
  // One refresh per element at a time, answers applied in order: a change announced while a
  // refresh is on its way triggers one more refresh after it, never an older render over a newer.
  var inflight = {}, again = {};
  function keyOf(el) { return el.dataset.liveTopic + " " + el.dataset.liveSrc; }
  function find(key) {
    var found = null;
    watched().forEach(function (el) { if (keyOf(el) === key) found = el; });
    return found;
  }
  function refresh(el) {
    var key = keyOf(el), src = el.dataset.liveSrc;
    if (!src || !window.htmx) return;
    if (inflight[key]) { again[key] = true; return; }
    inflight[key] = true;
    // The server names what it renders (ETag); naming what we show gets 304 when nothing changed.
    var headers = { "HX-Request": "true" }, etag = null;
    if (el.dataset.liveEtag) headers["If-None-Match"] = '"' + el.dataset.liveEtag + '"';
    fetch(src, { credentials: "same-origin", headers: headers })
      .then(function (response) {
        etag = (response.headers.get("ETag") || "").replace(/^W\//, "").replace(/"/g, "");
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        var current = find(key);
        if (html === null || !current) return;
        window.htmx.swap(current, html, { swapStyle: "outerHTML" });
        var swapped = find(key);
        if (swapped && etag) swapped.dataset.liveEtag = etag;
      })
      .catch(function () { /* offline: the reconnect refreshes everything */ })
      .finally(function () {
        delete inflight[key];
        if (again[key]) { delete again[key]; var next = find(key); if (next) refresh(next); }
      });
  }
  function revoke(topic) {
    watched().forEach(function (el) {
      if (el.dataset.liveTopic !== topic) return;
      el.replaceChildren();
      el.removeAttribute("data-live-topic");
      el.hidden = true;
    });
    var lost = document.querySelector(".lost");
    if (lost) lost.hidden = false;
  }
  function connect() {
    retry = null;
    if (!watched().length) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var embed = document.body.dataset.embed;
    socket = new WebSocket(scheme + location.host + "/ws/live/" + (embed ? "?e=" + encodeURIComponent(embed) : ""));
    socket.onopen = function () {
      document.body.classList.remove("offline");
      delay = 500;
      var seen = {};
      watched().forEach(function (el) {
        var topic = el.dataset.liveTopic, message = { subscribe: topic };
        var version = parseInt(el.dataset.liveVersion, 10);
        if (!connectedBefore && !isNaN(version)) message.since = version;
        if (!seen[topic]) { seen[topic] = true; socket.send(JSON.stringify(message)); }
        if (connectedBefore) refresh(el);
      });
      connectedBefore = true;
    };
    socket.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.subscribed) { document.body.dataset.live = "on"; return; }
      if (msg.revoked) { revoke(msg.revoked); return; }
      if (!msg.topic) return;
      watched().forEach(function (el) {
        if (el.dataset.liveTopic === msg.topic && String(msg.version) !== el.dataset.liveVersion) refresh(el);
      });
    };
    socket.onclose = function () {
      document.body.classList.add("offline");
      document.body.dataset.live = "off";
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  // Back online, or the phone woke the page: reconnect now instead of at the end of the backoff.
  function reconnectNow() {
    if (!retry || document.visibilityState === "hidden") return;
    clearTimeout(retry);
    retry = null;
    delay = 500;
    connect();
  }
  // htmx swaps nothing on an error answer (a 429 lockout, a 403, a 409): show its alert (our error
  // pages carry one, in the reader's language) above what the request was for, not a silent button.
  document.addEventListener("htmx:responseError", function (event) {
    var target = event.detail.target, xhr = event.detail.xhr;
    if (!target || !xhr) return;
    var text = "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var said = doc.querySelector("main [role=alert]") || doc.querySelector("main h1");
      text = said ? said.textContent.trim() : "";
    } catch (e) { /* not HTML */ }
    var note = target.querySelector(":scope > .htmx-error") || document.createElement("p");
    note.className = "notice error htmx-error";
    note.setAttribute("role", "alert");
    note.textContent = text || (xhr.status + " " + (xhr.statusText || ""));
    if (!note.parentNode) target.insertBefore(note, target.firstChild);
  });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", reconnectNow);
  document.addEventListener("DOMContentLoaded", connect);
})();
