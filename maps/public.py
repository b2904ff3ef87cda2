"""The public map: folium, with the big layers loaded by URL (vector tiles, GeoJSON), never embedded.

``build_public_map`` takes where the layers live (URLs: the server's endpoints, or files beside a
static page) and answers a ``folium.Map``; ``render`` gives its HTML. The HTML does not grow with
the data: restored land comes as Mapbox Vector Tiles (Leaflet.VectorGrid on a canvas), gardens
and tools/places as GeoJSON fetched by URL (tools and places clustered). The JavaScript and CSS
are served from our own copy (``maps/static/vendor``) so the page works offline too.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.plugins import MarkerCluster, VectorGridProtobuf
from folium.template import Template

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
LANGS = ("fr", "en")

TEXT = {
    "fr": {
        "title": "Terres restaurées et communs partagés",
        "restored_land": "Terres restaurées (état du sol)",
        "gardens": "Jardins partagés",
        "tools_and_places": "Outils et lieux partagés",
        "legend": "État de régénération du sol",
        "garden": "Jardin partagé",
        "tool": "Outil",
        "place": "Lieu partagé",
        "area": "Surface",
        "status": "État du sol",
        "soc_stock": "Carbone du sol",
        "soc_trend": "Évolution du carbone",
        "co2e": "CO₂e stocké",
        "harvests": "Récoltes",
        "hours": "Heures bénévoles",
        "last_sampled": "Dernier prélèvement",
        "state": "État",
        "kind": "Type",
        "approximate": "Emplacement approximatif",
        "per_year": "/an",
        "other_lang": "English",
        "open_data": "Données ouvertes",
        "basis_esm": "à masse de sol équivalente",
        "basis_fixed": "à profondeur fixe",
        "merged": "Parcelles regroupées à ce zoom : zoomez pour les voir une à une",
        "parcels": "Parcelles",
        "legend_merged": "Vue de loin, les parcelles voisines de même état forment un seul bloc.",
        "partners": "Initiatives partenaires",
        "partner_unavailable": "indisponible",
        "partner_copy_of": "copie du",
        "licence": "Licence",
        "source": "Source",
        "partner_cut": "premières entités seulement",
        "colon": " : ",
        "basemap_failed": "Le fond de carte OpenStreetMap n'a pas pu être chargé : "
                          "les terres, jardins, outils et lieux restent affichés sur fond uni.",
    },
    "en": {
        "title": "Restored land and shared commons",
        "restored_land": "Restored land (soil status)",
        "gardens": "Shared gardens",
        "tools_and_places": "Shared tools and places",
        "legend": "Soil regeneration status",
        "garden": "Shared garden",
        "tool": "Tool",
        "place": "Shared place",
        "area": "Area",
        "status": "Soil status",
        "soc_stock": "Soil carbon",
        "soc_trend": "Carbon trend",
        "co2e": "CO₂e stored",
        "harvests": "Harvests",
        "hours": "Volunteer hours",
        "last_sampled": "Last sampled",
        "state": "State",
        "kind": "Kind",
        "approximate": "Approximate location",
        "per_year": "/yr",
        "other_lang": "Français",
        "open_data": "Open data",
        "basis_esm": "equivalent soil mass",
        "basis_fixed": "fixed depth",
        "merged": "Parcels grouped at this zoom: zoom in to see them one by one",
        "parcels": "Parcels",
        "legend_merged": "Zoomed out, neighbouring parcels of one status are drawn as one block.",
        "partners": "Partner initiatives",
        "partner_unavailable": "unavailable",
        "partner_copy_of": "copy of",
        "licence": "Licence",
        "source": "Source",
        "partner_cut": "first features only",
        "colon": ": ",
        "basemap_failed": "The OpenStreetMap base map could not be loaded: "
                          "land, gardens, tools and places are still shown on a plain background.",
    },
}
GARDEN_COLOUR = "#7b3294"
TOOL_COLOUR = "#2c7bb6"
PLACE_COLOUR = "#e66101"
# Apart from the soil statuses (greens, orange, red, grey) and our gardens, tools and places.
PARTNER_COLOURS = ("#01665e", "#c51b7d", "#8c510a", "#4d4d4d", "#1f78b4", "#762a83")


@dataclass(frozen=True)
class PartnerLayerSource:
    """One layer of a partner: its title and where the page reads our cached copy of it."""

    key: str  # unique on the page: "<partner id>/<collection id>"
    title: str
    url: str
    licence: str
    truncated: bool = False


@dataclass(frozen=True)
class PartnerSource:
    """A partner initiative as the map shows it: name, link, licence, whether it answered lately."""

    name: str
    link: str
    licence: str
    available: bool
    layers: tuple[PartnerLayerSource, ...] = ()
    copy_of: str | None = None  # the date of the copy shown while the partner is unavailable


@dataclass(frozen=True)
class Sources:
    """Where the page finds its layers and its scripts (absolute paths or relative URLs)."""

    restored_land_tiles: str  # a {z}/{x}/{y} template of MVT tiles
    gardens_geojson: str
    tools_and_places_geojson: str
    assets: str  # base URL of the vendored Leaflet files
    # Where a parcel's figures are asked on click ({id} appended); None: they are in the tiles.
    restored_land_items: str | None = None
    other_lang_href: str | None = None
    open_data_href: str | None = None
    max_native_zoom: int | None = None  # static exports have tiles up to this zoom only
    min_tile_zoom: int | None = None
    tile_bounds: tuple[float, float, float, float] | None = None  # minx, miny, maxx, maxy
    # A PMTiles archive (URL) holding restored_land: read with the pmtiles script, no tile files.
    pmtiles: str | None = None
    partners: tuple[PartnerSource, ...] = ()  # other initiatives' layers, from our own copy


def pick_lang(requested: str | None, accept_language: str | None) -> str:
    """``?lang=`` when given, else the first of fr/en in Accept-Language, else French."""
    if requested in LANGS:
        return requested  # type: ignore[return-value]
    best: tuple[float, int, str] | None = None
    for i, part in enumerate((accept_language or "").split(",")):
        bits = [b.strip() for b in part.split(";")]
        tag = bits[0].lower().split("-")[0]
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if tag in LANGS and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, tag)
    return best[2] if best else "fr"


def _use_local_assets(
    element: object, js: list[tuple[str, str]], css: list[tuple[str, str]]
) -> None:
    element.default_js = js  # type: ignore[attr-defined]
    element.default_css = css  # type: ignore[attr-defined]


class StatusTiles(VectorGridProtobuf):
    """Restored land as vector tiles on a canvas, coloured by status, with a popup per parcel."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        {%- if this.pmtiles_url %}
        // The tiles come from one PMTiles archive: VectorGrid fetches "pmtiles://{z}/{x}/{y}",
        // answered here from the archive, other URLs as usual. The archive is read by HTTP range
        // requests; a server that ignores ranges (200, the whole file) is read once, in memory.
        (function () {
            var plain = window.fetch.bind(window), url = {{ this.pmtiles_url|tojson }}, whole = null;
            var source = {
                getKey: function () { return url; },
                getBytes: function (offset, length, signal) {
                    function slice(b) { return {data: b.slice(offset, offset + length)}; }
                    if (whole) { return whole.then(slice); }
                    var range = "bytes=" + offset + "-" + (offset + length - 1);
                    return plain(url, {headers: {Range: range}, signal: signal}).then(function (r) {
                        if (r.status === 206) { return r.arrayBuffer().then(function (b) { return {data: b}; }); }
                        if (!r.ok) { throw new Error("HTTP " + r.status + " for " + url); }
                        whole = r.arrayBuffer();
                        return whole.then(slice);
                    });
                }
            };
            var archive = new pmtiles.PMTiles(source);
            window.commonsMap.archive = archive;
            window.fetch = function (input, init) {
                if (typeof input !== "string" || input.indexOf("pmtiles://") !== 0) { return plain(input, init); }
                var m = input.slice(10).split("/");
                return archive.getZxy(+m[0], +m[1], +m[2]).then(function (t) {
                    return t ? new Response(t.data) : new Response(null, {status: 404});
                });
            };
        })();
        {%- endif %}
        var {{ this.get_name() }} = L.vectorGrid.protobuf({{ this.url|tojson }}, {
            rendererFactory: L.canvas.tile,
            interactive: true,
            maxNativeZoom: {{ this.max_native_zoom|tojson }},
            minZoom: {{ this.min_zoom|tojson }},
            {%- if this.tile_bounds %}
            bounds: L.latLngBounds({{ this.tile_bounds|tojson }}),
            {%- endif %}
            getFeatureId: function (f) { return f.properties.id; },
            vectorTileLayerStyles: {
                {{ this.mvt_layer|tojson }}: function (p, zoom) {
                    var colours = {{ this.colours|tojson }};
                    var c = colours[p.status] || {{ this.fallback|tojson }};
                    if (p.id !== undefined) { window.commonsMap.parcels[p.id] = p.status; }
                    else { window.commonsMap.merged += 1; }  // a low-zoom block of parcels
                    return {fill: true, fillColor: c, fillOpacity: 0.7, color: "#333333",
                            weight: zoom >= 15 ? 1 : 0.4, opacity: 0.8, radius: 6};
                },
                // in an archive beside restored land; drawn from their own GeoJSON
                "gardens": [], "tools_and_places": []
            }
        });
        window.commonsMap.map = {{ this._parent.get_name() }};
        {{ this.get_name() }}.on("load", function () { window.commonsMap.loaded.tiles = true; });
        {{ this.get_name() }}.on("click", function (e) {
            var p = e.layer.properties, items = {{ this.items_url|tojson }};
            var merged = p.count !== undefined && p.id === undefined;  // a low-zoom group (no id)
            var popup = L.popup({maxWidth: 320}).setLatLng(e.latlng)
                .setContent(commonsMapPopup(p, merged ? "merged" : items ? "parcel-brief" : "parcel"))
                .openOn({{ this._parent.get_name() }});
            if (!items || merged) { window.commonsMap.popup = merged ? "merged" : p.id; return; }
            // The served tiles carry what draws the map; the figures come from the parcel's item.
            fetch(items + "/" + encodeURIComponent(p.id) + "?f=json",
                  {headers: {"Accept": "application/geo+json"}}).then(function (r) {
                if (!r.ok) { throw new Error("HTTP " + r.status + " for parcel " + p.id); }
                return r.json();
            }).then(function (f) {
                popup.setContent(commonsMapPopup(Object.assign({id: f.id}, f.properties), "parcel"));
                window.commonsMap.popup = p.id;
            }).catch(function (err) {
                window.commonsMap.errors.push(String(err));
            });
        });
        {%- endmacro %}
        """
    )

    def __init__(
        self,
        url: str,
        name: str,
        *,
        layer_name: str,
        colours: dict[str, str],
        fallback: str,
        max_native_zoom: int,
        min_zoom: int,
        tile_bounds: list | None,
        items_url: str | None = None,
        pmtiles_url: str | None = None,
    ) -> None:
        super().__init__(url, name=name, overlay=True, control=True, show=True)
        self.items_url = items_url
        self.pmtiles_url = pmtiles_url
        self.mvt_layer = layer_name
        self.colours = colours
        self.fallback = fallback
        self.max_native_zoom = max_native_zoom
        self.min_zoom = min_zoom
        self.tile_bounds = tile_bounds


class GeoJsonByUrl(Layer):
    """A GeoJSON layer the browser fetches (following OGC ``next`` links), styled, with popups."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = L.geoJSON(null, {
            style: function (f) { return {{ this.style|tojson }}; },
            onEachFeature: function (f, layer) {
                layer.bindPopup(commonsMapPopup(Object.assign({id: f.id}, f.properties), {{ this.popup_kind|tojson }}),
                                {maxWidth: 320});
            }
        });
        commonsMapLoad({{ this.url|tojson }}, function (features) {
            {{ this.get_name() }}.addData(features);
            window.commonsMap.loaded[{{ this.popup_kind|tojson }}] = features.length;
        });
        {%- endmacro %}
        """
    )

    def __init__(self, url: str, name: str, *, style: dict, popup_kind: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "GeoJsonByUrl"
        self.url = url
        self.style = style
        self.popup_kind = popup_kind


class PartnerGeoJson(Layer):
    """A partner's layer, fetched from our server's copy after the page has loaded, with its
    attribution (name, link, licence) in the map's attribution control."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = L.geoJSON(null, {
            attribution: {{ this.attribution|tojson }},
            style: function (f) { return {color: {{ this.colour|tojson }}, weight: 2,
                                          fillColor: {{ this.colour|tojson }}, fillOpacity: 0.3}; },
            pointToLayer: function (f, ll) {
                return L.circleMarker(ll, {radius: 6, color: "#ffffff", weight: 1.5,
                                           fillColor: {{ this.colour|tojson }}, fillOpacity: 0.9});
            },
            onEachFeature: function (f, layer) {
                layer.bindPopup(commonsMapPartnerPopup(f.properties || {}, {{ this.source|tojson }}),
                                {maxWidth: 320});
            }
        });
        commonsMapLoad({{ this.url|tojson }}, function (features) {
            {{ this.get_name() }}.addData(features);
            window.commonsMap.loaded["partner:" + {{ this.key|tojson }}] = features.length;
        });
        {%- endmacro %}
        """
    )

    def __init__(self, layer: PartnerLayerSource, name: str, *, colour: str, attribution: str,
                 source: dict[str, str]) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "PartnerGeoJson"
        self.url = layer.url
        self.key = layer.key
        self.colour = colour
        self.attribution = attribution
        self.source = source


class ClusterPointsByUrl(MacroElement):
    """Fills a folium MarkerCluster with points fetched by URL (tools and places)."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        commonsMapLoad({{ this.url|tojson }}, function (features) {
            var colours = {{ this.colours|tojson }};
            features.forEach(function (f) {
                if (!f.geometry || f.geometry.type !== "Point") { return; }
                var ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
                var p = Object.assign({id: f.id}, f.properties);
                L.circleMarker(ll, {radius: 7, color: "#ffffff", weight: 1.5,
                                    fillColor: colours[p.category] || "#555555", fillOpacity: 0.9})
                    .bindPopup(commonsMapPopup(p, "point"), {maxWidth: 320})
                    .addTo({{ this.cluster.get_name() }});
            });
            window.commonsMap.loaded.points = features.length;
        });
        {%- endmacro %}
        """
    )

    def __init__(self, url: str, cluster: MarkerCluster, colours: dict[str, str]) -> None:
        super().__init__()
        self._name = "ClusterPointsByUrl"
        self.url = url
        self.cluster = cluster
        self.colours = colours


class FitView(MacroElement):
    """The first view: the public layers' box, set at once (no zoom animation, during which the
    layers added next would load the tiles of the view being left)."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {animate: false});
        {%- endmacro %}
        """
    )

    def __init__(self, bounds: tuple[float, float, float, float]) -> None:
        super().__init__()
        self._name = "FitView"
        minx, miny, maxx, maxy = bounds
        self.bounds = [[miny, minx], [maxy, maxx]]


class BasemapNotice(MacroElement):
    """When the OpenStreetMap tiles cannot be loaded (offline, blocked, down): a notice, in the
    page's language, over the map's plain background (``#commons-basemap-notice``)."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        (function () {
            var failed = 0, loaded = 0, shown = false;
            function show() {
                if (shown) { return; }
                shown = true;
                var n = document.getElementById("commons-basemap-notice");
                n.textContent = {{ this.message|tojson }};
                n.hidden = false;
                // a banner over the map's top edge: the controls and the title move down below it
                var h = n.offsetHeight + "px";
                document.querySelectorAll(".leaflet-top, #commons-title").forEach(function (el) {
                    el.style.marginTop = h;
                });
                window.commonsMap.basemap = "failed";
            }
            {{ this.base.get_name() }}.on("tileload", function () {
                loaded += 1;
                window.commonsMap.basemap = "loaded";
            });
            // One tile lost in a shaky connection is not a lost base map; none coming is.
            {{ this.base.get_name() }}.on("tileerror", function () {
                failed += 1;
                if (loaded === 0 || failed >= 4) { show(); }
            });
        })();
        {%- endmacro %}
        """
    )

    def __init__(self, base: folium.TileLayer, message: str) -> None:
        super().__init__()
        self._name = "BasemapNotice"
        self.base = base
        self.message = message


def _helpers_js(t: dict[str, str], status_labels: dict[str, str], lang: str) -> str:
    """Shared page script: HTML escaping, number formats, the popup, and paged GeoJSON loading."""
    return (
        """
<script>
var COMMONS_MAP_T = """
        + json.dumps(t, ensure_ascii=False)
        + """;
// What the page has drawn (read by people debugging and by the browser tests).
window.commonsMap = {map: null, parcels: {}, merged: 0, loaded: {}, errors: []};
// Leaflet.VectorGrid 1.3 calls L.DomEvent.fakeStop, which Leaflet 1.8 removed: without it a click
// on a parcel throws. Stopping the DOM event keeps the map from closing the new popup at once.
if (window.L && L.DomEvent && !L.DomEvent.fakeStop) {
  L.DomEvent.fakeStop = function (e) { L.DomEvent.stopPropagation(e); };
}
var COMMONS_MAP_STATUS = """
        + json.dumps(status_labels, ensure_ascii=False)
        + """;
var COMMONS_MAP_LOCALE = """
        + json.dumps(lang)
        + """;
function commonsMapEsc(v) {
  return String(v).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
}
function commonsMapNum(v, digits) {
  return Number(v).toLocaleString(COMMONS_MAP_LOCALE, {maximumFractionDigits: digits});
}
function commonsMapDate(iso) {  // "2026-10-20" as people read it, whatever the browser's zone
  var d = new Date(String(iso).slice(0, 10) + "T00:00:00Z");
  return isNaN(d) ? String(iso) : d.toLocaleDateString(COMMONS_MAP_LOCALE, {timeZone: "UTC", day: "numeric",
                                                                             month: "short", year: "numeric"});
}
function commonsMapPopup(p, kind) {
  var T = COMMONS_MAP_T, rows = [];
  function row(label, value) { rows.push("<tr><th>" + commonsMapEsc(label) + "</th><td>" + value + "</td></tr>"); }
  if (p.area_m2 !== undefined && p.area_m2 !== null && p.area_m2 !== "") {
    var a = Number(p.area_m2);
    row(T.area, a >= 10000 ? commonsMapNum(a / 10000, 2) + " ha" : commonsMapNum(a, 0) + " m²");
  }
  if (kind === "merged") row(T.parcels, commonsMapNum(p.count, 0));
  // brief: from a served tile, figures on their way; merged: a low-zoom block of parcels
  if (kind === "parcel" || kind === "parcel-brief" || kind === "merged") {
    var label = p["status_label_" + COMMONS_MAP_LOCALE] || COMMONS_MAP_STATUS[p.status] || p.status || "";
    row(T.status, commonsMapEsc(label));
  }
  if (kind === "parcel") {
    if (p.soc_stock_t_ha !== undefined && p.soc_stock_t_ha !== null && p.soc_stock_t_ha !== "")
      row(T.soc_stock, commonsMapNum(p.soc_stock_t_ha, 1) + " t C/ha");
    if (p.soc_change_t_ha_per_year !== undefined && p.soc_change_t_ha_per_year !== null
        && p.soc_change_t_ha_per_year !== "") {
      var d = Number(p.soc_change_t_ha_per_year);
      row(T.soc_trend, (d > 0 ? "▲ +" : d < 0 ? "▼ " : "= ") + commonsMapNum(d, 2) + " t C/ha" + T.per_year);
    }
    if (p.co2e_t_per_year !== undefined && p.co2e_t_per_year !== null && p.co2e_t_per_year !== "")
      row(T.co2e, commonsMapNum(p.co2e_t_per_year, 2) + " t" + T.per_year);
    row(T.harvests, commonsMapNum(p.harvest_kg_total || 0, 1) + " kg");
    if (p.last_sampled) row(T.last_sampled, commonsMapEsc(commonsMapDate(p.last_sampled)));
  }
  if (p.volunteer_hours !== undefined && p.volunteer_hours !== null && p.volunteer_hours !== "")
    row(T.hours, commonsMapNum(p.volunteer_hours, 1) + " h");
  if (kind === "point") row(T.kind, commonsMapEsc(p["kind_label_" + COMMONS_MAP_LOCALE] || p.kind || ""));
  if (p.location_precision === "approximate") row("", "<em>" + commonsMapEsc(T.approximate) + "</em>");
  if (kind === "merged") row("", "<em>" + commonsMapEsc(T.merged) + "</em>");
  return '<div class="commons-popup"><h4 style="margin:0 0 .3em">' + commonsMapEsc(p.name || "") +
         "</h4><table>" + rows.join("") + "</table></div>";
}
function commonsMapPartnerPopup(p, source) {
  var title = p.name || p.title || p.nom || p.label || "";
  return '<div class="commons-popup"><h4 style="margin:0 0 .3em">' + commonsMapEsc(title) + "</h4>" +
         "<p style=\\"margin:0\\">" + commonsMapEsc(COMMONS_MAP_T.source + COMMONS_MAP_T.colon + source.name) +
         "<br>" + commonsMapEsc(COMMONS_MAP_T.licence + COMMONS_MAP_T.colon + source.licence) + "</p></div>";
}
function commonsMapLoad(url, done) {
  var all = [];
  function next(u) {
    fetch(u, {headers: {"Accept": "application/geo+json"}}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status + " for " + u); }
      return r.json();
    }).then(function (fc) {
      all = all.concat(fc.features || []);
      var more = (fc.links || []).filter(function (l) { return l.rel === "next"; })[0];
      if (more) { next(more.href); } else { done(all); }
    }).catch(function (e) {
      window.commonsMap.errors.push(String(e));
      console.warn("commons-map: could not load " + u + ": " + e);
    });
  }
  next(url);
}
</script>
"""
    )


def _legend_html(
    t: dict[str, str], legend: list[dict[str, str]], lang: str, sources: Sources
) -> str:
    import html

    rows = "".join(
        f'<div class="lg-row" title="{html.escape(r["explanation_" + lang])}">'
        f'<span class="lg-swatch" style="background:{r["colour"]}"></span>'
        f'<b>{html.escape(r[lang])}</b><div class="lg-expl">{html.escape(r["explanation_" + lang])}</div></div>'
        for r in legend
    )
    others = (
        f'<div class="lg-row"><span class="lg-swatch" style="background:{GARDEN_COLOUR}"></span>'
        f'{html.escape(t["garden"])}</div>'
        f'<div class="lg-row"><span class="lg-dot" style="background:{TOOL_COLOUR}"></span>{html.escape(t["tool"])}'
        f' &nbsp; <span class="lg-dot" style="background:{PLACE_COLOUR}"></span>{html.escape(t["place"])}</div>'
    )
    links = []
    if sources.other_lang_href:
        links.append(
            f'<a href="{html.escape(sources.other_lang_href)}" hreflang="{"en" if lang == "fr" else "fr"}">'
            f"{html.escape(t['other_lang'])}</a>"
        )
    if sources.open_data_href:
        links.append(
            f'<a href="{html.escape(sources.open_data_href)}">{html.escape(t["open_data"])}</a>'
        )
    return f"""
<style>
#commons-legend {{position:absolute; z-index:1000; bottom:28px; right:10px; max-width:300px; max-height:60vh;
  overflow:auto; background:rgba(255,255,255,.93); padding:8px 10px; border-radius:6px;
  box-shadow:0 1px 5px rgba(0,0,0,.4); font:12px/1.35 system-ui,sans-serif;}}
#commons-legend h3 {{font-size:13px; margin:0 0 6px}}
#commons-title {{position:absolute; z-index:1000; top:10px; left:55px; background:rgba(255,255,255,.93);
  padding:6px 10px; border-radius:6px; box-shadow:0 1px 5px rgba(0,0,0,.4); font:14px system-ui,sans-serif;}}
#commons-title a {{margin-left:.6em; font-size:12px}}
.lg-row {{margin:3px 0}} .lg-expl {{color:#555; margin-left:22px; font-size:11px}}
.lg-swatch {{display:inline-block; width:14px; height:14px; margin-right:8px; vertical-align:-2px;
  border:1px solid #333; opacity:.85}}
.lg-dot {{display:inline-block; width:11px; height:11px; border-radius:50%; margin-right:5px; vertical-align:-1px}}
.commons-popup th {{text-align:left; padding-right:8px; font-weight:600}}
.lg-unavailable {{color:#8a1c1c; font-style:italic}}
/* Without its base map (offline, blocked) the map is a plain background, never Leaflet's grey. */
.leaflet-container {{background:#f3f1ea}}
#commons-basemap-notice {{position:absolute; z-index:1100; top:0; left:0; right:0;
  background:#fff8e1; color:#3d2f00; border-bottom:1px solid #b08d00; padding:6px 10px;
  box-shadow:0 1px 4px rgba(0,0,0,.25); font:13px/1.35 system-ui,sans-serif;}}
</style>
<div id="commons-title"><b>{html.escape(t["title"])}</b>{"".join(links)}</div>
<div id="commons-basemap-notice" role="status" hidden></div>
<div id="commons-legend" role="region" aria-label="{html.escape(t["legend"])}">
<h3>{html.escape(t["legend"])}</h3>{rows}
<div class="lg-expl" style="margin-left:0">{html.escape(t["legend_merged"])}</div>
<hr style="margin:6px 0">{others}{_partners_html(t, sources.partners)}</div>
"""


def partner_colour(i: int) -> str:
    """The colour of the i-th partner on the map."""
    return PARTNER_COLOURS[i % len(PARTNER_COLOURS)]


def _partners_html(t: dict[str, str], partners: tuple[PartnerSource, ...]) -> str:
    """The legend's partner section: each partner's name (a link), licence, and state."""
    import html

    if not partners:
        return ""
    rows = []
    for i, p in enumerate(partners):
        state = ""
        if not p.available:
            copy = f', {t["partner_copy_of"]} {p.copy_of}' if p.copy_of else ""
            state = f' <span class="lg-unavailable">({html.escape(t["partner_unavailable"] + copy)})</span>'
        cut = any(x.truncated for x in p.layers)
        licences = ", ".join(dict.fromkeys(x.licence for x in p.layers)) or p.licence
        rows.append(
            f'<div class="lg-row lg-partner" data-available="{str(p.available).lower()}">'
            f'<span class="lg-swatch" style="background:{partner_colour(i)}"></span>'
            f'<a href="{html.escape(p.link)}" rel="external noopener">{html.escape(p.name)}</a>{state}'
            f'<div class="lg-expl">{html.escape(t["licence"] + t["colon"] + licences)}'
            + (f' — {html.escape(t["partner_cut"])}' if cut else "") + "</div></div>"
        )
    return (f'<hr style="margin:6px 0"><h3>{html.escape(t["partners"])}</h3>'
            + "".join(rows))


def build_public_map(
    sources: Sources,
    *,
    lang: str = "fr",
    bounds: tuple[float, float, float, float] | None = None,
    legend: list[dict[str, str]] | None = None,
    basemap: str | None = "osm",
) -> folium.Map:
    """The public map: restored land by status (tiles), gardens and tools/places (by URL), legend."""
    from commons_map.publish.figures import FALLBACK_COLOUR
    from commons_map.publish.figures import legend as status_legend

    lang = lang if lang in LANGS else "fr"
    t = TEXT[lang]
    legend = legend or status_legend()
    a = sources.assets.rstrip("/")
    m = folium.Map(
        location=[44.6975, 5.195],
        zoom_start=13,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
        maxZoom=20,
        minZoom=3,
    )  # SVG overlays let clicks reach the tiles
    _use_local_assets(
        m, [("leaflet", f"{a}/leaflet/leaflet.js")], [("leaflet_css", f"{a}/leaflet/leaflet.css")]
    )
    if bounds is not None:
        # Before any layer: tiles are asked for the view the visitor gets, not for a first
        # view that fitBounds replaces at once (on 100,000 parcels, dozens of tiles more).
        m.add_child(FitView(bounds))
    if basemap == "osm":
        base = folium.TileLayer(
            "OpenStreetMap",
            name="OpenStreetMap",
            overlay=False,
            control=True,
        ).add_to(m)
        m.add_child(BasemapNotice(base, t["basemap_failed"]))
    m.get_root().header.add_child(
        Element(
            f'<meta name="description" content="{t["title"]}"><link rel="icon" href="data:,">'
            f"<title>{t['title']}</title>"
        )
    )
    m.get_root().html.add_child(
        Element(_helpers_js(t, {r["status"]: r[lang] for r in legend}, lang))
    )

    tiles = StatusTiles(
        "pmtiles://{z}/{x}/{y}" if sources.pmtiles else sources.restored_land_tiles,
        items_url=sources.restored_land_items,
        pmtiles_url=sources.pmtiles,
        name=t["restored_land"],
        layer_name="restored_land",
        colours={r["status"]: r["colour"] for r in legend},
        fallback=FALLBACK_COLOUR,
        max_native_zoom=sources.max_native_zoom or 22,
        min_zoom=sources.min_tile_zoom or 0,
        tile_bounds=[
            [sources.tile_bounds[1], sources.tile_bounds[0]],
            [sources.tile_bounds[3], sources.tile_bounds[2]],
        ]
        if sources.tile_bounds
        else None,
    )
    scripts = [("vectorGrid", f"{a}/vectorgrid/Leaflet.VectorGrid.bundled.min.js")]
    if sources.pmtiles:
        scripts.append(("pmtiles", f"{a}/pmtiles/pmtiles.js"))
    _use_local_assets(tiles, scripts, [])
    tiles.add_to(m)

    GeoJsonByUrl(
        sources.gardens_geojson,
        t["gardens"],
        popup_kind="garden",
        style={
            "color": GARDEN_COLOUR,
            "weight": 2,
            "fillColor": GARDEN_COLOUR,
            "fillOpacity": 0.35,
        },
    ).add_to(m)

    cluster = MarkerCluster(name=t["tools_and_places"], control=True, overlay=True)
    _use_local_assets(
        cluster,
        [("markerclusterjs", f"{a}/markercluster/leaflet.markercluster.js")],
        [
            ("markerclustercss", f"{a}/markercluster/MarkerCluster.css"),
            ("markerclusterdefaultcss", f"{a}/markercluster/MarkerCluster.Default.css"),
        ],
    )
    cluster.add_to(m)
    m.add_child(
        ClusterPointsByUrl(
            sources.tools_and_places_geojson, cluster, {"tool": TOOL_COLOUR, "place": PLACE_COLOUR}
        )
    )

    for i, p in enumerate(sources.partners):
        for layer in p.layers:
            # Leaflet's layer control shows names as HTML, and these come from the partner: escaped
            PartnerGeoJson(layer, html.escape(f"{p.name} — {layer.title}"), colour=partner_colour(i),
                           attribution=_attribution(p, layer),
                           source={"name": p.name, "licence": layer.licence}).add_to(m)

    m.get_root().html.add_child(Element(_legend_html(t, legend, lang, sources)))
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _attribution(p: PartnerSource, layer: PartnerLayerSource) -> str:
    """The HTML Leaflet shows in the attribution control while the layer is on: name, link, licence."""
    import html

    name = html.escape(p.name)
    return f'<a href="{html.escape(p.link)}" rel="external noopener">{name}</a> ({html.escape(layer.licence)})'


def render(m: folium.Map, *, lang: str = "fr") -> str:
    """The map's full HTML page (lang set on <html>)."""
    page = m.get_root().render()
    # folium's page forbids zooming (maximum-scale=1, user-scalable=no): WCAG 1.4.4 wants it allowed.
    page = re.sub(r'<meta name="viewport" content="[^"]*"\s*/?>',
                  '<meta name="viewport" content="width=device-width, initial-scale=1.0" />', page, count=1)
    return page.replace("<!DOCTYPE html>\n<html>", f'<!DOCTYPE html>\n<html lang="{lang}">', 1)
