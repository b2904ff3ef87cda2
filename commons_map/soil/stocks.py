"""Soil organic carbon stocks and their change: pure functions, no database.

Formulas (see /work/shared/design/SOIL.md for the sources):

* layer stock [t C/ha] = SOC [%] x BD [g/cm3] x thickness [cm] x (1 - CF_vol)
  or, with stones measured as fine-earth mass and core volume (Poeplau et al. 2017),
  SOC [%] x (fine-earth mass [g] / core volume [cm3]) x thickness [cm];
* SOC from organic matter: SOC = SOM / f (f a setting, default 2.0, Pribyl 2010), an estimate;
* equivalent soil mass (ESM): cumulative fine-earth mass M_i = sum BD_j x t_j x (1 - CF_j) x 100 [t/ha]
  and carbon C_i = sum SOC_frac_j x mass_j; the carbon at a reference mass is interpolated linearly
  between layer bottoms (Wendt & Hauser 2013), and extrapolated below the deepest layer with that
  layer's concentration (Ellert & Bettany 1995);
* CO2 = C x 44/12.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

C_TO_CO2 = 44.0 / 12.0
M2_PER_HA = 10_000.0

Basis = Literal["esm", "fixed_depth"]


def layer_stock_t_ha(soc_pct: float, bd_g_cm3: float, thickness_cm: float, cf_vol: float = 0.0) -> float:
    """SOC stock of one layer in t C/ha; ``cf_vol`` is the coarse-fragment share of volume (0-1)."""
    if not 0 <= cf_vol < 1:
        raise ValueError(f"coarse fragments must be a fraction in [0, 1), got {cf_vol}")
    return soc_pct * bd_g_cm3 * thickness_cm * (1.0 - cf_vol)


def layer_stock_g_kg(soc_g_kg: float, bd_g_cm3: float, thickness_cm: float, cf_vol: float = 0.0) -> float:
    """The same stock from SOC in g/kg (x 0.1)."""
    return layer_stock_t_ha(soc_g_kg * 0.1, bd_g_cm3, thickness_cm, cf_vol)


def fine_earth_density(fine_earth_mass_g: float, core_volume_cm3: float) -> float:
    """Fine-earth mass per core volume (g/cm3): BD x (1 - CF) without assuming stone density."""
    if core_volume_cm3 <= 0:
        raise ValueError("core volume must be positive")
    return fine_earth_mass_g / core_volume_cm3


def soc_from_som(som_pct: float, factor: float = 2.0) -> float:
    """SOC (%) estimated from soil organic matter (%) with the conversion factor f."""
    if factor <= 0:
        raise ValueError("the SOM to SOC factor must be positive")
    return som_pct / factor


@dataclass(frozen=True)
class Layer:
    """One depth interval of a profile, with what the stock needs.

    ``fe_density`` (fine-earth mass / core volume) wins over ``bd`` and ``cf_vol`` when given.
    ``bd_measured`` is False when the bulk density was carried over from another date.
    """

    top_cm: float
    bottom_cm: float
    soc_pct: float
    bd: float | None = None
    cf_vol: float = 0.0
    fe_density: float | None = None
    bd_measured: bool = True
    soc_estimated: bool = False

    @property
    def thickness(self) -> float:
        return self.bottom_cm - self.top_cm

    @property
    def density(self) -> float:
        """Fine-earth density in g/cm3 (fine-earth mass per volume of soil)."""
        if self.fe_density is not None:
            return self.fe_density
        if self.bd is None:
            raise ValueError(f"layer {self.top_cm:g}-{self.bottom_cm:g} cm has no bulk density")
        return self.bd * (1.0 - self.cf_vol)

    @property
    def mass_t_ha(self) -> float:
        """Fine-earth mass of the layer, t/ha."""
        return self.density * self.thickness * 100.0

    @property
    def stock_t_ha(self) -> float:
        """SOC stock of the layer, t C/ha."""
        return self.soc_pct * self.density * self.thickness

    def cut(self, top: float, bottom: float) -> Layer:
        """The part of this layer between ``top`` and ``bottom`` (same concentrations)."""
        return Layer(
            max(top, self.top_cm), min(bottom, self.bottom_cm), self.soc_pct, self.bd, self.cf_vol,
            self.fe_density, self.bd_measured, self.soc_estimated,
        )


def check_profile(layers: Sequence[Layer]) -> list[Layer]:
    """Layers sorted by depth; they must start at the surface and not overlap nor leave gaps."""
    ordered = sorted(layers, key=lambda la: la.top_cm)
    if not ordered:
        raise ValueError("a profile needs at least one layer")
    if ordered[0].top_cm != 0:
        raise ValueError(f"a profile must start at 0 cm, this one starts at {ordered[0].top_cm:g} cm")
    for a, b in zip(ordered, ordered[1:], strict=False):
        if abs(a.bottom_cm - b.top_cm) > 1e-9:
            raise ValueError(
                f"layers {a.top_cm:g}-{a.bottom_cm:g} and {b.top_cm:g}-{b.bottom_cm:g} cm"
                " overlap or leave a gap"
            )
    for la in ordered:
        if la.thickness <= 0:
            raise ValueError(f"layer {la.top_cm:g}-{la.bottom_cm:g} cm has no thickness")
    return ordered


def truncate(layers: Sequence[Layer], depth_cm: float) -> list[Layer]:
    """The profile down to ``depth_cm`` (the last layer cut in proportion)."""
    return [la.cut(la.top_cm, depth_cm) for la in check_profile(layers) if la.top_cm < depth_cm]


def profile_stock_t_ha(layers: Sequence[Layer], depth_cm: float | None = None) -> float:
    """SOC stock of a profile (sum of its layers) in t C/ha, to ``depth_cm`` when given."""
    chosen = truncate(layers, depth_cm) if depth_cm is not None else check_profile(layers)
    return sum(la.stock_t_ha for la in chosen)


def cumulative(layers: Sequence[Layer]) -> list[tuple[float, float]]:
    """(cumulative fine-earth mass t/ha, cumulative carbon t C/ha) at the surface and each layer bottom."""
    points = [(0.0, 0.0)]
    mass = carbon = 0.0
    for la in check_profile(layers):
        mass += la.mass_t_ha
        carbon += la.mass_t_ha * la.soc_pct / 100.0
        points.append((mass, carbon))
    return points


def carbon_at_mass(layers: Sequence[Layer], ref_mass_t_ha: float) -> float:
    """SOC (t C/ha) in the upper ``ref_mass_t_ha`` of fine earth: linear in cumulative mass."""
    if ref_mass_t_ha < 0:
        raise ValueError("the reference mass must not be negative")
    pts = cumulative(layers)
    for (m0, c0), (m1, c1) in zip(pts, pts[1:], strict=False):
        if ref_mass_t_ha <= m1:
            if m1 == m0:
                return c0
            return c0 + (ref_mass_t_ha - m0) * (c1 - c0) / (m1 - m0)
    # Deeper than the profile: extend with the deepest layer's concentration (Ellert & Bettany).
    deepest = check_profile(layers)[-1]
    m_n, c_n = pts[-1]
    return c_n + (ref_mass_t_ha - m_n) * deepest.soc_pct / 100.0


def single_layer_esm(stock_t_ha: float, mass_t_ha: float, ref_mass_t_ha: float, soc_frac: float) -> float:
    """Ellert & Bettany's shortcut: stock - (M_sample - M_ref) x SOC fraction of the deepest layer."""
    return stock_t_ha - (mass_t_ha - ref_mass_t_ha) * soc_frac


@dataclass(frozen=True)
class StockChange:
    """The change of SOC stock between two sampling dates, and the basis it was computed on."""

    basis: Basis
    depth_cm: float
    stock_before_t_ha: float
    stock_after_t_ha: float
    years: float
    ref_mass_t_ha: float | None = None
    estimate: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def change_t_ha(self) -> float:
        return self.stock_after_t_ha - self.stock_before_t_ha

    @property
    def change_t_ha_per_year(self) -> float:
        return self.change_t_ha / self.years

    @property
    def co2e_t_ha_per_year(self) -> float:
        return self.change_t_ha_per_year * C_TO_CO2

    def co2e_t_per_year(self, area_m2: float) -> float:
        """Tonnes of CO2 equivalent per year over a parcel of ``area_m2``."""
        return self.co2e_t_ha_per_year * area_m2 / M2_PER_HA


def compare_stocks(
    before: Sequence[Layer], after: Sequence[Layer], *, years: float, depth_cm: float | None = None
) -> StockChange:
    """Stock change between two profiles: ESM when bulk density was measured at both dates.

    The depth compared is the deepest both profiles reach (or ``depth_cm``). On an ESM basis the
    reference mass is the smaller of the two dates' fine-earth masses to that depth, so carbon is
    interpolated and never extrapolated; otherwise the comparison is at fixed depth.
    """
    if years <= 0:
        raise ValueError("the later date must come after the earlier one")
    b, a = check_profile(before), check_profile(after)
    depth = min(b[-1].bottom_cm, a[-1].bottom_cm)
    if depth_cm is not None:
        depth = min(depth, depth_cm)
    b, a = truncate(b, depth), truncate(a, depth)
    estimate = any(la.soc_estimated for la in (*b, *a))
    measured = all(la.bd_measured for la in (*b, *a))
    notes = []
    if estimate:
        notes.append("SOC estimated from organic matter with a conversion factor")
    if measured:
        m_b = sum(la.mass_t_ha for la in b)
        m_a = sum(la.mass_t_ha for la in a)
        ref = min(m_b, m_a)
        return StockChange(
            basis="esm", depth_cm=depth, ref_mass_t_ha=ref,
            stock_before_t_ha=carbon_at_mass(b, ref), stock_after_t_ha=carbon_at_mass(a, ref),
            years=years, estimate=estimate, notes=notes,
        )
    notes.append("bulk density not measured at both dates: fixed-depth comparison")
    return StockChange(
        basis="fixed_depth", depth_cm=depth,
        stock_before_t_ha=sum(la.stock_t_ha for la in b), stock_after_t_ha=sum(la.stock_t_ha for la in a),
        years=years, estimate=estimate, notes=notes,
    )
