"""Tracked footage and alerts: say when a newly stored post shows footage someone is following.

`track_*` puts footage on the list (the video is stored like any ingest, and
its media tracked).  `after_ingest` is called once after every successful
ingest (`monitor.jobs.ingest`): when the new post's media matches tracked
footage (or any stored footage, with `[alerts] on_any_match`), it records an
alert in its own transaction after the ingest's commit, logs it, and hands
it to a background sender.  Sending can never fail or slow an ingest: it
runs in a worker thread, through Apprise (`[alerts] notify` URLs: json://,
mailto://, slack://, tgram://, matrix://, ...), with a timeout per URL, and
each attempt is recorded per URL (by scheme and position, never with the
URL's secrets).  Commands that end soon after ingesting wait a bounded time
for what is being sent (`wait_for_deliveries`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.display import shown
from monitor.jobs.corrections import Actor
from monitor.workspace import Workspace
from storage import SqlRepository
from storage.records import ALERT_MATCH, ALERT_TRACKED, AlertRecord, NewPost, TrackedRecord

if TYPE_CHECKING:
    from monitor.jobs.ingest import IngestResult

log = logging.getLogger("provenance.alerts")

SENDER_THREADS = 2
_pending: set[Future] = set()
_pending_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def track_media(ws: Workspace, actor: Actor, media_id: int, label: str | None, source: str) -> TrackedRecord:
    with ws.repository.transaction() as repo:
        tracked = repo.add_tracked(media_id, label or None, source, actor.name)
        repo.add_audit(actor.name, actor.via, "track.add", f"media {media_id}",
                       {"tracked_id": tracked.id, "label": label, "source": source})
    return tracked


def track_file(ws: Workspace, actor: Actor, path: Path, label: str | None, post: NewPost | None = None,
               allow_deleted: bool = False, progress=None) -> tuple[TrackedRecord, IngestResult]:
    """Store a video file (like `provenance ingest`) and track its media."""
    from monitor.jobs.ingest import file_url, ingest_file

    post = post or NewPost(media_id=0, url=file_url(path), platform="file",
                           raw_metadata={"ingest": {"path": str(path), "tracked_by": actor.name}})
    result = ingest_file(ws, path, post, progress, allow_deleted=allow_deleted)
    return track_media(ws, actor, result.media.id, label, shown(Path(path).name)), result


def track_url(ws: Workspace, actor: Actor, url: str, label: str | None, workdir: Path,
              allow_deleted: bool = False) -> tuple[TrackedRecord, IngestResult]:
    """Download the video at `url` (yt-dlp), store it with its post, and track its media."""
    from monitor.analysis import InputError, analyse_file
    from monitor.jobs.ingest import ingest_analysed, stored_fingerprinted_media, ingest_file
    from monitor.sources import ListedItem, SourceError, YtDlpSource

    try:
        item = YtDlpSource(ws.config.ytdlp).download(ListedItem(url=url, archive_key=None), workdir)
    except SourceError as exc:
        raise InputError(str(exc)) from exc
    post = item.post.to_new_post(0)
    if stored_fingerprinted_media(ws, item.path):
        result = ingest_file(ws, item.path, post, allow_deleted=allow_deleted)
    else:
        result = ingest_analysed(ws, analyse_file(item.path, ws.settings, exif=ws.exif), post,
                                 allow_deleted=allow_deleted)
    return track_media(ws, actor, result.media.id, label, url), result


def untrack(ws: Workspace, actor: Actor, tracked_id: int) -> TrackedRecord:
    with ws.repository.transaction() as repo:
        tracked = repo.stop_tracking(tracked_id, actor.name)
        repo.add_audit(actor.name, actor.via, "track.remove", f"tracked {tracked_id}", {"media_id": tracked.media_id})
    return tracked


def ack(ws: Workspace, actor: Actor, alert_id: int) -> AlertRecord:
    with ws.repository.transaction() as repo:
        alert = repo.ack_alert(alert_id, actor.name)
        repo.add_audit(actor.name, actor.via, "alert.ack", f"alert {alert_id}", {})
    return alert


def tracked_name(tracked: TrackedRecord) -> str:
    return shown(tracked.label) if tracked.label else f"#{tracked.id}"


def after_ingest(ws: Workspace, result: IngestResult) -> list[AlertRecord]:
    """Record (and send) the alerts a successful ingest raises; never raises itself."""
    if not result.new_post:
        return []
    try:
        return _record_alerts(ws, result)
    except Exception:  # the ingest is committed: an alert problem is logged, never passed on
        log.exception("recording alerts for post %s failed", result.post.id)
        return []


def _record_alerts(ws: Workspace, result: IngestResult) -> list[AlertRecord]:
    matched = [v.media.id for v in result.matches if v.media is not None and v.media.id != result.media.id]
    known = matched + ([] if result.new_media else [result.media.id])
    tracked = ws.repository.tracked_for_media(known) if known else []
    settings = ws.config.section("alerts")
    post = result.post
    alerts = []
    with ws.repository.transaction() as repo:
        for t in tracked:
            message = f"new item matches tracked footage '{tracked_name(t)}' (post {post.id})"
            alerts.append(repo.add_alert(ALERT_TRACKED, post.id, result.media.id, t.id, t.media_id, message))
        if not tracked and matched and settings["on_any_match"]:
            message = f"new item matches stored footage (media {matched[0]}) (post {post.id})"
            alerts.append(repo.add_alert(ALERT_MATCH, post.id, result.media.id, None, matched[0], message))
    for alert in alerts:
        log.info("%s: %s", alert.message, shown(post.url))
    if alerts and settings["notify"]:
        _send_later(ws.repository, list(settings["notify"]), float(settings["timeout"]), alerts, post.url,
                    post.title)
    return alerts


def delivery_target(url: str, position: int) -> str:
    """How a notification URL is named in the database and on pages: its scheme and place, no secrets."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{shown(scheme)}:// (notify #{position})"


def _send_later(repository: SqlRepository, urls: list[str], timeout: float, alerts: list[AlertRecord],
                url: str, title: str | None) -> None:
    global _executor
    with _pending_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="provenance-alerts")
        for alert in alerts:
            future = _executor.submit(deliver, repository, urls, timeout, alert, url, title)
            _pending.add(future)
            future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _pending_lock:
        _pending.discard(future)


def wait_for_deliveries(timeout: float) -> bool:
    """Wait up to `timeout` seconds for alerts being sent; True when none is left."""
    with _pending_lock:
        pending = set(_pending)
    if not pending:
        return True
    done, not_done = wait(pending, timeout=timeout)
    return not not_done


def deliver(repository: SqlRepository, urls: list[str], timeout: float, alert: AlertRecord, post_url: str,
            title: str | None) -> int:
    """Send one alert to every URL and record each attempt; returns how many succeeded."""
    body = "\n".join(line for line in (alert.message, post_url, f"title: {title}" if title else "") if line)
    sent = 0
    for position, url in enumerate(urls, 1):
        ok, error = send_notification(url, "provenance: " + alert.message, body, timeout)
        sent += ok
        try:
            repository.add_alert_delivery(alert.id, delivery_target(url, position), ok, error)
        except Exception:  # the database went away: say so in the log, the alert row is there
            log.exception("recording the delivery of alert %s failed", alert.id)
        if not ok:
            log.warning("alert %s not delivered to %s: %s", alert.id, delivery_target(url, position), error)
    return sent


def send_notification(url: str, title: str, body: str, timeout: float) -> tuple[bool, str | None]:
    """One Apprise notification with connect and read timeouts; (sent, why not)."""
    try:
        import apprise

        notifier = apprise.Apprise()
        if not notifier.add(url):
            return False, "not a notification URL Apprise understands (see [alerts] notify in config.toml)"
        for service in notifier:
            service.socket_connect_timeout = timeout
            service.socket_read_timeout = timeout
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = bool(notifier.notify(title=title, body=body))
        if ok:
            return True, None
        lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        return False, (lines[-1] if lines else "the service did not accept the notification")[:500]
    except Exception as exc:  # a plugin bug must not reach the sender thread's caller either
        return False, f"{type(exc).__name__}: {exc}"[:500]
