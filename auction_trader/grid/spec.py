"""The grid file: a base configuration, the parameters to sweep, and the data range.

::

    base: default.yaml              # optional; relative to this file (default: the built-in defaults)
    set:                            # optional fixed overrides of the base (leaf or dotted names)
      warmup_minutes: 240
    catalog: ../catalogs/sample     # optional; relative to this file (--catalog overrides)
    start: 2024-01-01T04:00         # optional, inclusive, UTC (--start / --end override)
    end: 2024-01-01T10:00
    grid:                           # one axis per parameter: the cartesian product is run
      alpha_bin: [0.2, 0.25, 0.3]
      accept_outside_k: [2, 3]
    zip:                            # optional: each group is ONE axis whose lists step together
      - slippage_ticks_entry: [0, 1, 2]
        slippage_ticks_exit: [0, 1, 2]

Everything is checked before anything runs, and every problem names the file, the line and the
key: unknown top-level keys and parameters, a parameter given twice (in ``grid``, ``zip`` or
``set``), a value that is not a list, an empty list, repeated values, zip lists of unequal length,
and every combination is validated as a whole :class:`~auction_trader.config.AuctionConfig` (so
cross-field rules such as ``tp1_pct + tp2_pct = 1`` are checked per combination).

The order of the axes is the file's (``grid`` entries, then ``zip`` groups); combinations are
numbered in ``itertools.product`` order of the axes, the first axis varying slowest.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from auction_trader.config import AuctionConfig, ConfigError, apply_overrides, load_config, read_yaml, resolve_key

TOP_KEYS = ("base", "set", "grid", "zip", "catalog", "start", "end")
MAX_ERRORS = 12  # problems listed before "... and N more"


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: a ``grid`` parameter, or a ``zip`` group stepping together."""

    keys: tuple[str, ...]  # leaf names
    values: tuple[tuple, ...]  # one tuple per step, a value per key
    lines: tuple[tuple[int, ...], ...]  # the file line of each value, per step

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Combination:
    """One point of the grid: its coordinates (a step index per axis) and its configuration."""

    index: int
    coords: tuple[int, ...]
    params: dict[str, Any]  # the swept leaves, validated values
    config: AuctionConfig


@dataclass(frozen=True)
class GridSpec:
    path: Path
    base_path: Path | None  # the base configuration file (None: built-in defaults)
    base: AuctionConfig  # base + set: + --set
    axes: tuple[Axis, ...]
    combinations: tuple[Combination, ...]
    catalog: Path | None  # resolved against the grid file's folder
    start: str | None
    end: str | None

    @property
    def keys(self) -> list[str]:
        """Every swept leaf, in axis order."""
        return [k for axis in self.axes for k in axis.keys]

    def axis_of(self, key: str) -> int:
        """The axis sweeping ``key`` (a leaf or dotted name); ConfigError when none does."""
        leaf = _leaf(key, lambda msg: msg)
        for i, axis in enumerate(self.axes):
            if leaf in axis.keys:
                return i
        raise ConfigError(f"{key!r} is not swept by {self.path} (swept: {', '.join(self.keys)})")


def is_grid_file(path: str | Path) -> bool:
    """A YAML mapping with a ``grid:`` or ``zip:`` key (anything else is a single-run config)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("grid" in data or "zip" in data)


def load_grid(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> GridSpec:
    """Read, expand and validate a grid file; ``overrides`` are ``--set name=value`` fixed values."""
    path = Path(path)
    data, lines = read_yaml(path, "grid file", "a grid file is a mapping (base:, set:, grid:, zip:, catalog:, start:, end:)")
    where = _Where(path, lines)
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f" (a grid file has {', '.join(TOP_KEYS)})"
        raise ConfigError(f"{where(key)}: {key}: unknown key{hint}")
    base_path = _base_path(path, data.get("base"), where)
    fixed = _mapping(data.get("set"), "set", where)
    axes = _axes(data, where)
    swept = {k: axis for axis in axes for k in axis.keys}
    set_leaves = {}
    for name in fixed:
        leaf = _leaf(name, lambda msg, name=name: f"{where('set', name)}: set.{name}: {msg}")
        if leaf in swept or leaf in set_leaves:
            raise ConfigError(f"{where('set', name)}: set.{name}: {leaf} is given twice (set and a sweep, or twice in set)")
        set_leaves[leaf] = name
    for item in overrides:
        name = item.partition("=")[0].strip()
        leaf = _leaf(name, lambda msg, item=item: f"--set {item}: {msg}")
        if leaf in swept:
            raise ConfigError(f"--set {item}: {leaf} is swept by {path}; it cannot also be fixed")
    base = _base(base_path, fixed, set_leaves, overrides, where)
    combos = _expand(base, axes, where)
    return GridSpec(
        path=path,
        base_path=base_path,
        base=base,
        axes=tuple(axes),
        combinations=tuple(combos),
        catalog=_path(path, data.get("catalog"), "catalog", where),
        start=_time_text(data.get("start")),
        end=_time_text(data.get("end")),
    )


# -- reading ---------------------------------------------------------------------------------------


class _Where:
    """``file:line`` of a key path (mapping keys by name, list items by index)."""

    def __init__(self, path: Path, lines: dict[tuple, int]) -> None:
        self.path, self.lines = path, lines

    def __call__(self, *keys) -> str:
        line = self.lines.get(tuple(keys))
        return f"{self.path}:{line}" if line else str(self.path)


def _mapping(value: Any, name: str, where: _Where) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where(name)}: {name}: expected a mapping of parameter names (got {type(value).__name__})")
    return value


def _leaf(name: Any, blame) -> str:
    try:
        return resolve_key(str(name)).split(".")[1]
    except ConfigError as exc:
        raise ConfigError(blame(str(exc))) from None


def _path(grid_path: Path, value: Any, name: str, where: _Where) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where(name)}: {name}: expected a path (got {value!r})")
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(grid_path.parent / p))


def _base_path(grid_path: Path, value: Any, where: _Where) -> Path | None:
    p = _path(grid_path, value, "base", where)
    if p is not None and not p.is_file():
        raise ConfigError(f"{where('base')}: base: no such file {p}")
    return p


def _time_text(value: Any) -> str | None:
    """YAML reads an unquoted ISO timestamp as a datetime; the CLI parses text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


# -- axes -----------------------------------------------------------------------------------------


def _axes(data: dict, where: _Where) -> list[Axis]:
    axes: list[Axis] = []
    seen: dict[str, str] = {}  # leaf -> where it was first swept

    def claim(name: Any, *keys) -> str:
        leaf = _leaf(name, lambda msg: f"{where(*keys)}: {_dotted(keys)}: {msg}")
        if leaf in seen:
            raise ConfigError(f"{where(*keys)}: {_dotted(keys)}: {leaf} is swept twice (also at {seen[leaf]})")
        seen[leaf] = where(*keys)
        return leaf

    for name, values in _mapping(data.get("grid"), "grid", where).items():
        leaf = claim(name, "grid", name)
        _check_list(values, where, "grid", name)
        axes.append(Axis((leaf,), tuple((v,) for v in values), tuple((where.lines.get(("grid", name, i), 0),) for i in range(len(values)))))
    groups = data.get("zip")
    if groups is not None and not isinstance(groups, list):
        raise ConfigError(f"{where('zip')}: zip: expected a list of groups, each a mapping of parameter lists of equal length")
    for g, group in enumerate(groups or []):
        if not isinstance(group, dict) or not group:
            raise ConfigError(f"{where('zip', g)}: zip[{g}]: expected a mapping of parameter lists of equal length")
        leaves, columns = [], []
        for name, values in group.items():
            leaves.append(claim(name, "zip", g, name))
            _check_list(values, where, "zip", g, name)
            columns.append(values)
        if len({len(c) for c in columns}) > 1:
            sizes = ", ".join(f"{n}: {len(c)}" for n, c in zip(group, columns, strict=True))
            raise ConfigError(f"{where('zip', g)}: zip[{g}]: the lists of a zip group must have equal lengths ({sizes})")
        names = list(group)
        steps = tuple(zip(*columns, strict=True))
        if len(set(map(_hashable, steps))) < len(steps):
            raise ConfigError(f"{where('zip', g)}: zip[{g}]: a step repeats ({', '.join(names)})")
        lines = tuple(tuple(where.lines.get(("zip", g, n, i), 0) for n in names) for i in range(len(steps)))
        axes.append(Axis(tuple(leaves), steps, lines))
    if not axes:
        raise ConfigError(f"{where.path}: a grid needs at least one parameter list under grid: (or a zip: group)")
    return axes


def _dotted(keys: tuple) -> str:
    """("zip", 0, "risk_pct") -> "zip[0].risk_pct"."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")


def _check_list(values: Any, where: _Where, *keys) -> None:
    dotted = _dotted(keys)
    if not isinstance(values, list):
        raise ConfigError(f"{where(*keys)}: {dotted}: expected a list of values (got {values!r}); a fixed value goes under set:")
    if not values:
        raise ConfigError(f"{where(*keys)}: {dotted}: empty list")
    for i, v in enumerate(values):
        if isinstance(v, (list, dict)):
            raise ConfigError(f"{where(*keys, i)}: {dotted}[{i}]: expected a single value (got {v!r})")
        if any(_hashable(v) == _hashable(w) for w in values[:i]):
            raise ConfigError(f"{where(*keys, i)}: {dotted}[{i}]: {v!r} repeats an earlier value")


def _hashable(v: Any) -> Any:
    # 1 == 1.0 == True in Python; for repeats we want the YAML type to count (true is not 1).
    return (type(v).__name__ if isinstance(v, bool) else "", v)


# -- configurations --------------------------------------------------------------------------------


def _base(base_path: Path | None, fixed: dict, set_leaves: dict[str, str], overrides, where: _Where) -> AuctionConfig:
    base = load_config(base_path) if base_path is not None else AuctionConfig()
    raw = base.model_dump()
    blame: dict[str, tuple[str, str]] = {}
    for leaf, name in set_leaves.items():
        dotted = resolve_key(leaf)
        group, _ = dotted.split(".")
        raw[group][leaf] = fixed[name]
        blame[dotted] = (where("set", name), f"{leaf}={fixed[name]!r}")
    apply_overrides(raw, overrides)
    for item in overrides:
        blame[resolve_key(item.partition("=")[0].strip())] = (f"--set {item}", item)
    try:
        return AuctionConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_messages(exc, blame, str(where.path)))) from None


def _expand(base: AuctionConfig, axes: list[Axis], where: _Where) -> list[Combination]:
    raw_base = base.model_dump()
    dotted = {k: resolve_key(k) for axis in axes for k in axis.keys}
    combos: list[Combination] = []
    problems: list[str] = []
    for index, coords in enumerate(itertools.product(*(range(len(a)) for a in axes))):
        raw = {group: dict(values) for group, values in raw_base.items()}
        blame: dict[str, tuple[str, str]] = {}
        for axis, step in zip(axes, coords, strict=True):
            for key, value, line in zip(axis.keys, axis.values[step], axis.lines[step], strict=True):
                group, leaf = dotted[key].split(".")
                raw[group][leaf] = value
                blame[dotted[key]] = (f"{where.path}:{line}", f"{key}={value!r}")
        try:
            config = AuctionConfig.model_validate(raw)
        except ValidationError as exc:
            for msg in _messages(exc, blame, str(where.path)):
                if msg not in problems:
                    problems.append(msg)
            continue
        flat = config.flat()
        combos.append(Combination(index, coords, {k: flat[k] for k in dotted}, config))
    if problems:
        more = f"\n  ... and {len(problems) - MAX_ERRORS} more" if len(problems) > MAX_ERRORS else ""
        raise ConfigError(f"{where.path}: invalid combinations (nothing was run):\n  " + "\n  ".join(problems[:MAX_ERRORS]) + more)
    return combos


def _messages(exc: ValidationError, blame: dict[str, tuple[str, str]], source: str) -> list[str]:
    """One line per problem, blamed on the value(s) that caused it: the key itself or, for a
    rule across a group (e.g. tp1_pct + tp2_pct = 1), the swept or set values of that group."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc[:2])
        what = err["msg"].removeprefix("Value error, ")
        if key in blame:
            place, _ = blame[key]
            out.append(f"{place}: {loc[-1]}: {what} (got {err.get('input')!r})")
        else:
            involved = [b for k, b in blame.items() if loc and k.split(".")[0] == loc[0]]
            places = ", ".join(p for p, _ in involved) or source
            given = f" (with {', '.join(d for _, d in involved)})" if involved else ""
            out.append(f"{places}: {key or '<top level>'}: {what}{given}")
    return out
