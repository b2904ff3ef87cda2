/* Field forms: position, offline queue (IndexedDB) with an idempotency key, sync when online. */
(function () {
  "use strict";
  var S = {};
  var stringsEl = document.getElementById("field-strings");
  if (stringsEl) { try { S = JSON.parse(stringsEl.textContent); } catch (e) { S = {}; } }
  function t(k, params) {
    var s = S[k] || k;
    if (params) { Object.keys(params).forEach(function (p) { s = s.replace("%(" + p + ")s", params[p]); }); }
    return s;
  }
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; }
  /* Who is signed in on this page: an entry is only ever sent as the member who saved it (a shared
     phone holds the others' entries, unread, until their author signs in again). */
  function me() { var m = document.querySelector('meta[name="commons-member"]'); return m ? m.content : ""; }
  function mine(e) { return !!e.author && e.author === me(); }
  function newKey() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  /* --- the queue in IndexedDB ------------------------------------------------------------- */
  var DB = "commons-map-field", STORE = "queue";
  function db() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "key" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function tx(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var x = d.transaction(STORE, mode), store = x.objectStore(STORE), out;
        out = fn(store);
        x.oncomplete = function () { resolve(out && out.result !== undefined ? out.result : out); };
        x.onerror = function () { reject(x.error); };
      });
    });
  }
  function all() { return tx("readonly", function (s) { return s.getAll(); }); }
  function put(entry) { return tx("readwrite", function (s) { s.put(entry); }); }
  function remove(key) { return tx("readwrite", function (s) { s["delete"](key); }); }

  /* --- what waits, shown to the member ------------------------------------------------------ */
  var box = document.getElementById("sync-queue");
  function render() {
    if (!box || !window.indexedDB) { return Promise.resolve(); }
    return all().then(function (items) {
      var kind = box.getAttribute("data-kind");
      var held = items.filter(function (e) { return !mine(e); }).length;
      items = items.filter(mine);
      if (kind && kind !== "all") { items = items.filter(function (e) { return e.kind === kind; }); }
      var list = box.querySelector(".queue-items"), summary = box.querySelector(".queue-summary");
      if (!list) { list = document.createElement("ul"); list.className = "queue-items"; box.appendChild(list); }
      if (!summary) { summary = document.createElement("p"); summary.className = "queue-summary"; box.insertBefore(summary, list); }
      list.innerHTML = "";
      var others = box.querySelector(".queue-held");
      if (!others) { others = document.createElement("p"); others.className = "queue-held"; box.insertBefore(others, list); }
      others.textContent = held ? (held === 1 ? t("held_one") : t("held_many", { num: held })) : "";
      others.hidden = !held;
      if (!items.length) {
        if (box.getAttribute("data-just-synced")) { summary.textContent = t("synced"); box.hidden = false; }
        else { box.hidden = !held; summary.textContent = ""; }
        return;
      }
      box.hidden = false;
      summary.textContent = items.length === 1 ? t("waiting_one") : t("waiting_many", { num: items.length });
      items.sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; });
      items.forEach(function (e) {
        var li = document.createElement("li");
        li.setAttribute("data-key", e.key);
        var day = e.fields.work_date || e.fields.harvested_on || e.fields.sampled_on || "";
        if (day) {
          try { day = new Date(day + "T12:00:00").toLocaleDateString(document.documentElement.lang, { day: "numeric", month: "short", year: "numeric" }); }
          catch (err) { /* keep ISO */ }
        }
        li.textContent = t("kind_" + e.kind) + " · " + (e.label || "") + " · " + day;
        if (e.status === "refused" || e.status === "conflict") {
          var msg = document.createElement("div");
          msg.className = "field-error";
          msg.textContent = (e.status === "conflict" ? t("conflict") : t("refused")) + " " + (e.message || "");
          li.appendChild(msg);
          var del = document.createElement("button");
          del.type = "button"; del.className = "small secondary"; del.textContent = t("discard");
          del.addEventListener("click", function () { remove(e.key).then(render); });
          li.appendChild(del);
        } else if (e.status === "signed_out") {
          var so = document.createElement("div"); so.textContent = t("signed_out"); li.appendChild(so);
        }
        list.appendChild(li);
      });
    });
  }

  /* --- sending what waits -------------------------------------------------------------------- */
  var syncing = false;
  function sync() {
    if (syncing || !window.indexedDB || !navigator.onLine) { return Promise.resolve(); }
    syncing = true;
    return all().then(function (items) {
      var pending = items.filter(function (e) { return mine(e) && e.status !== "refused" && e.status !== "conflict"; });
      var sent = 0;
      var chain = Promise.resolve(true);
      pending.forEach(function (e) {
        chain = chain.then(function (goOn) {
          if (!goOn) { return false; }
          return fetch("/app/sync", {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
            body: JSON.stringify({ kind: e.kind, key: e.key, fields: e.fields, author: e.author })
          }).then(function (resp) {
            if (resp.status === 201 || resp.status === 200) { sent += 1; return remove(e.key).then(function () { return true; }); }
            return resp.json().catch(function () { return {}; }).then(function (body) {
              if (body.status === "held") { return true; }  /* not this member's: it stays, for its author */
              if (resp.status === 401 || resp.status === 403) { e.status = "signed_out"; return put(e).then(function () { return false; }); }
              if (resp.status === 409) { e.status = "conflict"; }
              else if (resp.status >= 500) { return true; }
              else { e.status = "refused"; }
              e.message = body.message || "";
              return put(e).then(function () { return true; });
            });
          }, function () { return false; /* the network went away again */ });
        });
      });
      return chain.then(function () {
        if (sent && box) { box.setAttribute("data-just-synced", "1"); }
      });
    }).then(function () { syncing = false; return render(); }, function () { syncing = false; });
  }

  /* --- the forms ----------------------------------------------------------------------------- */
  function fieldsOf(form) {
    var out = {};
    var fd = new FormData(form);
    fd.forEach(function (v, k) {
      if (k === "csrf_token") { return; }
      if (typeof v !== "string") { return; }
      out[k] = out[k] !== undefined ? out[k] + "," + v : v;
    });
    return out;
  }
  function labelOf(form) {
    var sel = form.querySelector("#f-commons_id");
    return sel && sel.selectedIndex > 0 ? sel.options[sel.selectedIndex].text : "";
  }
  function say(form, text, cls) {
    var p = document.getElementById("saved-message");
    if (!p) { p = document.createElement("p"); p.id = "saved-message"; form.parentNode.insertBefore(p, form); }
    p.className = cls || "flash"; p.setAttribute("role", "status"); p.textContent = text;
  }
  function queue(form) {
    var keyInput = form.querySelector('input[name="source_ref"]');
    var entry = { key: keyInput.value, kind: form.getAttribute("data-offline-kind"), fields: fieldsOf(form),
                  label: labelOf(form), created_at: new Date().toISOString(), status: "waiting", author: me() };
    return put(entry).then(function () {
      say(form, t("queued"), "next-step");
      var keepDate = {};
      ["work_date", "harvested_on", "sampled_on", "commons_id"].forEach(function (n) {
        var el = form.elements[n]; if (el) { keepDate[n] = el.value; }
      });
      form.reset();
      Object.keys(keepDate).forEach(function (n) { form.elements[n].value = keepDate[n]; });
      keyInput.value = newKey();
      return render();
    });
  }
  function bind(form) {
    if (!form || form.getAttribute("data-bound")) { return; }
    form.setAttribute("data-bound", "1");
    var keyInput = form.querySelector('input[name="source_ref"]');
    var hasErrors = !!document.querySelector(".field-error, .alert");
    if (keyInput && !hasErrors) { keyInput.value = newKey(); }
    form.addEventListener("submit", function (ev) {
      if (!window.indexedDB || !window.fetch) { return; }  /* a plain form post */
      ev.preventDefault();
      if (!navigator.onLine) { queue(form); return; }
      var button = form.querySelector('button[type="submit"]');
      if (button) { button.disabled = true; }
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" }).then(function (resp) {
        if (resp.redirected && resp.ok) { window.location.assign(resp.url); return; }
        return resp.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var main = doc.getElementById("main");
          if (main) { document.getElementById("main").replaceWith(main); init(); }
          if (button) { button.disabled = false; }
        });
      }, function () {
        if (button) { button.disabled = false; }
        queue(form);
      });
    });
  }

  /* --- position ------------------------------------------------------------------------------- */
  function position(auto) {
    var lat = document.getElementById("f-lat"), lon = document.getElementById("f-lon");
    var status = document.getElementById("geo-status");
    if (!lat || !lon) { return; }
    if (!navigator.geolocation) { if (status && !auto) { status.textContent = t("geo_none"); } return; }
    if (status && !auto) { status.textContent = t("geo_wait"); }
    navigator.geolocation.getCurrentPosition(function (pos) {
      lat.value = pos.coords.latitude.toFixed(7);
      lon.value = pos.coords.longitude.toFixed(7);
      if (status) { status.textContent = t("geo_ok", { m: Math.round(pos.coords.accuracy || 0) }); }
    }, function () {
      if (status && !auto) { status.textContent = t("geo_denied"); }
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function units() {
    var ind = document.getElementById("f-indicator"), unit = document.getElementById("f-unit");
    if (!ind || !unit) { return; }
    function apply() {
      var code = ind.value, first = null;
      Array.prototype.forEach.call(unit.options, function (o) {
        var k = o.getAttribute("data-indicator");
        if (!k) { return; }
        o.hidden = !!code && k !== code;
        o.disabled = o.hidden;
        if (!o.hidden && first === null) { first = o; }
      });
      if (unit.selectedOptions.length && unit.selectedOptions[0].hidden) { unit.value = first ? first.value : ""; }
      if (!unit.value && first && code) { unit.value = first.value; }
    }
    ind.addEventListener("change", apply);
    apply();
  }

  function init() {
    box = document.getElementById("sync-queue");
    document.querySelectorAll("form[data-offline-kind]").forEach(bind);
    var btn = document.getElementById("use-position");
    if (btn && !btn.getAttribute("data-bound")) {
      btn.setAttribute("data-bound", "1");
      btn.addEventListener("click", function () { position(false); });
      if (navigator.permissions && navigator.permissions.query) {
        navigator.permissions.query({ name: "geolocation" }).then(function (p) {
          if (p.state === "granted") { position(true); }
        }).catch(function () {});
      }
    }
    units();
    render();
  }

  window.addEventListener("online", function () { sync(); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { sync(); } });
  setInterval(sync, 30000);
  init();
  sync();
  window.commonsField = { sync: sync, render: render, all: all };
})();
