/* commons-map service worker: the field forms and their assets work with no connection.
   Pages: network first, the last good copy when offline. Static files: cache first. */
"use strict";
var CACHE = "commons-field-v1";
var PAGES = ["/app/field", "/app/work/new", "/app/harvest/new", "/app/soil/new", "/app/"];
var ASSETS = [
  "/app/static/app.css", "/app/static/field.js", "/app/static/map.js", "/app/static/sw-register.js",
  "/app/static/icon.svg", "/app/static/icon-192.png",
  "/app/static/vendor/leaflet/leaflet.js", "/app/static/vendor/leaflet/leaflet.css",
  "/app/manifest.webmanifest"
];

function keep(cache, url) {
  return fetch(url, { credentials: "same-origin" }).then(function (resp) {
    if (resp.ok && !resp.redirected) { return cache.put(url, resp); }
  }).catch(function () { /* offline while installing: next time */ });
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(ASSETS.concat(PAGES).map(function (u) { return keep(cache, u); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(url) { return PAGES.indexOf(url.pathname) !== -1; }

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") { return; }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf("/app/static/") === 0) {
    event.respondWith(caches.match(req, { ignoreSearch: true }).then(function (hit) {
      return hit || fetch(req).then(function (resp) {
        if (resp.ok) { var copy = resp.clone(); caches.open(CACHE).then(function (c) { c.put(url.pathname, copy); }); }
        return resp;
      });
    }));
    return;
  }
  if (req.mode === "navigate" || isPage(url)) {
    event.respondWith(fetch(req).then(function (resp) {
      if (resp.ok && !resp.redirected && isPage(url)) {
        var copy = resp.clone();
        caches.open(CACHE).then(function (c) { c.put(url.pathname, copy); });
      }
      return resp;
    }).catch(function () {
      return caches.match(url.pathname).then(function (hit) {
        return hit || caches.match("/app/field").then(function (field) {
          return field || new Response("<!doctype html><meta charset=utf-8><title>Offline</title><p>Hors ligne · Offline</p>",
            { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
        });
      });
    }));
  }
});
