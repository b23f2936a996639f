"""`provenance calibrate` (registered on the `provenance` group): a thin wrapper over `monitor.jobs.calibrate`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.cli.app import App, SetupProblem, pass_app, shown, shown_markup, stderr, stdout

# the same names as monitor.jobs.calibrate.FAMILIES (a test checks), written out to keep `provenance --help` quick
FAMILY_NAMES = "reencode, flip, crop, borders, vertical, caption, logo, overlay, pip, speed, excerpt, colour, fps"


@contextmanager
def _progress() -> Iterator:
    if not stderr.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task("calibrating", total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"calibrating: {shown_markup(label)}")

        yield update


def _say(text: str) -> None:
    stdout.print(escape(text))  # "[matching]" is a config section, not rich markup


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _precision(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _suggestion(score, target: float) -> str:
    if score is None:
        return f"none reaches precision {target:g} without losing recall"
    return f"{score.max_distance} (recall {_percent(score.recall)})"


@click.command()
@click.option("--sample", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many stored videos to edit (chosen at random with --seed).")
@click.option("--families", metavar="A,B",
              help=f"Comma-separated transform families (default: all): {FAMILY_NAMES}.")
@click.option("--target-precision", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.99, show_default=True,
              help="Suggest the widest max_distance whose precision is at least this (and recall no lower).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which stored videos are sampled.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Keep the edited copies in DIR (and reuse them next time) instead of a temporary directory.")
@pass_app
def calibrate(app: App, sample: int, families: str | None, target_precision: float, seed: int, as_json: bool,
              keep: Path | None) -> None:
    """Measure matching on edited copies of your own stored footage, per edit family.

    Renders re-upload edits (re-encode, mirror, crop, borders, 9:16 reframe,
    captions, logo, sticker, picture-in-picture, speed, excerpt, colour, frame
    rate) of a sample of stored videos, at most 20 s of each, matches every
    copy against the store as find-earliest would, and reports per family how
    many copies found their source at the configured thresholds and how many
    matched unrelated stored videos (other copies of the same footage, as
    the store's matches link them, are not unrelated). A sweep over
    [matching] max_distance then suggests the widest value that keeps the
    precision you ask for without finding fewer copies, and says what the
    advice rests on. Nothing is stored. Takes a few seconds per copy
    (videos x families).

    \b
    Example:
      provenance calibrate
      provenance calibrate --sample 10 --families flip,crop,caption --target-precision 0.995
    """
    from monitor.jobs.calibrate import CalibrationError, calibrate as run_calibration, parse_families

    try:
        chosen = parse_families(families)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--families") from exc
    ws = app.workspace()
    try:
        with _progress() as progress:
            report = run_calibration(ws, sample=sample, families=chosen, target_precision=target_precision,
                                     seed=seed, workdir=keep, progress=progress)
    except CalibrationError as exc:
        raise SetupProblem(str(exc)) from exc
    if as_json:
        stdout.print_json(json.dumps(report.as_dict()))
        return
    configured = report.configured_max_distance
    ids = ", ".join(str(s.media_id) for s in report.sources)
    _say(f"calibrated on {len(report.sources)} of {report.stored_videos} stored videos (media {ids}; "
         f"seed {report.seed}), settings {report.settings}, max_distance {configured}")
    table = Table("family", "copies", f"recall @ {configured}", "false matches",
                  f"widest max_distance: precision ≥ {report.target_precision:g}, no recall lost")
    for fam in [*report.families, report.overall]:
        s = fam.configured
        copies = f"{fam.copies}" + (f" ({fam.failed} failed)" if fam.failed else "")
        table.add_row(fam.family, copies, f"{_percent(s.recall)} ({s.found}/{s.copies})", str(s.false_matches),
                      _suggestion(fam.suggested, report.target_precision), end_section=fam is report.families[-1])
    stdout.print(table)
    sweep = report.overall.sweep
    _say("all families, max_distance: recall / precision  "
         + "  ".join(f"{p.max_distance}: {_percent(p.recall)} / {_precision(p.precision)}" for p in sweep))
    now = report.overall.configured
    _say(f"configured max_distance {configured}: recall {_percent(now.recall)}, precision {_precision(now.precision)}")
    _say(f"advice: {report.advice()}")
    _say(f"based on {report.basis()}")
    for note in report.notes:
        _say(f"note: {note}")
    if keep is not None:
        stderr.print(escape(f"copies kept in {shown(keep.resolve())}"))
