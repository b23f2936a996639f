"""Evidence commands: export a find-earliest answer as a bundle, verify a bundle, revisit stored posts.

Thin wrappers over `monitor.jobs.export`, `monitor.bundle` and
`monitor.jobs.revisit`.  `verify` needs no database: whoever receives a
bundle can check it with this command and the TSA's CA certificate.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

import click

from monitor.cli.app import (App, InputProblem, SetupProblem, _is_url, fingerprint_progress, pass_app,
                             progress_reporter, shown, shown_markup, stderr, stdout,
                             warn_if_unfingerprinted)


def _configured_ca(app: App) -> Path | None:
    """[evidence] tsa_ca_file, relative to the config file it came from."""
    value = app.config.section("evidence")["tsa_ca_file"]
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and app.config.source is not None:
        path = app.config.source.parent / path
    return path


def _read_ca(path: Path | None, from_option: bool) -> bytes | None:
    from monitor.timestamp import TimestampError, load_certificates

    if path is None:
        return None
    problem = InputProblem if from_option else SetupProblem
    where = "--tsa-ca" if from_option else "[evidence] tsa_ca_file"
    try:
        pem = path.read_bytes()
        load_certificates(pem)
    except OSError as exc:
        raise problem(f"{where}: cannot read {shown(path)} ({exc.strerror or exc})") from exc
    except TimestampError as exc:
        raise problem(f"{where}: {shown(path)} is {exc}; give the TSA's CA certificate in PEM") from exc
    return pem


@click.command()
@click.argument("video")
@click.option("--output", "-o", "target", required=True, type=click.Path(path_type=Path),
              help="Where to write the bundle: a new directory, or a ZIP file when it ends in .zip.")
@click.option("--no-media", is_flag=True,
              help="Leave the video files out; the manifest still gives each one's SHA-256 and size.")
@click.option("--tsa", "tsa_url", metavar="URL",
              help="RFC 3161 time-stamping authority to time-stamp the manifest (default: [evidence] tsa_url).")
@click.option("--no-timestamp", is_flag=True, help="Do not time-stamp the manifest, even if a TSA is configured.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@pass_app
def export(app: App, video: str, target: Path, no_media: bool, tsa_url: str | None, no_timestamp: bool,
           as_json: bool) -> None:
    """Write an evidence bundle for `find-earliest VIDEO` (a file or a URL).

    The bundle holds the report in every format, each appearance's original
    file (or only its hash, with --no-media), its raw platform metadata,
    exiftool and ffprobe reports, JPEG stills of the matched moments of both
    videos, every revisit of each post, and manifest.json: every file's SHA-256
    and size, the tool versions, the fingerprint settings, and when and from
    which store it was made. With a time-stamping authority (--tsa, or
    [evidence] tsa_url) the manifest is time-stamped (manifest.json.tsr).
    Check a bundle with `provenance verify`.

    \b
    Example:
      provenance export repost.mp4 -o evidence/
      provenance export repost.mp4 -o evidence.zip --tsa https://freetsa.org/tsr
      provenance export https://example.org/v/1 -o evidence.zip --no-media
    """
    from monitor.jobs.earliest import find_earliest
    from monitor.jobs.export import ExportError, ExportInputError, export_bundle

    settings = app.config.section("evidence")
    tsa = None if no_timestamp else (tsa_url or settings["tsa_url"] or None)
    ca_pem = _read_ca(_configured_ca(app), from_option=False) if tsa else None
    if target.exists():
        raise InputProblem(f"{shown(target)} exists already; give a new path (a bundle is never written over "
                           "another one)")
    ws = app.workspace()
    warn_if_unfingerprinted(ws)
    with ExitStack() as stack:
        if _is_url(video):
            from monitor.analysis import InputError
            from monitor.jobs.earliest import find_earliest_url

            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="provenance-export-")))
            try:
                with progress_reporter("downloading", None):
                    report = find_earliest_url(ws, video, workdir)
            except InputError as exc:
                raise InputProblem(f"{shown(video)}: {exc}") from exc
        else:
            path = Path(video)
            if not path.is_file():
                raise InputProblem(f"{shown(video)}: no such file (give a path or an http(s) URL)")
            with fingerprint_progress(path) as progress:
                report = find_earliest(ws, path, progress=progress)
        try:
            summary = export_bundle(ws, report, target, include_media=not no_media, tsa_url=tsa, ca_pem=ca_pem)
        except ExportInputError as exc:
            raise InputProblem(str(exc)) from exc
        except ExportError as exc:
            raise SetupProblem(str(exc)) from exc
    if as_json:
        stdout.print_json(json.dumps(summary.as_json()))
        return
    media = (f"{summary.media_included} media files" if not no_media
             else f"{summary.media_hash_only} media by hash only")
    stdout.print(f"bundle written: {shown_markup(summary.path)} ({summary.appearances} appearances, {media}, "
                 f"{summary.stills} stills, {summary.files} files)")
    if summary.stills_missing:
        stderr.print(f"warning: {len(summary.stills_missing)} stills could not be cut: "
                     + ", ".join(summary.stills_missing[:3]))
    if summary.timestamp:
        t = summary.timestamp
        checked = "checked against the CA certificate" if t["checked_against_ca"] else \
            "not checked (no [evidence] tsa_ca_file)"
        stdout.print(f"time-stamped {t['time'] or ''} by {shown_markup(t['tsa'] or t['authority'])}, serial {t['serial']}; "
                     f"{checked}")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--tsa-ca", "ca_file", type=click.Path(path_type=Path, dir_okay=False),
              help="The time-stamping authority's CA certificate, PEM (default: [evidence] tsa_ca_file).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@pass_app
def verify(app: App, path: Path, ca_file: Path | None, as_json: bool) -> None:
    """Check an evidence bundle (a directory or a ZIP) against its manifest and time-stamp.

    Every file's SHA-256 and size must be as manifest.json lists them, no
    file may be missing or added, and a time-stamp token (manifest.json.tsr)
    must be granted for exactly this manifest and signed by a TSA whose
    certificate chains to the CA certificate given. Exits 0 when all of that
    holds, 1 otherwise, naming each difference. Needs no database.

    \b
    Example:
      provenance verify evidence.zip --tsa-ca tsa-ca.pem
      provenance verify evidence/ --json
    """
    from monitor.bundle import verify_bundle

    if not path.exists():
        raise InputProblem(f"{shown(path)}: no such bundle (give the directory or the .zip that export wrote)")
    ca_pem = _read_ca(ca_file, from_option=True) if ca_file else _read_ca(_configured_ca(app), from_option=False)
    result = verify_bundle(path, ca_pem)
    if as_json:
        stdout.print_json(json.dumps(result.as_json()))
    else:
        for problem in result.problems:
            stdout.print(shown(str(problem)), markup=False)
        check = result.timestamp
        if check is not None and check.gen_time:
            state = "verified" if check.ok else "NOT verified"
            stdout.print(f"time-stamp {state}: {check.gen_time.isoformat().replace('+00:00', 'Z')} by "
                         f"{shown_markup(check.tsa or '?')}, serial {check.serial}", markup=False)
        elif check is None:
            stdout.print("no time-stamp: the manifest shows what the files are, not since when")
        summary = f"{result.files_checked} files checked against manifest.json (made {result.manifest.get('created_at')})"
        stdout.print(("ok: " if result.ok else f"FAILED ({len(result.problems)} problems): ") + summary, markup=False)
    if not result.ok:
        raise click.exceptions.Exit(1)


@click.command()
@click.option("--all", "every_post", is_flag=True, help="Revisit every stored post with a web URL, due or not.")
@click.option("--post", "post_ids", type=int, multiple=True, metavar="ID", help="Revisit this post (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@pass_app
def revisit(app: App, every_post: bool, post_ids: tuple[int, ...], as_json: bool) -> None:
    """Look at stored posts again and record what is seen: up, removed, private, geo-blocked, unreachable.

    Without options, revisits the posts the [revisit] schedule says are due
    (hourly for a day, daily until 30 days, weekly after, by default). Each
    revisit adds an observation (time, status, method, tool, title,
    description, counts, and what changed since the last one); nothing is
    overwritten and no media is downloaded again. Posts stored from local
    files are never revisited.

    \b
    Example:
      provenance revisit
      provenance revisit --post 12 --json
      provenance revisit --all
    """
    from monitor.config import ConfigError
    from monitor.jobs.revisit import NotRevisitable, RevisitSummary, revisit_all, revisit_due, revisit_post
    from monitor.reports.observations import observation_json
    from storage import NotFound

    if every_post and post_ids:
        raise click.UsageError("give --all or --post, not both")
    ws = app.workspace()
    try:
        if post_ids:
            summary = RevisitSummary()
            for post_id in post_ids:
                try:
                    summary.observations.append(revisit_post(ws, post_id))
                except (NotFound, NotRevisitable) as exc:
                    raise InputProblem(str(exc)) from exc
        elif every_post:
            summary = revisit_all(ws)
        else:
            summary = revisit_due(ws)
    except ConfigError as exc:
        raise SetupProblem(str(exc)) from exc
    if as_json:
        stdout.print_json(json.dumps({
            "observations": [{"post_id": o.post_id, **observation_json(o)} for o in summary.observations],
            "skipped": summary.skipped, "statuses": summary.statuses()}))
        return
    for o in summary.observations:
        changed = ", ".join(f"{k} changed" for k in o.changes)
        why = f" ({o.error_kind})" if o.error_kind else ""
        stdout.print(f"post {o.post_id}: {o.status}{why}" + (f"; {changed}" if changed else ""), markup=False)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses().items()))
    stdout.print(f"{len(summary.observations)} revisited" + (f": {counts}" if counts else "")
                 + (f"; {len(summary.skipped)} skipped" if summary.skipped else ""))
