"""The pages of the web application: queries, watches, posts, footage, tracking, alerts, accounts, audit.

Each handler reads or changes the store through the same jobs as the
command line and renders one template; a change answers with a redirect and
a one-line message (post/redirect/get).  `routes(page, flash)` lists them with
the role each needs (`monitor.web.app.page`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.analysis import InputError, analyse_file
from monitor.jobs.accounts import ADMIN, EDITOR, VIEWER, AccountError
from monitor.jobs.browse import Ambiguous
from monitor.reports.words import shown
from monitor.web.queries import QueryResult, now
from storage import NotFound, StorageError
from storage.records import ROLES, NewPost, PostSearch

if TYPE_CHECKING:
    from monitor.web.app import Principal, Web

PAGE_SIZE = 50
UPLOAD_CHUNK = 1 << 20


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def routes(page, flash) -> list[Route]:
    """Every page with the role it needs."""

    # --- home and queries -------------------------------------------------------------------

    @page(VIEWER)
    async def home(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        repo = web.ws.repository
        alerts = await web.read(repo.list_alerts, True, 5)
        tracked = await web.read(repo.list_tracked)
        users = await web.read(repo.count_users)
        return web.render(request, "home.html.j2", who, alerts=alerts, tracked=tracked, no_accounts=users == 0,
                          max_upload_mb=web.settings["max_upload_mb"])

    @page(VIEWER)
    async def run_query(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        upload, url = form.get("video"), _text(form, "url")
        has_file = isinstance(upload, UploadFile) and upload.filename
        if not has_file and not url:
            return flash(request, "Drop a video or paste a URL first.", "/")
        token, directory = web.queries.new_directory()
        try:
            if has_file:
                path = directory / "query"
                with open(path, "wb") as out:
                    while chunk := await upload.read(UPLOAD_CHUNK):
                        out.write(chunk)
                result = await web.heavy(_query_file, web, token, directory, path, shown(upload.filename), who)
            else:
                if not url.startswith(("http://", "https://")):
                    raise InputError("give an http(s) URL")
                result = await web.heavy(_query_url, web, token, directory, url, who)
        except (InputError, OSError) as exc:
            web.queries.discard(directory)
            name = shown(upload.filename) if has_file else url
            return flash(request, f"{name}: {exc}", "/")
        web.queries.add(result)
        return flash(request, f"{len(result.report.appearances)} appearance(s) found.", f"/query/{token}")

    @page(VIEWER)
    async def query_page(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        result = web.queries.get(request.path_params["token"], who.name, who.may(ADMIN))
        if result is None:
            return web.render(request, "message.html.j2", who, status=404, title="No such query",
                              message="This query has expired (the newest ones are kept): run it again.")
        return web.render(request, "query.html.j2", who, result=result, report=result.report)

    @page(EDITOR)
    async def query_track(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        result = web.queries.get(request.path_params["token"], who.name, who.may(ADMIN))
        if result is None:
            return flash(request, "That query has expired: run it again.", "/")
        label = _text(form, "label") or None
        try:
            tracked = await web.heavy(_track_query, web, result, label, who)
        except StorageError as exc:
            return flash(request, f"Not tracked: {exc}", f"/query/{result.token}")
        return flash(request, f"Tracking '{shown(tracked.label or '#' + str(tracked.id))}': new posts that match "
                              "it raise an alert.", f"/query/{result.token}")

    # --- watches -------------------------------------------------------------------------------

    @page(VIEWER)
    async def watches(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        repo = web.ws.repository
        found = await web.read(repo.list_watches)
        counts = await web.read(repo.post_counts_by_watch)
        polls = {w.id: await web.read(repo.list_polls, w.id, 3) for w in found}
        return web.render(request, "watches.html.j2", who, watches=found, counts=counts, polls=polls)

    @page(EDITOR)
    async def watch_add(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.cli.watch import parse_interval
        from monitor.failures import SourceError
        from monitor.jobs.watches import WatchExists, check_fetcher, prepare_watch, store_watch

        text, label = _text(form, "url"), _text(form, "label") or None
        try:
            interval = parse_interval(_text(form, "every") or web.ws.config.section("watch")["default_interval"])
        except Exception as exc:  # click.BadParameter: a duration we cannot read
            return flash(request, getattr(exc, "message", str(exc)), "/watches")
        try:  # the look at the URL is one bounded request ([watch] check_seconds), off the event loop
            url, kind, note = await web.read(prepare_watch, web.ws.repository, text, True,
                                             check_fetcher(web.ws.config))
        except (SourceError, WatchExists) as exc:
            return flash(request, str(exc), "/watches")

        def add():
            with web.ws.repository.transaction() as repo:
                watch = store_watch(repo, url, kind, label, interval)
                repo.add_audit(who.name, "web", "watch.add", f"watch {watch.id}",
                               {"url": url, "kind": kind, "label": label, "interval_seconds": interval})
            return watch

        try:
            watch = await web.read(add)
        except WatchExists as exc:  # another process added the same address a moment ago
            return flash(request, str(exc), "/watches")
        return flash(request, f"Watch {watch.id} added ({kind}).{' ' + note if note else ''}", "/watches")

    async def _watch_change(request: Request, web: Web, who: Principal, action: str) -> Response:
        watch_id = request.path_params["id"]
        watch = await web.read(web.ws.repository.get_watch, watch_id)
        if watch is None:
            return flash(request, f"No watch {watch_id}.", "/watches")
        if action == "poll":
            return await _poll(request, web, who, watch)

        def change():
            with web.ws.repository.transaction() as repo:
                repo.set_watch_enabled(watch_id, action == "resume")
                repo.add_audit(who.name, "web", f"watch.{action}", f"watch {watch_id}", {})

        await web.read(change)
        return flash(request, f"Watch {watch_id} {'resumed' if action == 'resume' else 'paused'}.", "/watches")

    async def _poll(request: Request, web: Web, who: Principal, watch) -> Response:
        from monitor.jobs.poll import default_source, poll_watch

        repo = web.ws.repository
        before = await web.read(repo.last_alert_id)
        await web.read(repo.add_audit, who.name, "web", "watch.poll", f"watch {watch.id}", {})
        summary = await web.heavy(lambda: poll_watch(web.ws, watch, default_source(web.ws.config)))
        raised = await web.read(lambda: repo.list_alerts(after_id=before, limit=100))
        text = (f"Watch {watch.id}: listing failed: {summary.listing_error}" if not summary.ran else
                f"Watch {watch.id}: {summary.items_seen} listed, {summary.items_new} new, "
                f"{summary.items_failed} failed.")
        text += "".join(f" {a.message}." for a in reversed(raised))
        return flash(request, text, "/watches")

    @page(EDITOR)
    async def watch_pause(request, web, who, form):
        return await _watch_change(request, web, who, "pause")

    @page(EDITOR)
    async def watch_resume(request, web, who, form):
        return await _watch_change(request, web, who, "resume")

    @page(EDITOR)
    async def watch_poll(request, web, who, form):
        return await _watch_change(request, web, who, "poll")

    # --- posts, media, footage -----------------------------------------------------------------

    def _search(params) -> tuple[PostSearch, dict[str, str]]:
        from monitor.cli.app import parse_when

        given = {k: params.get(k, "").strip() for k in
                 ("url", "uploader", "platform", "watch", "text", "claimed_from", "claimed_to", "seen_from",
                  "seen_to")}
        offset = max(_int(params.get("offset")) or 0, 0)
        watch = _int(given["watch"])
        return PostSearch(url=given["url"] or None, uploader=given["uploader"] or None,
                          platform=given["platform"] or None,
                          watch_ids=(watch,) if watch is not None else None, text=given["text"] or None,
                          claimed_from=parse_when(given["claimed_from"], "claimed from"),
                          claimed_to=parse_when(given["claimed_to"], "claimed to", end=True),
                          seen_from=parse_when(given["seen_from"], "seen from"),
                          seen_to=parse_when(given["seen_to"], "seen to", end=True),
                          include_merged=params.get("merged") == "1", limit=PAGE_SIZE, offset=offset), given

    @page(VIEWER)
    async def posts(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        from monitor.jobs.browse import search_posts

        try:
            search, given = _search(request.query_params)
        except Exception as exc:  # click.BadParameter from a date we cannot read
            return web.render(request, "message.html.j2", who, status=400, title="Search",
                              message=getattr(exc, "message", str(exc)))
        found, merged = await web.read(search_posts, web.ws, search)
        total = await web.read(web.ws.repository.count_posts_matching, search)
        return web.render(request, "posts.html.j2", who, posts=found, merged=merged, given=given, total=total,
                          offset=search.offset, page_size=PAGE_SIZE, include_merged=search.include_merged)

    @page(VIEWER)
    async def post(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        from monitor.jobs.browse import post_details

        try:
            details = await web.read(post_details, web.ws, request.path_params["id"])
        except NotFound as exc:
            return web.render(request, "message.html.j2", who, status=404, title="No such post", message=str(exc))
        from monitor.reports.observations import history_lines

        return web.render(request, "post.html.j2", who, d=details,
                          history=history_lines(details.post, details.observations))

    @page(EDITOR)
    async def post_claim(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.cli.app import parse_published_at
        from monitor.jobs.corrections import add_claim

        post_id = request.path_params["id"]
        try:
            at, precision = parse_published_at(_text(form, "published_at"))
            if at is None:
                raise ValueError("give the publication time, e.g. 2024-03-01T10:15:00Z or 2024-03-01")
            await web.read(add_claim, web.ws, who.actor, post_id, at, precision, _text(form, "reason"),
                           form.get("correction") == "1")
        except (ValueError, NotFound) as exc:
            return flash(request, f"Claim not added: {getattr(exc, 'message', exc)}", f"/posts/{post_id}")
        except Exception as exc:  # click.BadParameter
            return flash(request, f"Claim not added: {getattr(exc, 'message', exc)}", f"/posts/{post_id}")
        return flash(request, "Claim added.", f"/posts/{post_id}")

    @page(EDITOR)
    async def post_merge(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.corrections import merge_posts

        post_id, into = request.path_params["id"], _int(form.get("into"))
        if into is None:
            return flash(request, "Give the id of the post it duplicates.", f"/posts/{post_id}")
        try:
            await web.read(merge_posts, web.ws, who.actor, post_id, into, _text(form, "reason"))
        except (ValueError, NotFound, StorageError) as exc:
            return flash(request, f"Not merged: {exc}", f"/posts/{post_id}")
        return flash(request, f"Post {post_id} merged into post {into}.", f"/posts/{into}")

    @page(ADMIN)
    async def post_delete(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.corrections import delete_post

        post_id = request.path_params["id"]
        try:
            deletion = await web.heavy(delete_post, web.ws, who.actor, post_id, _text(form, "reason"))
        except (ValueError, NotFound) as exc:
            return flash(request, f"Not deleted: {exc}", f"/posts/{post_id}")
        what = f"media {deletion.media_id} and its posts" if deletion.kind == "media" else f"post {post_id}"
        return flash(request, f"Deleted {what} (deletion {deletion.id}).", "/posts")

    @page(VIEWER)
    async def media(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        from monitor.jobs.browse import media_details

        try:
            details = await web.read(media_details, web.ws, request.path_params["sha256"])
        except (NotFound, Ambiguous, ValueError) as exc:
            return web.render(request, "message.html.j2", who, status=404, title="No such media", message=str(exc))
        return web.render(request, "media.html.j2", who, d=details)

    @page(ADMIN)
    async def media_delete(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.browse import find_media
        from monitor.jobs.corrections import delete_media

        try:
            found = await web.read(find_media, web.ws, request.path_params["sha256"])
            deletion = await web.heavy(delete_media, web.ws, who.actor, found.id, _text(form, "reason"))
        except (NotFound, Ambiguous, ValueError) as exc:
            return flash(request, f"Not deleted: {exc}", "/posts")
        return flash(request, f"Deleted media {deletion.media_id} (deletion {deletion.id}).", "/posts")

    @page(VIEWER)
    async def footage(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        from monitor.jobs.browse import footage_groups, search_posts

        sort = request.query_params.get("sort", "size")
        sort = sort if sort in ("size", "newest") else "size"
        text = request.query_params.get("q", "").strip()
        media_ids = None
        if text:
            by_url, _ = await web.read(search_posts, web.ws, PostSearch(url=text, limit=1000, include_merged=True))
            by_text, _ = await web.read(search_posts, web.ws, PostSearch(text=text, limit=1000, include_merged=True))
            media_ids = {p.media_id for p in by_url + by_text}
        groups = await web.read(lambda: footage_groups(web.ws, min_posts=1 if text else 2, sort=sort, limit=100,
                                                       media_ids=media_ids))
        return web.render(request, "footage.html.j2", who, groups=groups, sort=sort, q=text)

    # --- tracking and alerts -------------------------------------------------------------------

    @page(VIEWER)
    async def tracked(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        items = await web.read(web.ws.repository.list_tracked, False)
        media = await web.read(web.ws.repository.media_by_id, [t.media_id for t in items])
        return web.render(request, "tracked.html.j2", who, items=items, media=media)

    async def _act_on_id(request: Request, web: Web, who: Principal, job, done: str, back: str) -> Response:
        """`job(ws, actor, id)` on the id in the path; back to `back`, saying `done` or why not."""
        try:
            await web.read(job, web.ws, who.actor, request.path_params["id"])
        except NotFound as exc:
            return flash(request, str(exc), back)
        return flash(request, done, back)

    @page(EDITOR)
    async def untrack(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.alerts import untrack as stop

        return await _act_on_id(request, web, who, stop, "No longer tracked.", "/tracked")

    @page(VIEWER)
    async def alerts(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        unread = request.query_params.get("unread") == "1"
        found = await web.read(lambda: web.ws.repository.list_alerts(unread_only=unread, limit=200))
        posts = await web.read(web.ws.repository.posts_by_id, [a.post_id for a in found])
        return web.render(request, "alerts.html.j2", who, alerts=found, posts=posts, unread=unread)

    @page(EDITOR)
    async def alert_ack(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.alerts import ack

        return await _act_on_id(request, web, who, ack, "Alert acknowledged.", "/alerts")

    # --- accounts and the trail ----------------------------------------------------------------

    @page(ADMIN)
    async def users(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        found = await web.read(web.ws.repository.list_users)
        return web.render(request, "users.html.j2", who, users=found, roles=ROLES)

    @page(ADMIN)
    async def user_add(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.accounts import add_user

        password = form.get("password") if isinstance(form.get("password"), str) else ""
        if password != form.get("password_again"):
            return flash(request, "The two passwords differ.", "/users")
        try:
            user = await web.read(add_user, web.ws, who.actor, _text(form, "name"), password, _text(form, "role"))
        except (AccountError, StorageError) as exc:
            return flash(request, f"Not added: {exc}", "/users")
        return flash(request, f"User {user.name} added ({user.role}).", "/users")

    @page(ADMIN)
    async def user_remove(request: Request, web: Web, who: Principal, form: FormData) -> Response:
        from monitor.jobs.accounts import remove_user

        name = request.path_params["name"]
        if name == who.name:
            return flash(request, "You cannot remove your own account here; use `provenance users remove`.",
                         "/users")
        try:
            await web.read(remove_user, web.ws, who.actor, name)
        except NotFound as exc:
            return flash(request, str(exc), "/users")
        return flash(request, f"User {name} removed.", "/users")

    @page(VIEWER)
    async def audit(request: Request, web: Web, who: Principal, form: FormData | None) -> Response:
        entries = await web.read(web.ws.repository.list_audit, 200)
        deletions = await web.read(web.ws.repository.list_deletions, 50)
        return web.render(request, "audit.html.j2", who, entries=entries, deletions=deletions)

    return [
        Route("/", home, methods=["GET"]),
        Route("/query", run_query, methods=["POST"]),
        Route("/query/{token}", query_page, methods=["GET"]),
        Route("/query/{token}/track", query_track, methods=["POST"]),
        Route("/watches", watches, methods=["GET"]),
        Route("/watches", watch_add, methods=["POST"]),
        Route("/watches/{id:int}/pause", watch_pause, methods=["POST"]),
        Route("/watches/{id:int}/resume", watch_resume, methods=["POST"]),
        Route("/watches/{id:int}/poll", watch_poll, methods=["POST"]),
        Route("/posts", posts, methods=["GET"]),
        Route("/posts/{id:int}", post, methods=["GET"]),
        Route("/posts/{id:int}/claim", post_claim, methods=["POST"]),
        Route("/posts/{id:int}/merge", post_merge, methods=["POST"]),
        Route("/posts/{id:int}/delete", post_delete, methods=["POST"]),
        Route("/media/{sha256}", media, methods=["GET"]),
        Route("/media/{sha256}/delete", media_delete, methods=["POST"]),
        Route("/footage", footage, methods=["GET"]),
        Route("/tracked", tracked, methods=["GET"]),
        Route("/tracked/{id:int}/untrack", untrack, methods=["POST"]),
        Route("/alerts", alerts, methods=["GET"]),
        Route("/alerts/{id:int}/ack", alert_ack, methods=["POST"]),
        Route("/users", users, methods=["GET"]),
        Route("/users", user_add, methods=["POST"]),
        Route("/users/{name}/remove", user_remove, methods=["POST"]),
        Route("/audit", audit, methods=["GET"]),
    ]


# --- the long jobs behind the query pages (run in a worker thread) ----------------------------


def _finish_query(web: Web, token: str, directory: Path, path: Path, name: str, query_url: str | None,
                  post: NewPost, who: Principal) -> QueryResult:
    from monitor.jobs.earliest import find_earliest
    from monitor.reports import render_report

    ws = web.ws
    analysed = analyse_file(path, ws.settings, exif=ws.exif)
    report = find_earliest(ws, path, query_url=query_url, analysed=analysed)
    html = directory / "report.html"
    html.write_text(render_report("html", report, ws.store), encoding="utf-8")
    return QueryResult(token=token, owner=who.name, name=name, directory=directory, analysed=analysed, report=report,
                       report_html=html, post=post, created_at=now())


def _query_file(web: Web, token: str, directory: Path, path: Path, name: str, who: Principal) -> QueryResult:
    from monitor.jobs.ingest import file_url

    post = NewPost(media_id=0, url=file_url(path), platform="upload",
                   raw_metadata={"upload": {"name": name, "by": who.name}})
    return _finish_query(web, token, directory, path, name, None, post, who)


def _query_url(web: Web, token: str, directory: Path, url: str, who: Principal) -> QueryResult:
    from monitor.sources import ListedItem, SourceError, YtDlpSource

    try:
        item = YtDlpSource(web.ws.config.ytdlp).download(ListedItem(url=url, archive_key=None), directory / "download")
    except SourceError as exc:
        raise InputError(str(exc)) from exc
    return _finish_query(web, token, directory, item.path, url, url, item.post.to_new_post(0), who)


def _track_query(web: Web, result: QueryResult, label: str | None, who: Principal):
    """Store the query's file (already analysed) with its post, and track its media."""
    from monitor.jobs.alerts import track_media
    from monitor.jobs.ingest import ingest_analysed

    stored = ingest_analysed(web.ws, result.analysed, result.post)
    tracked = track_media(web.ws, who.actor, stored.media.id, label, result.name)
    result.tracked_id = tracked.id
    return tracked
