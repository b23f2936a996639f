"""[limits]: validated settings with one-line errors, and the decoder's resource limits on real ffmpeg."""

from __future__ import annotations

import subprocess

import pytest

from fingerprints.decode import DecodeLimits, VideoDecodeError, run_limited, stream_info
from monitor.config import ConfigError, load_config
from monitor.limits import Limits, parse_limits, parse_size


def test_defaults_and_sizes():
    assert parse_limits({}) == Limits()
    assert [parse_size(v) for v in ("10M", "2G", "512KiB", "1.5k", 300)] == [10 * 2**20, 2 * 2**30, 512 * 2**10,
                                                                            1536, 300]
    limits = parse_limits({"max_download_bytes": "64M", "item_deadline_seconds": 30, "max_redirects": 0})
    assert (limits.max_download_bytes, limits.item_deadline_seconds, limits.max_redirects) == (64 * 2**20, 30.0, 0)


@pytest.mark.parametrize("key, value, says", [
    ("max_pixels", -5, "max_pixels must be a whole number"),
    ("max_pixels", 1.5, "max_pixels must be a whole number"),
    ("max_frames", "many", "max_frames must be a whole number"),
    ("item_deadline_seconds", True, "item_deadline_seconds must be seconds"),
    ("item_deadline_seconds", float("nan"), "item_deadline_seconds must be seconds"),
    ("max_download_bytes", "2 gigs", "max_download_bytes must be a size"),
    ("decode_memory_mb", 100, "at least 512"),
    ("max_bytes", 5, "unknown setting 'limits.max_bytes'"),
])
def test_bad_values_are_refused_in_one_line(tmp_path, key, value, says):
    config = tmp_path / "config.toml"
    config.write_text(f"[limits]\n{key} = {value if not isinstance(value, str) else repr(value)}\n"
                      .replace("True", "true").replace("nan", "nan"))
    with pytest.raises(ConfigError) as caught:
        load_config(config, tmp_path)
    message = str(caught.value)
    assert says in message and "\n" not in message  # one line (naming the file it comes from)


def test_config_limits(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[limits]\nmax_duration_seconds = 600\nmax_page_bytes = "1M"\n')
    limits = load_config(config, tmp_path).limits
    assert (limits.max_duration_seconds, limits.max_page_bytes, limits.max_pixels) == (600, 2**20, Limits().max_pixels)
    assert limits.decode == DecodeLimits(cpu_seconds=3600, memory_mb=2048, max_seconds=600,
                                         max_pixels=Limits().max_pixels)


ENDLESS = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-f", "null", "-"]


def test_cpu_limit_stops_a_decoder_that_would_run_for_ever():
    limits = DecodeLimits(cpu_seconds=1)
    done = run_limited(ENDLESS, limits, timeout=120)
    assert "CPU seconds" in limits.exceeded(done.returncode, done.stderr)


def test_memory_limit_stops_the_decoder(tiny_clips):
    limits = DecodeLimits(memory_mb=16)  # not even ffmpeg's own code fits
    with pytest.raises(VideoDecodeError) as caught:
        stream_info(tiny_clips["testsrc2"], limits=limits)
    assert caught.value.kind == "decoder-limit"
    done = run_limited(["ffprobe", "-v", "error", str(tiny_clips["testsrc2"])], DecodeLimits(memory_mb=2048), 60)
    assert done.returncode == 0  # the default leaves room


def test_a_decode_that_runs_too_long_is_cut_off(tiny_clips):
    from fingerprints.decode import iter_gray_frames

    with pytest.raises(VideoDecodeError) as caught:  # a 2 s clip, allowed 1 s (a file that lied about its length)
        for _ in iter_gray_frames(tiny_clips["testsrc2"], 8, 64, limits=DecodeLimits(max_seconds=1)):
            pass
    assert caught.value.kind == "too-long"
    assert not subprocess.run(["pgrep", "-f", str(tiny_clips["testsrc2"])], capture_output=True).stdout
