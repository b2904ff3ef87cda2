/* The place of an offer or a need: tap a small map to fill the latitude and longitude fields.
   The dashed square is what others are shown unless "show the exact place" is ticked: the
   server moves the point to the nearest node of a 0.005-degree grid (about 500 m). */
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }
  var GRID = 0.005;
  var HOME = [44.6975, 5.195];

  function num(input) {
    var v = parseFloat((input.value || "").replace(",", "."));
    return isFinite(v) ? v : null;
  }

  document.querySelectorAll("[data-place-picker]").forEach(function (el) {
    var lat = document.getElementById(el.getAttribute("data-lat"));
    var lon = document.getElementById(el.getAttribute("data-lon"));
    var exact = document.getElementById(el.getAttribute("data-exact"));
    var status = document.getElementById(el.getAttribute("data-status"));
    if (!lat || !lon) { return; }
    var map = L.map(el, { scrollWheelZoom: false, zoomControl: false });
    L.control.zoom({ zoomInTitle: el.getAttribute("data-zoom-in") || "+",
                     zoomOutTitle: el.getAttribute("data-zoom-out") || "-" }).addTo(map);
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                { attribution: "&copy; OpenStreetMap", maxZoom: 19 }).addTo(map);
    var marker = null, square = null;

    function draw(say) {
      var y = num(lat), x = num(lon);
      if (marker) { map.removeLayer(marker); marker = null; }
      if (square) { map.removeLayer(square); square = null; }
      if (y === null || x === null || Math.abs(y) > 90 || Math.abs(x) > 180) {
        if (say && status) { status.textContent = el.getAttribute("data-cleared") || ""; }
        return;
      }
      marker = L.circleMarker([y, x], { radius: 7, weight: 2, color: "#1f5f3a", fillOpacity: 0.8 }).addTo(map);
      if (!exact || !exact.checked) {
        var sy = Math.round(y / GRID) * GRID, sx = Math.round(x / GRID) * GRID, h = GRID / 2;
        square = L.rectangle([[sy - h, sx - h], [sy + h, sx + h]],
                             { color: "#8a6100", weight: 2, dashArray: "6 4", fillOpacity: 0.08 }).addTo(map);
      }
      if (say && status) {
        status.textContent = (el.getAttribute("data-chosen") || "")
          .replace("{lat}", lat.value).replace("{lon}", lon.value);
      }
    }

    map.on("click", function (ev) {
      lat.value = ev.latlng.lat.toFixed(6);
      lon.value = ev.latlng.lng.toFixed(6);
      draw(true);
    });
    [lat, lon].forEach(function (input) { input.addEventListener("change", function () { draw(true); }); });
    if (exact) { exact.addEventListener("change", function () { draw(false); }); }
    document.querySelectorAll('[data-place-clear="' + el.id + '"]').forEach(function (button) {
      button.addEventListener("click", function () { lat.value = ""; lon.value = ""; draw(true); });
    });
    var y0 = num(lat), x0 = num(lon);
    map.setView(y0 !== null && x0 !== null && Math.abs(y0) <= 90 && Math.abs(x0) <= 180 ? [y0, x0] : HOME, 14);
    draw(false);
  });
})();
