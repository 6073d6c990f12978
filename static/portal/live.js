// Live updates: one websocket per page; every element with data-live-topic is refreshed from
// its data-live-src when the server says its topic changed. On reconnect all are refreshed, so a
// phone that slept never shows a stale view.
(function () {
  "use strict";
  var delay = 500, socket = null, connectedBefore = false;
  function watched() { return document.querySelectorAll("[data-live-topic]"); }
  function refresh(el) {
    if (window.htmx && el.dataset.liveSrc) {
      window.htmx.ajax("GET", el.dataset.liveSrc, { target: el, swap: "outerHTML" });
    }
  }
  function connect() {
    if (!watched().length) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.onopen = function () {
      document.body.classList.remove("offline");
      delay = 500;
      var seen = {};
      watched().forEach(function (el) {
        var topic = el.dataset.liveTopic;
        if (!seen[topic]) { seen[topic] = true; socket.send(JSON.stringify({ subscribe: topic })); }
        if (connectedBefore) refresh(el);
      });
      connectedBefore = true;
    };
    socket.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.subscribed) { document.body.dataset.live = "on"; return; }
      if (!msg.topic) return;
      watched().forEach(function (el) {
        if (el.dataset.liveTopic === msg.topic && String(msg.version) !== el.dataset.liveVersion) refresh(el);
      });
    };
    socket.onclose = function () {
      document.body.classList.add("offline");
      document.body.dataset.live = "off";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  document.addEventListener("DOMContentLoaded", connect);
})();
