// sessiond pages: progressive enhancement only; every form works without
// this script.
"use strict";

// A password-reset link carries its token in the URL fragment, which the
// browser never sends to the server. Move it into the form and drop it
// from the address bar and the history.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("[data-token-field]");
  if (!field) {
    return;
  }
  var m = /(?:^|[#&])token=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  if (!m) {
    return;
  }
  var input = field.querySelector("input");
  input.value = m[1];
  field.hidden = true;
  history.replaceState(null, "", window.location.pathname);
  var next = document.getElementById("new_password");
  if (next) {
    next.focus();
  }
});
