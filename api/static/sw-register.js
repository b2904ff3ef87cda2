/* Install the service worker that keeps the field forms usable offline. */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator)) { return; }
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(function () { /* stays online-only */ });
  /* Signing out: forget the cached pages (what waits to be sent stays on the phone). */
  document.querySelectorAll('form[action="/app/signout"]').forEach(function (form) {
    form.addEventListener("submit", function () {
      if (window.caches) { caches.keys().then(function (keys) { keys.forEach(function (k) { caches.delete(k); }); }); }
    });
  });
})();
