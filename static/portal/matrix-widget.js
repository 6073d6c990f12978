// Matrix widget bootstrap: ask the Matrix client who is looking (widget API, get_openid), trade that
// OpenID token for a signed embed link at /w/matrix/session, then open the widget itself. The token
// is checked with the homeserver by the portal; $matrix_user_id in the URL is never trusted.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var status = document.getElementById("status");
  function fail(text) { status.textContent = text; document.body.dataset.state = "failed"; }
  var parent = params.get("parentUrl") || document.referrer;
  var widgetId = params.get("widgetId");
  if (!widgetId || !parent || window.parent === window) { fail(status.dataset.notEmbedded); return; }
  var api = new mxwidgets.WidgetApi(widgetId, new URL(parent).origin);
  api.start();
  api.requestOpenIDConnectToken()
    .then(function (credentials) {
      return fetch(document.body.dataset.sessionUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          access_token: credentials.access_token,
          matrix_server_name: credentials.matrix_server_name,
          path: document.body.dataset.path
        })
      });
    })
    .then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.title || String(response.status));
        return body;
      });
    })
    .then(function (body) { location.replace(body.embed_url); })
    .catch(function (error) { fail(status.dataset.failed + " " + error.message); });
})();
