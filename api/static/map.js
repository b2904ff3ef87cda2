/* Maps of the members' pages: Leaflet served from our own static folder, no CDN. */
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }
  var TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  var ATTRIBUTION = "&copy; OpenStreetMap";
  var COLOURS = { land: "#7a5c1e", garden: "#2e7d32", bed: "#558b2f", tool: "#1565c0",
                  housing: "#6a1b9a", place: "#c62828" };

  function style(f) {
    var c = COLOURS[(f.properties || {}).category] || "#1f5f3a";
    return { color: c, weight: 2, fillOpacity: 0.25 };
  }

  function baseMap(el) {
    var map = L.map(el, { scrollWheelZoom: false, zoomControl: false });
    L.control.zoom({ zoomInTitle: el.getAttribute("data-zoom-in") || "+",
                     zoomOutTitle: el.getAttribute("data-zoom-out") || "-" }).addTo(map);
    L.tileLayer(TILES, { attribution: ATTRIBUTION, maxZoom: 19 }).addTo(map);
    return map;
  }

  function pointTo(feature, latlng) {
    return L.circleMarker(latlng, { radius: 7, weight: 2, color: style(feature).color, fillOpacity: 0.8 });
  }

  function fit(map, layer) {
    var b = layer.getBounds();
    if (b.isValid()) { map.fitBounds(b, { padding: [16, 16], maxZoom: 17 }); }
    else { map.setView([44.6975, 5.195], 13); }
  }

  document.querySelectorAll("[data-geojson-id]").forEach(function (el) {
    var src = document.getElementById(el.getAttribute("data-geojson-id"));
    if (!src) { return; }
    var data = JSON.parse(src.textContent || "null");
    var map = baseMap(el);
    var layer = L.geoJSON(data, {
      style: style,
      pointToLayer: pointTo,
      onEachFeature: function (f, l) {
        var p = f.properties || {};
        if (p.url) {
          var a = document.createElement("a");
          a.href = p.url; a.textContent = p.name || "";
          l.bindPopup(a);
        }
      }
    }).addTo(map);
    fit(map, layer);
  });

  /* A small map to choose the commons of a field form: tapping a shape picks it in the list. */
  document.querySelectorAll("[data-pick-for]").forEach(function (el) {
    var select = document.getElementById(el.getAttribute("data-pick-for"));
    var src = document.getElementById(el.getAttribute("data-options-id"));
    if (!select || !src) { return; }
    var items = JSON.parse(src.textContent || "[]");
    var map = baseMap(el);
    var fc = { type: "FeatureCollection", features: items.filter(function (c) { return c.geometry; }).map(function (c) {
      return { type: "Feature", geometry: c.geometry, properties: { id: c.id, name: c.name, category: c.category } };
    }) };
    var layer = L.geoJSON(fc, {
      style: style,
      pointToLayer: pointTo,
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.name);
        l.on("click", function () {
          select.value = String(f.properties.id);
          select.dispatchEvent(new Event("change", { bubbles: true }));
        });
      }
    }).addTo(map);
    fit(map, layer);
  });
})();
