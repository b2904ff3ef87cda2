"""Which public collections exist, their properties (the queryables) and their titles."""

from __future__ import annotations

from dataclasses import dataclass, field

from commons_map.errors import NotFound


@dataclass(frozen=True)
class Queryable:
    """A property the public may read and filter on, with the SQL that computes it.

    ``sql`` is written against the public source row ``s`` and its figures row ``pf`` (``publish_figures``).
    """

    name: str
    type: str  # string, integer, number, date, date-time, boolean
    sql: str
    title_fr: str
    title_en: str
    enum: tuple[str, ...] | None = None

    def json_schema(self) -> dict:
        """This property as JSON Schema (OGC API - Features Part 3 queryables)."""
        schema: dict = {"title": self.title_en, "description": self.title_fr}
        if self.type in ("date", "date-time"):
            schema.update(type="string", format=self.type)
        else:
            schema["type"] = self.type
        if self.enum:
            schema["enum"] = list(self.enum)
        return schema


BASE = (
    Queryable("id", "integer", "s.id", "Identifiant", "Identifier"),
    Queryable("name", "string", "s.name", "Nom", "Name"),
    Queryable("kind", "string", "s.kind", "Type de commun", "Kind of commons"),
    Queryable("kind_label_fr", "string", "s.kind_label_fr", "Type de commun (nom)", "Kind of commons (French name)"),
    Queryable("kind_label_en", "string", "s.kind_label_en", "Type de commun (nom anglais)",
              "Kind of commons (English name)"),
    Queryable(
        "category",
        "string",
        "s.category",
        "Catégorie",
        "Category",
        ("land", "garden", "bed", "tool", "place"),
    ),
    Queryable("description", "string", "s.description", "Description", "Description"),
    Queryable("state", "string", "s.state", "État", "State"),
    Queryable(
        "area_m2", "number", "round(s.area_m2::numeric, 1)::float8", "Surface (m²)", "Area (m²)"
    ),
    Queryable(
        "location_precision",
        "string",
        "s.location_precision",
        "Précision de l'emplacement",
        "Location precision",
        ("exact", "approximate"),
    ),
    Queryable("cooperative", "string", "s.cooperative", "Coopérative", "Cooperative"),
    Queryable("updated_at", "date-time", "s.updated_at", "Mis à jour le", "Updated at"),
)

FIGURES = (
    Queryable(
        "status",
        "string",
        "coalesce(pf.status, 'no_data')",
        "État de régénération",
        "Regeneration status",
    ),
    Queryable(
        "status_label_fr",
        "string",
        "coalesce(pf.status_label_fr, :nodata_fr)",
        "État de régénération (libellé)",
        "Regeneration status (French label)",
    ),
    Queryable(
        "status_label_en",
        "string",
        "coalesce(pf.status_label_en, :nodata_en)",
        "État de régénération (libellé anglais)",
        "Regeneration status (English label)",
    ),
    Queryable(
        "soc_stock_t_ha",
        "number",
        "pf.soc_stock_t_ha",
        "Stock de carbone organique (t C/ha)",
        "Soil organic carbon stock (t C/ha)",
    ),
    Queryable(
        "soc_change_t_ha_per_year",
        "number",
        "pf.soc_change_t_ha_per_year",
        "Évolution du carbone (t C/ha/an)",
        "SOC change (t C/ha/year)",
    ),
    Queryable(
        "co2e_t_per_year",
        "number",
        "pf.co2e_t_per_year",
        "CO2e stocké (t/an)",
        "CO2e stored (t/year)",
    ),
    Queryable("basis", "string", "pf.basis", "Base de calcul", "Basis of the figures"),
    Queryable(
        "harvest_kg_total",
        "number",
        "pf.harvest_kg_total",
        "Récoltes (kg)",
        "Harvests (kg)",
    ),
    Queryable(
        "last_sampled", "date", "pf.last_sampled", "Dernier prélèvement", "Last sampled"
    ),
)

HOURS = (
    Queryable(
        "volunteer_hours",
        "number",
        "coalesce(pf.volunteer_hours, 0)",
        "Heures bénévoles",
        "Volunteer hours",
    ),
)


@dataclass(frozen=True)
class Collection:
    """One public layer."""

    id: str
    title_fr: str
    title_en: str
    description_fr: str
    description_en: str
    categories: tuple[str, ...] | None  # None: every category
    queryables: tuple[Queryable, ...]
    as_points: bool = False
    figures: bool = False  # joins the soil and ledger figures (pf)
    geometry_type: str = "geometry-any"
    tile_props: tuple[str, ...] = field(default=("id", "name", "kind", "category", "state"))
    # The properties of the static export's tiles, where no server answers a popup's question.
    static_tile_props: tuple[str, ...] = ()
    # At low zooms (``service.MERGE_MAX_ZOOM`` and below) polygons are merged per value of this
    # queryable (one of ``tile_props``) and grid cell (``service.merged_tile_sql``); None: every
    # feature drawn at every zoom.
    merge_by: str | None = None

    def props_of_tiles(self, static: bool = False) -> tuple[str, ...]:
        """The properties a tile carries: served, or in the static export."""
        return (self.static_tile_props or self.tile_props) if static else self.tile_props

    def title(self, lang: str) -> str:
        return self.title_fr if lang == "fr" else self.title_en

    def description(self, lang: str) -> str:
        return self.description_fr if lang == "fr" else self.description_en

    def queryable(self, name: str) -> Queryable | None:
        for q in self.queryables:
            if q.name == name:
                return q
        return None


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "commons",
            "Communs publics",
            "Public commons",
            "Tous les communs que les coopératives rendent publics : terres, jardins, outils, lieux.",
            "Every commons the cooperatives make public: land, gardens, tools, places.",
            None,
            BASE,
            merge_by="category",
        ),
        Collection(
            "restored_land",
            "Terres restaurées",
            "Restored land",
            "Parcelles, vergers et haies, avec leur état de régénération du sol, le carbone, les"
            " récoltes et les heures bénévoles.",
            "Land parcels, orchards and hedges with their soil regeneration status, carbon,"
            " harvests and volunteer hours.",
            ("land",),
            BASE + FIGURES + HOURS,
            figures=True,
            merge_by="status",
            # Served tiles carry what draws the map; a popup reads the parcel's figures from its
            # OGC item (1 request on click instead of 14 properties in every tile: tiles 2.4x
            # smaller, z11-z14 a third faster to make). The static export keeps them all.
            tile_props=("id", "name", "status"),
            static_tile_props=(
                "id",
                "name",
                "kind",
                "state",
                "area_m2",
                "status",
                "status_label_fr",
                "status_label_en",
                "soc_stock_t_ha",
                "soc_change_t_ha_per_year",
                "co2e_t_per_year",
                "harvest_kg_total",
                "last_sampled",
                "volunteer_hours",
            ),
        ),
        Collection(
            "gardens",
            "Jardins partagés",
            "Shared gardens",
            "Jardins cultivés collectivement, avec les heures bénévoles.",
            "Gardens grown together, with volunteer hours.",
            ("garden",),
            BASE + HOURS,
            figures=True,
            tile_props=("id", "name", "kind", "state", "area_m2", "volunteer_hours"),
            merge_by="kind",
        ),
        Collection(
            "tools_and_places",
            "Outils et lieux partagés",
            "Shared tools and places",
            "Outils (à l'emplacement du lieu où ils sont rangés) et lieux partagés, en points.",
            "Tools (at the place where they are kept) and shared places, as points.",
            ("tool", "place"),
            BASE,
            as_points=True,
            geometry_type="point",
        ),
    )
}


def get_collection(collection_id: str) -> Collection:
    """The public collection with that id, or NotFound naming the known ones."""
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound("publish.no_collection", field="collectionId", collection=collection_id,
                       known=list(COLLECTIONS)) from None
