"""Settings: built-in defaults, overlaid by config.toml, overlaid by the command line.

The repository's `config.toml` documents every setting with its default; a
missing file or a missing key means the default.  The database URL, the data
directory and the config file itself also come from `PROVENANCE_DB`,
`PROVENANCE_DATA_DIR` and `PROVENANCE_CONFIG`.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fingerprints.align import MatchParams
from fingerprints.model import FingerprintSettings


class ConfigError(Exception):
    pass


DEFAULTS: dict[str, Any] = {
    "storage": {"data_dir": "", "db": ""},
    "fingerprint": {},  # FingerprintSettings fields; defaults in fingerprints/model.py
    "matching": {},  # MatchParams fields; defaults in fingerprints/align.py
    "ytdlp": {  # more keys: see monitor/sources/ytdlp.py CONFIG_KEYS and config.toml
        "format": "bv*[height<=1080]+ba/b[height<=1080]/b",
        "max_filesize": "2G",
        "socket_timeout": 30,
        "retries": 3,
        "concurrent_per_domain": 1,
    },
    "watch": {"default_interval": "30m"},
    "poll": {"retry_base_seconds": 300, "retry_max_seconds": 86400, "max_items_per_poll": 0},
    "daemon": {"jitter_seconds": 30, "refresh_seconds": 10, "lock_stale_seconds": 120, "standby_retry_seconds": 5},
    "revisit": {"schedule": ["1h until 1d", "1d until 30d", "7d"], "max_per_run": 0},
    "evidence": {"tsa_url": "", "tsa_ca_file": "", "tsa_timeout": 30, "frames_per_appearance": 6},
    "alerts": {"notify": [], "on_any_match": False, "timeout": 10},
    "web": {"host": "127.0.0.1", "port": 8765, "https": False, "max_upload_mb": 2048, "session_hours": 12,
            "secret_file": ""},
}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "provenance"


# Sections whose keys are checked by the code that uses them, not against DEFAULTS.
_OPEN_SECTIONS = ("fingerprint", "matching", "ytdlp")


def _merge(base: dict, extra: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        name = f"{where}.{key}" if where else key
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, name)
        elif key in out or where in _OPEN_SECTIONS:
            out[key] = value
        else:
            raise ConfigError(f"unknown setting '{name}' in the config file: see config.toml for the list")
    return out


@dataclass
class Config:
    data_dir: Path
    db_url: str | None  # None: SQLite in the data dir
    raw: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def fingerprint_settings(self) -> FingerprintSettings:
        return _build(FingerprintSettings, self.raw.get("fingerprint", {}), "fingerprint")

    @property
    def match_params(self) -> MatchParams:
        return _build(MatchParams, self.raw.get("matching", {}), "matching")

    @property
    def ytdlp(self) -> dict[str, Any]:
        return dict(self.raw["ytdlp"])

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw[name])


def _build(cls, values: dict, section: str):
    known = cls.__dataclass_fields__
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{section}]: {', '.join(unknown)}")
    return cls(**values)


def load_config(config_file: str | Path | None = None, data_dir: str | Path | None = None,
                db_url: str | None = None) -> Config:
    """Resolve settings: options, then environment, then config file, then defaults."""
    config_file = config_file or os.environ.get("PROVENANCE_CONFIG") or None
    raw = copy.deepcopy(DEFAULTS)
    source = None
    if config_file:
        source = Path(config_file).expanduser()
        if not source.is_file():
            raise ConfigError(f"config file not found: {source} (check --config or PROVENANCE_CONFIG)")
        try:
            raw = _merge(raw, tomllib.loads(source.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
    chosen_dir = data_dir or os.environ.get("PROVENANCE_DATA_DIR") or raw["storage"]["data_dir"]
    resolved_dir = Path(chosen_dir).expanduser() if chosen_dir else default_data_dir()
    if source is not None and chosen_dir and not Path(chosen_dir).expanduser().is_absolute() and not data_dir \
            and not os.environ.get("PROVENANCE_DATA_DIR"):
        resolved_dir = source.parent / resolved_dir  # relative paths in a config file are relative to it
    url = db_url or os.environ.get("PROVENANCE_DB") or raw["storage"]["db"] or None
    config = Config(data_dir=resolved_dir.resolve(), db_url=url, raw=raw, source=source)
    config.fingerprint_settings  # validate early: a typo should fail now, not mid-poll
    config.match_params
    if config.ytdlp != DEFAULTS["ytdlp"]:  # checking needs yt-dlp, a slow import: only for custom values
        from monitor.sources.ytdlp import ytdlp_options

        try:
            ytdlp_options(config.ytdlp)
        except ValueError as exc:
            raise ConfigError(f"[ytdlp]: {exc}") from exc
    return config
