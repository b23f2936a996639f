"""`key=value,...` matcher settings on a benchmark's command line (MatchParams fields over their defaults)."""

from __future__ import annotations

from fingerprints.align import MatchParams


def parse_params(text: str | None, option: str = "--params") -> MatchParams | None:
    """`key=value,...` over the default MatchParams (None for no text), e.g. `store_specificity=false`."""
    if not text:
        return None
    fields = MatchParams.__dataclass_fields__
    values = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in fields or not value:
            raise SystemExit(f"{option}: {item!r} is not key=value with a MatchParams field "
                             f"(fields: {', '.join(fields)})")
        default = getattr(MatchParams(), key)
        values[key] = value.strip().lower() in ("1", "true", "yes") if isinstance(default, bool) \
            else type(default)(value)
    return MatchParams(**values)
