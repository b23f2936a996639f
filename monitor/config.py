"""Settings: built-in defaults, overlaid by config.toml, overlaid by the command line.

The repository's `config.toml` documents every setting with its default; a
missing file or a missing key means the default.  The database URL, the data
directory and the config file itself also come from `PROVENANCE_DB`,
`PROVENANCE_DATA_DIR` and `PROVENANCE_CONFIG`.

Everything is checked when the settings load, before any work starts: an
unknown key, a value of the wrong type or out of range, a database that is
neither SQLite nor PostgreSQL, a data directory that cannot hold data.  Each
problem is one line of the `ConfigError`, so a daemon never crashes mid-poll
on a typo.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.limits import Limits, parse_limits

if TYPE_CHECKING:  # numpy comes with them: imported when a command needs fingerprints, not for every setting
    from fingerprints.align import MatchParams
    from fingerprints.model import FingerprintSettings


class ConfigError(Exception):
    """Unusable settings: one line per problem, each saying what to fix."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


DEFAULTS: dict[str, Any] = {
    "storage": {"data_dir": "", "db": ""},
    "fingerprint": {},  # FingerprintSettings fields; defaults in fingerprints/model.py
    "matching": {},  # MatchParams fields; defaults in fingerprints/align.py
    "ytdlp": {  # more keys: see monitor/sources/ytdlp.py CONFIG_KEYS and config.toml
        "format": "bv*[height<=1080]+ba/b[height<=1080]/b",
        "socket_timeout": 30,
        "retries": 3,
        "concurrent_per_domain": 1,
    },
    "limits": {  # see monitor/limits.py
        "item_deadline_seconds": 900,
        "max_download_bytes": "2G",
        "download_memory_mb": 512,
        "max_page_bytes": "10M",
        "max_redirects": 10,
        "max_duration_seconds": 10800,
        "max_pixels": 33177600,
        "max_frames": 1000000,
        "decode_cpu_seconds": 3600,
        "decode_memory_mb": 2048,
    },
    "watch": {"default_interval": "30m", "check_seconds": 10},
    "poll": {"retry_base_seconds": 300, "retry_max_seconds": 86400, "max_items_per_poll": 0},
    "daemon": {"runner": "auto", "workers": 4, "jitter_seconds": 30, "refresh_seconds": 10,
               "lock_stale_seconds": 120, "standby_retry_seconds": 5, "sweep_seconds": 3600,
               "orphan_grace_seconds": 3600, "job_attempts": 5, "stalled_worker_seconds": 30,
               "revisit_seconds": 600, "index_merge_seconds": 3600, "index_max_segments": 1},
    "revisit": {"schedule": ["1h until 1d", "1d until 30d", "7d"], "max_per_run": 0},
    "evidence": {"tsa_url": "", "tsa_ca_file": "", "tsa_timeout": 30, "frames_per_appearance": 6},
    "alerts": {"notify": [], "on_any_match": False, "timeout": 10},
    "web": {"host": "127.0.0.1", "port": 8765, "https": False, "max_upload_mb": 2048, "session_hours": 12,
            "secret_file": ""},
}

RUNNERS = ("auto", "embedded", "queue")
# (section, key) -> (lowest, highest) allowed; None: no bound.  Other numbers must be >= 0.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("ytdlp", "concurrent_per_domain"): (1, 64),
    ("ytdlp", "retries"): (0, 100),
    ("ytdlp", "socket_timeout"): (0.1, 3600),
    ("poll", "retry_base_seconds"): (1, None),
    ("poll", "retry_max_seconds"): (1, None),
    ("watch", "check_seconds"): (1, 300),
    ("daemon", "workers"): (1, 64),
    ("daemon", "refresh_seconds"): (1, 59),
    ("daemon", "lock_stale_seconds"): (3, None),
    ("daemon", "standby_retry_seconds"): (0.1, None),
    ("daemon", "sweep_seconds"): (1, None),
    ("daemon", "revisit_seconds"): (1, None),
    ("daemon", "index_merge_seconds"): (0, None),
    ("daemon", "index_max_segments"): (1, None),
    ("daemon", "job_attempts"): (1, 100),
    ("daemon", "stalled_worker_seconds"): (3, None),
}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {("daemon", "runner"): RUNNERS}
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "provenance"


# Sections whose keys are checked by the code that uses them, not against DEFAULTS.
_OPEN_SECTIONS = ("fingerprint", "matching", "ytdlp")


def _merge(base: dict, extra: dict, problems: list[str], where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        name = f"{where}.{key}" if where else key
        if isinstance(out.get(key), dict):
            if isinstance(value, dict):
                out[key] = _merge(out[key], value, problems, name)
            else:
                problems.append(f"[{name}] must be a table of settings, got {value!r}")
        elif key in out or where in _OPEN_SECTIONS:
            out[key] = value
        else:
            problems.append(f"unknown setting '{name}' in the config file: see config.toml for the list")
    return out


def _type_name(value: Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__)


def _check_value(section: str, key: str, value: Any, default: Any) -> str | None:
    """Why `value` cannot stand where `default` is, or None."""
    name = f"[{section}] {key}"
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(default, int) and not isinstance(value, int)):
            return f"{name} must be {_type_name(default)}, got {value!r}"
        low, high = RANGES.get((section, key), (0, None))
        if low is not None and value < low:
            return f"{name} must be at least {low}, got {value!r}"
        if high is not None and value > high:
            return f"{name} must be at most {high}, got {value!r}"
        return None
    if not isinstance(value, type(default)):
        return f"{name} must be {_type_name(default)}, got {value!r}"
    choices = CHOICES.get((section, key))
    if choices and value not in choices:
        return f"{name} must be one of {', '.join(choices)}, got {value!r}"
    return None


def _check_values(raw: dict[str, Any]) -> list[str]:
    problems = []
    for section, defaults in DEFAULTS.items():
        values = raw.get(section)
        if not isinstance(values, dict) or section == "limits":  # `monitor.limits.parse_limits` checks those
            continue
        if section in ("fingerprint", "matching"):
            if not values:
                continue
            cls = _fingerprint_class(section)
            defaults = {f.name: f.default for f in cls.__dataclass_fields__.values()}
        for key, value in values.items():
            if key in defaults:
                if problem := _check_value(section, key, value, defaults[key]):
                    problems.append(problem)
    return problems


def _fingerprint_class(section: str) -> type:
    if section == "fingerprint":
        from fingerprints.model import FingerprintSettings

        return FingerprintSettings
    from fingerprints.align import MatchParams

    return MatchParams


def check_database_url(url: str) -> str | None:
    """Why `url` is not a database this service runs on (SQLite or PostgreSQL), or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return (f"database URL {url!r} is not a URL; write sqlite:////path/to/provenance.db or "
                "postgresql://user@host:5432/provenance (--db or PROVENANCE_DB)")
    if scheme.lower() not in DATABASE_SCHEMES:
        return (f"database URL scheme {scheme!r} is not supported: only SQLite (sqlite:///PATH) and "
                "PostgreSQL (postgresql://user@host/db) are (--db or PROVENANCE_DB)")
    if scheme.lower() == "sqlite" and not rest.startswith("/"):
        return f"SQLite URL {url!r} names no file; write sqlite:////absolute/path/provenance.db"
    return None


def check_data_dir(path: Path) -> str | None:
    """Why `path` cannot hold the media store and database, or None (it need not exist yet)."""
    for tree in SYSTEM_TREES:
        if path == tree or path.is_relative_to(tree):
            return f"data dir {path} is inside {tree}, a system tree; choose a directory of your own (--data-dir)"
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a directory" if existing == path else f"cannot be made: {existing} is not a directory"
        return f"data dir {path} {what}; choose a directory (--data-dir or PROVENANCE_DATA_DIR)"
    if not os.access(existing, os.W_OK | os.X_OK):
        which = "is" if existing == path else f"would be made in {existing}, which is"
        return f"data dir {path} {which} not writable by this user; choose another (--data-dir)"
    return None


@dataclass
class Config:
    data_dir: Path
    db_url: str | None  # None: SQLite in the data dir
    raw: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def fingerprint_settings(self) -> FingerprintSettings:
        return _build(_fingerprint_class("fingerprint"), self.raw.get("fingerprint", {}), "fingerprint")

    @property
    def match_params(self) -> MatchParams:
        return _build(_fingerprint_class("matching"), self.raw.get("matching", {}), "matching")

    @property
    def limits(self) -> Limits:
        try:
            return parse_limits(self.raw["limits"])
        except ValueError as exc:
            raise ConfigError(f"[limits] {exc}") from exc

    @property
    def ytdlp(self) -> dict[str, Any]:
        return dict(self.raw["ytdlp"])

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw[name])


_RETIRED = {  # settings that were removed: what to do instead
    ("matching", "copies_not_crowd"): "copies of the query found by the matcher are now left out of one "
                                      "another's crowd anyway; delete the line",
}


def _build(cls, values: dict, section: str):
    known = cls.__dataclass_fields__
    retired = [f"{key} ({_RETIRED[section, key]})" for key in sorted(values) if (section, key) in _RETIRED]
    if retired:
        raise ConfigError(f"retired setting(s) in [{section}]: {'; '.join(retired)}")
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
    problems: list[str] = []
    if config_file:
        source = Path(config_file).expanduser()
        if not source.is_file():
            raise ConfigError(f"config file not found: {source} (check --config or PROVENANCE_CONFIG)")
        try:
            raw = _merge(raw, tomllib.loads(source.read_text(encoding="utf-8")), problems)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
    problems += _check_values(raw)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    chosen_dir = data_dir or os.environ.get("PROVENANCE_DATA_DIR") or raw["storage"]["data_dir"]
    resolved_dir = Path(chosen_dir).expanduser() if chosen_dir else default_data_dir()
    if source is not None and chosen_dir and not Path(chosen_dir).expanduser().is_absolute() and not data_dir \
            and not os.environ.get("PROVENANCE_DATA_DIR"):
        resolved_dir = source.parent / resolved_dir  # relative paths in a config file are relative to it
    url = db_url or os.environ.get("PROVENANCE_DB") or raw["storage"]["db"] or None
    config = Config(data_dir=resolved_dir.resolve(), db_url=url, raw=raw, source=source)
    if url and (problem := check_database_url(url)):
        problems.append(problem)
    if problem := check_data_dir(config.data_dir):
        problems.append(problem)
    for built, section in (("fingerprint_settings", "fingerprint"), ("match_params", "matching"),
                           ("limits", "limits")):
        if section != "limits" and not raw.get(section):
            continue  # the defaults: nothing to check (and numpy need not load)
        try:
            getattr(config, built)
        except (ConfigError, TypeError, ValueError) as exc:
            problems.append(str(exc))
    if config.ytdlp != DEFAULTS["ytdlp"]:  # checking needs yt-dlp, a slow import: only for custom values
        from monitor.sources.ytdlp import ytdlp_options

        try:
            ytdlp_options(config.ytdlp)
        except ValueError as exc:
            problems.append(f"[ytdlp]: {exc}")
    if problems:
        raise ConfigError(problems)
    return config
