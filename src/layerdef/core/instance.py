"""The instance as arrays: ids in file order and numpy arrays indexed by them, the current and reference postures, and runs of periods."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from layerdef.core.geometry import coverage_array, facing_array
from layerdef.errors import Problem, UsageError

FORMAT_VERSION = 1


@dataclass
class Instance:
    """A validated instance: ids in file order and numpy arrays indexed by them."""

    name: str
    description: str
    path: Path | None
    sha256: str
    periods: list[str]
    layers: list[str]
    layer_weight: np.ndarray  # (L,)
    depth_weights: np.ndarray  # (J,)
    systems: list[str]
    system_radius: np.ndarray  # (K, L) km, nan where the system does not cover the layer
    owners: list[str]
    site_ids: list[str]
    site_names: list[str]
    site_lat: np.ndarray
    site_lon: np.ndarray
    site_weight: np.ndarray  # (S,)
    requirement: np.ndarray  # (S, L) int: units that must cover the site in the layer
    position_ids: list[str]
    position_lat: np.ndarray
    position_lon: np.ndarray
    capacity: np.ndarray  # (P,) int
    admits: np.ndarray  # (P, O) bool: owner o may use position p
    unit_ids: list[str]
    unit_system: np.ndarray  # (U,) index into systems
    unit_owner: np.ndarray  # (U,) index into owners
    unit_home: np.ndarray  # (U,) index into position_ids
    unit_fixed: np.ndarray  # (U,) bool
    present: np.ndarray  # (U, T) bool: the unit is in theater
    offer_ids: list[str]
    offer_system: np.ndarray
    offer_owner: np.ndarray
    offer_source: list[str]
    offer_count: np.ndarray
    offer_earliest: np.ndarray  # period index
    offer_min_periods: np.ndarray
    offer_max_periods: np.ndarray
    offer_cost: np.ndarray
    offer_lead: np.ndarray  # periods between request and arrival; matters only across scenarios
    substitute_budget: float | None
    moves_per_period: int | None
    moves_total: int | None
    objective: str
    target: float
    explicit_coverage: np.ndarray | None = None  # (K, P, H, S, L, G) bool from a coverage CSV
    target_scope: str = "total"  # min-cost: "total" per period, or "site" per site, layer, area, period
    # launch areas (DESIGN.md "Threats"); none: one threat from every direction, all layers
    threat_ids: list[str] = field(default_factory=list)
    threat_lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    threat_lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    threat_share: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (G,) sums to 1
    threat_layers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # (G, L)
    headings: int = 1  # orientations a sector-limited unit may face: heading h is 360 h / H degrees
    system_sector: np.ndarray | None = None  # (K,) degrees; 360: every direction
    system_relocation_days: np.ndarray | None = None  # (K,) days out of action after a move
    period_days: float = 30.0
    unit_heading: np.ndarray | None = None  # (U,) heading index at home (0 for every-direction systems)
    turns_per_period: int | None = None
    turns_total: int | None = None
    # engagement value (DESIGN.md "Engagement value"): depth weights, or kill probabilities
    value: str = "depth"
    class_ids: list[str] = field(default_factory=list)  # threat classes
    class_layers: np.ndarray | None = None  # (C, L) bool: the layers that engage class c
    class_weight: np.ndarray | None = None  # (C,)
    system_pk: np.ndarray | None = None  # (K, L) one engagement's kill probability, nan where none
    scenario_ids: list[str] = field(default_factory=list)
    scenario_probability: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scenario_present: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), bool))  # (N, U, T)
    #: periods ahead that a scenario is known: decisions of t are shared by the scenarios whose
    #: presence agrees up to t + notice (`layerdef stress --notice`)
    scenario_notice: int = 0
    sources: list[Path] = field(default_factory=list)  # the YAML file and every CSV it names

    def in_scenario(self, scenario: str) -> "Instance":
        """This instance with the units present as in one scenario (for replay)."""
        import dataclasses

        if scenario not in self.scenario_ids:
            known = ", ".join(self.scenario_ids) or "none"
            raise UsageError([Problem(str(self.path), f"scenario {scenario!r} does not exist "
                                         f"(scenarios: {known})", "scenarios")])
        present = self.scenario_present[self.scenario_ids.index(scenario)]
        world = dataclasses.replace(self, present=present.copy(), scenario_ids=[],
                                    scenario_probability=np.zeros(0),
                                    scenario_present=np.zeros((0, 0, 0), bool))
        for geometry in ("cover", "facing", "best_heading", "useful_headings"):  # they do not depend on who is present
            if geometry in self.__dict__:
                world.__dict__[geometry] = self.__dict__[geometry]
        return world

    def __post_init__(self) -> None:
        K, U = len(self.systems), len(self.unit_ids)
        if self.system_sector is None:
            self.system_sector = np.full(K, 360.0)
        if self.system_relocation_days is None:
            self.system_relocation_days = np.zeros(K)
        if self.unit_heading is None:
            self.unit_heading = np.zeros(U, dtype=np.int64)
        L = len(self.layers)
        if self.class_layers is None:  # each layer its own class, with the layer's weight
            self.class_ids = list(self.layers)
            self.class_layers = np.eye(L, dtype=bool)
            self.class_weight = np.asarray(self.layer_weight, float)
        if self.system_pk is None:
            self.system_pk = np.full((K, L), np.nan)

    @property
    def kill_probability(self) -> bool:
        """The value is the probability that a missile is defeated (else depth weights)."""
        return self.value == "kill-probability"

    @property
    def kill_rate(self) -> np.ndarray:
        """(K, L): -ln(1 - pk), what one engagement adds to the exponent of the leak
        probability; 0 where the system has no pk."""
        return np.where(np.isnan(self.system_pk), 0.0, -np.log1p(-np.nan_to_num(self.system_pk)))

    @property
    def engaging(self) -> np.ndarray:
        """(C, G, L) bool: layer l engages class c launched from area g (l is one of c's
        layers, and g threatens it)."""
        return self.class_layers[:, None, :] & self.threatens[None, :, :]

    @property
    def class_area_weight(self) -> np.ndarray:
        """(S, C, G): site weight x class weight x the area's share, what certain defeat of
        class c from g at s is worth; 0 where no layer engages c from g."""
        reached = self.engaging.any(axis=2) * self.threat_weight[None, :] * self.class_weight[:, None]
        return self.site_weight[:, None, None] * reached[None]

    @cached_property
    def cover(self) -> np.ndarray:
        """(K, P, H, S, L, G) bool: a unit of system k at position p facing heading h covers site
        s in layer l against launch area g. Geometry: within the system's radius, the area's
        bearing within the sector (sector-limited systems, when there are launch areas; the
        others have heading 0 only), and g threatens l. An explicit coverage table (terrain,
        line of sight) replaces the geometry when given."""
        threatens = self.threatens.T[None, None, None, None, :, :]  # (1, 1, 1, 1, L, G)
        facing = self.facing[:, :, :, None, None, :]  # (K, P, H, 1, 1, G)
        if self.explicit_coverage is not None:
            oriented = self.orientation_mask[:, None, :, None, None, None]
            return self.explicit_coverage & threatens & oriented
        disc = coverage_array(self.position_lat, self.position_lon, self.site_lat, self.site_lon,
                              self.system_radius)[:, :, None, :, :, None]  # (K, P, 1, S, L, 1)
        return disc & facing & threatens

    @property
    def G(self) -> int:
        """Launch areas; one (every direction) when none are given."""
        return max(1, len(self.threat_ids))

    @property
    def H(self) -> int:
        return self.headings

    @property
    def threat_weight(self) -> np.ndarray:
        """(G,) each launch area's share of the threat (1 for the single every-direction one)."""
        return self.threat_share if len(self.threat_ids) else np.ones(1)

    @property
    def threatens(self) -> np.ndarray:
        """(G, L) bool: launch area g threatens layer l."""
        return self.threat_layers if len(self.threat_ids) else np.ones((1, len(self.layers)), bool)

    @property
    def sector_limited(self) -> np.ndarray:
        """(K,) bool: the system faces a heading (a sector under 360 degrees and launch areas to
        face); the others see every direction, have heading 0 only and never turn."""
        return (self.system_sector < 360.0) & (len(self.threat_ids) > 0)

    @property
    def orientation_mask(self) -> np.ndarray:
        """(K, H) bool: the headings a unit of system k may face."""
        mask = np.zeros((len(self.systems), self.H), dtype=bool)
        mask[:, 0] = True
        mask[self.sector_limited, :] = True
        return mask

    @cached_property
    def facing(self) -> np.ndarray:
        """(K, P, H, G) bool: system k at p facing h sees launch area g (`geometry.facing_array`)."""
        K, P = len(self.systems), len(self.position_ids)
        if not len(self.threat_ids):
            out = np.zeros((K, P, self.H, 1), dtype=bool)
            out[:, :, 0, :] = True
            return out
        sector = np.where(self.sector_limited, self.system_sector, 360.0)
        return facing_array(self.position_lat, self.position_lon, self.threat_lat, self.threat_lon,
                            sector, self.H)

    @cached_property
    def best_heading(self) -> np.ndarray:
        """(K, P) the heading that sees the largest share of the launch areas from p (ties: the
        smallest degrees): a unit's default heading at home; 0 for every-direction systems."""
        seen = np.round((self.facing * self.threat_weight[None, None, None, :]).sum(axis=3), 12)
        return np.argmax(np.where(self.orientation_mask[:, None, :], seen, -1.0), axis=2)

    @cached_property
    def useful_headings(self) -> np.ndarray:
        """(K, P, H) bool: the headings worth facing at p. A heading whose coverage (every site,
        layer and launch area) is contained in another's is never needed: facing the other
        instead covers as much and turns no more often. Kept: the first of equal ones, the best
        heading, and every unit's home heading at its home (staying there costs no turn)."""
        K, P, H = len(self.systems), len(self.position_ids), self.H
        cover = self.cover.reshape(K, P, H, -1)
        useful = self.orientation_mask[:, None, :].repeat(P, axis=1)
        for k in np.nonzero(self.sector_limited)[0]:
            for p in range(P):
                pattern = cover[k, p]  # (H, S x L x G)
                pattern = pattern[:, pattern.any(axis=0)]  # what no heading covers tells nothing
                within = ~(pattern[:, None, :] & ~pattern[None, :, :]).any(axis=2)  # h within h'
                equal = within & within.T
                dominated = (within & ~equal).any(axis=1) | np.triu(equal, 1).any(axis=0)
                useful[k, p] = ~dominated
        useful[np.arange(K)[:, None], np.arange(P)[None, :], self.best_heading] = True
        useful[self.unit_system, self.unit_home, self.unit_heading] = True
        return useful & self.orientation_mask[:, None, :]

    @property
    def downtime(self) -> np.ndarray:
        """(K,) the share of a period a unit of system k is out of action after moving in:
        relocation_days / period_days, clipped to [0, 1]."""
        return np.clip(self.system_relocation_days / self.period_days, 0.0, 1.0)

    @property
    def has_turns(self) -> bool:
        """Whether any unit or offer may face more than one heading."""
        systems = np.concatenate([self.unit_system, self.offer_system]).astype(np.int64)
        return self.H > 1 and bool(self.sector_limited[systems].any()) if len(systems) else False

    @property
    def T(self) -> int:
        return len(self.periods)

    @cached_property
    def substitute_offer(self) -> dict[str, int]:
        """Substitute unit id (`offer#k`) -> the index of its offer."""
        return {unit: f for f in range(len(self.offer_ids)) for unit in self.substitute_unit_ids(f)}

    def substitute_unit_ids(self, offer: int) -> list[str]:
        """Ids of the units an offer can send, `offer#1` ... `offer#count`."""
        return [f"{self.offer_ids[offer]}#{k + 1}" for k in range(int(self.offer_count[offer]))]

    def current_posture(self) -> pd.DataFrame:
        """Every available unit at its home, no substitutes: what happens if nobody acts."""
        return self._home_posture(self.present)

    def reference_posture(self) -> pd.DataFrame:
        """Every unit at its home and none away: the posture before the withdrawal."""
        return self._home_posture(np.ones_like(self.present))

    def _home_posture(self, present: np.ndarray) -> pd.DataFrame:
        unit_index, period_index = np.nonzero(present)
        order = np.lexsort((unit_index, period_index))
        unit_index, period_index = unit_index[order], period_index[order]
        return pd.DataFrame({
            "period": [self.periods[t] for t in period_index],
            "unit": [self.unit_ids[u] for u in unit_index],
            "position": [self.position_ids[self.unit_home[u]] for u in unit_index],
        })

    def _threat_lines(self) -> list[str]:
        """Launch areas (share, layers threatened), headings and turn limits, and the value
        (depth or kill probabilities with its threat classes), as `validate` shows them."""
        lines = []
        if self.threat_ids:
            areas = ", ".join(f"{name} {share:.3g} ({'/'.join(np.asarray(self.layers)[self.threat_layers[g]])})"
                              for g, (name, share) in enumerate(zip(self.threat_ids, self.threat_share)))
            lines.append(f"  threats   {areas}")
            limited = [name for k, name in enumerate(self.systems) if self.system_sector[k] < 360.0]
            turns = {"turns_per_period": self.turns_per_period, "turns_total": self.turns_total}
            shown = "".join(f", {k}={v}" for k, v in turns.items() if v is not None)
            lines.append(f"  headings  {self.headings} (every {360 / self.headings:g} degrees); sector-limited: "
                         f"{', '.join(limited) or 'none'}{shown}")
        if self.kill_probability:
            classes = ", ".join(f"{name} ({'/'.join(np.asarray(self.layers)[self.class_layers[c]])}, "
                                f"weight {self.class_weight[c]:g})" for c, name in enumerate(self.class_ids))
            lines.append(f"  value     kill probability; threat classes {classes}")
        return lines

    def summary(self) -> str:
        """A few lines for `layerdef validate`: counts, horizon and who is away when."""
        lines = [
            f"{self.name}: valid (layerdef format {FORMAT_VERSION})",
            f"  horizon   {self.periods[0]} .. {self.periods[-1]} ({self.T} periods)",
            f"  layers    {', '.join(self.layers)}; systems {', '.join(self.systems)}",
            f"  sites {len(self.site_ids)}, positions {len(self.position_ids)}, "
            f"units {len(self.unit_ids)} ({int(self.unit_fixed.sum())} fixed), "
            f"substitute offers {len(self.offer_ids)} "
            f"({int(self.offer_count.sum())} units)",
        ]
        for u in np.nonzero(~self.present.all(axis=1))[0]:
            lines.append(f"  away      {self.unit_ids[u]}: {period_ranges(self.periods, ~self.present[u])}")
        limits = {"substitute_budget": self.substitute_budget,
                  "moves_per_period": self.moves_per_period, "moves_total": self.moves_total}
        shown = ", ".join(f"{k}={v}" for k, v in limits.items() if v is not None) or "none"
        lines.append(f"  limits    {shown}; objective {self.objective}")
        lines += self._threat_lines()
        for n, name in enumerate(self.scenario_ids):
            changed = [f"{self.unit_ids[u]} away {period_ranges(self.periods, ~self.scenario_present[n, u])}"
                       for u in np.nonzero((self.scenario_present[n] != self.present).any(axis=1))[0]]
            lines.append(f"  scenario  {name} (p={self.scenario_probability[n]:g}): "
                         + ("; ".join(changed) or "as the base"))
        return "\n".join(lines)


def period_mask(periods: int, chosen) -> np.ndarray:
    """(T,) bool, true in the chosen period indices."""
    mask = np.zeros(periods, dtype=bool)
    mask[list(chosen)] = True
    return mask


def period_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index runs where `mask` is true."""
    runs, t = [], 0
    while t < len(mask):
        if mask[t]:
            end = t
            while end + 1 < len(mask) and mask[end + 1]:
                end += 1
            runs.append((t, end))
            t = end + 1
        else:
            t += 1
    return runs


def period_ranges(labels: list[str], mask: np.ndarray) -> str:
    """Inclusive label ranges where `mask` is true, e.g. `2025-03..2025-10`."""
    return ", ".join(labels[first] if first == last else f"{labels[first]}..{labels[last]}"
                     for first, last in period_runs(mask))
