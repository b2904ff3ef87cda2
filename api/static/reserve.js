/* The reservation page's "free now near me": read the position, put it in the form, send it. */
(function () {
  "use strict";
  var form = document.getElementById("near-form");
  if (!form) { return; }
  var near = document.getElementById("f-near"), status = document.getElementById("near-status");
  form.addEventListener("submit", function (ev) {
    if (form.getAttribute("data-located")) { return; }
    ev.preventDefault();
    if (!navigator.geolocation) { status.textContent = status.getAttribute("data-none"); return; }
    status.textContent = status.getAttribute("data-wait");
    navigator.geolocation.getCurrentPosition(function (pos) {
      near.value = pos.coords.longitude.toFixed(6) + "," + pos.coords.latitude.toFixed(6);
      form.setAttribute("data-located", "1");
      form.submit();
    }, function () {
      status.textContent = status.getAttribute("data-denied");
    }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 });
  });
})();
