"""SegmentedHashIndex: BruteForceIndex's hits from files on disk, safe across crashes and processes.

Stores are random hashes, and clustered ones like real pHashes (a DC bit
always set, per-video sequences of slowly drifting hashes seeded from a small
pool, so band values are shared by many rows), spread over several segments,
with removed media, before and after merges.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from fingerprints.index import BruteForceIndex, MultiIndexHashIndex, probe_cap
from fingerprints.segments import (
    LOCK,
    MANIFEST,
    IndexCorrupt,
    SegmentedHashIndex,
    band_bits,
    band_keys,
    write_segment,
)

DISTANCES = [0, 3, 8, 14, 18]
DC_BIT = np.uint64(1 << 63)
FRAMES = 50  # rows per stored video


def _random_store(rng: np.random.Generator, videos: int) -> np.ndarray:
    return rng.integers(0, 2**64 - 1, videos * FRAMES, dtype=np.uint64, endpoint=True)


def _flips(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    bits = rng.random((n, 63)) < p
    return (bits.astype(np.uint64) << np.arange(63, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def _clustered_store(rng: np.random.Generator, videos: int) -> np.ndarray:
    """Videos whose frames drift a bit at a time from one of 12 seeds, each video a few bits off its seed."""
    seeds = _flips(rng, 12, 0.5) | DC_BIT
    start = seeds[rng.integers(0, len(seeds), videos)] ^ _flips(rng, videos, rng.uniform(0.0, 0.12))
    steps = np.where(rng.random((videos, FRAMES)) < 0.4,
                     np.uint64(1) << rng.integers(0, 63, (videos, FRAMES)).astype(np.uint64), np.uint64(0))
    return (start[:, None] ^ np.bitwise_xor.accumulate(steps, axis=1)).ravel()


def _store(kind: str, seed: int, videos: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(media, times, hashes, queries): media ids increase with insertion, as the frames table hands them out."""
    rng = np.random.default_rng(seed)
    hashes = _random_store(rng, videos) if kind == "random" else _clustered_store(rng, videos)
    media = np.repeat(np.sort(rng.choice(10 * videos, videos, replace=False)), FRAMES).astype(np.int64)
    times = np.tile(np.arange(FRAMES) * 0.25, videos)
    near = hashes[rng.integers(0, len(hashes), 60)] ^ _flips(rng, 60, 0.06)
    queries = np.concatenate([near, near[:5], _random_store(rng, 1)[:20]])  # repeats, and strangers
    return media, times, hashes, queries


def _rows(hits) -> list[tuple[int, int, float, int]]:
    return list(zip(hits.query_positions.tolist(), hits.media_ids.tolist(), hits.timestamps.tolist(),
                    hits.distances.tolist()))


def _assert_same(index: SegmentedHashIndex, brute: BruteForceIndex, queries: np.ndarray,
                 distances=DISTANCES) -> None:
    assert len(index) == len(brute)
    for d in distances:
        assert _rows(index.query(queries, d)) == _rows(brute.query(queries, d)), f"max_distance={d}"
    chosen = set(list(brute.media_ids())[::7]) | {-5}
    assert _rows(index.query_media(queries, 14, chosen)) == _rows(brute.query_media(queries, 14, chosen))


def _append_in_batches(index: SegmentedHashIndex, media, times, hashes, batch: int, first_id: int = 1) -> None:
    for start in range(0, len(hashes), batch):
        stop = start + batch
        index.append(np.arange(start, min(stop, len(hashes))) + first_id, media[start:stop], times[start:stop],
                     hashes[start:stop])


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_same_hits_as_brute_force_across_segments_removals_and_merges(tmp_path, kind):
    media, times, hashes, queries = _store(kind, seed=11 if kind == "random" else 12)
    index = SegmentedHashIndex(tmp_path, auto_merge_rows=4_000)  # small merges only: several segments stay
    _append_in_batches(index, media, times, hashes, batch=1_500)
    brute = BruteForceIndex.build(media, times, hashes)
    assert len(index.segment_sizes()) >= 3
    assert index.high_water_mark == len(hashes)
    _assert_same(index, brute, queries)

    for media_id in np.unique(media)[[3, 40, 41, 200]].tolist():
        index.remove(media_id)
        brute.remove(media_id)
    _assert_same(index, brute, queries)
    assert index.media_ids() == brute.media_ids()

    assert index.merge(full=True) >= 2
    assert len(index.segment_sizes()) == 1
    assert index._view.manifest["tombstones"] == []  # the merge dropped the removed rows
    _assert_same(index, brute, queries)


def test_appends_of_any_size_keep_the_segments_few(tmp_path):
    """One append per ingested video, videos of any length: merges keep the segment count logarithmic.  With
    exact size classes one short video's segment sat between its neighbours for ever and no run of eight
    formed around it: 10^4 ingests of 60-140 frames left 2,700 segments, and each query probes every one."""
    rng = np.random.default_rng(4)
    lengths = rng.integers(5, 400, 1_500)
    hashes = _random_store(rng, int(lengths.sum()) // FRAMES + 1)[:int(lengths.sum())]
    media = np.repeat(np.arange(1, len(lengths) + 1), lengths).astype(np.int64)
    times = np.concatenate([np.arange(n) * 0.25 for n in lengths])
    index = SegmentedHashIndex(tmp_path)
    first = 0
    for n in lengths:
        index.append(np.arange(first, first + n) + 1, media[first:first + n], times[first:first + n],
                     hashes[first:first + n])
        first += n
    sizes = index.segment_sizes()
    assert sum(sizes) == len(hashes)
    # at most merge_factor - 1 segments a level, and a level is a factor of 8: about 4 levels here
    assert len(sizes) <= 4 * 8, sorted(sizes)
    queries = hashes[rng.integers(0, len(hashes), 40)] ^ _flips(rng, 40, 0.05)
    brute = BruteForceIndex.build(media, times, hashes)
    _assert_same(index, brute, queries, distances=[0, 8, 14])

    # the daemon's compaction (`[daemon] index_max_segments`): the newest segments, as few as needed, become one
    assert len(sizes) > 4, sizes
    cap, index.max_segment_rows = index.max_segment_rows, sum(sizes[2:]) - 1
    assert index.merge(max_segments=3) == len(sizes) - 3  # over the size cap: the run starts one later
    assert index.segment_sizes() == sizes[:3] + [sum(sizes[3:])]
    index.max_segment_rows = cap
    assert index.merge(max_segments=3) == 2
    assert index.segment_sizes() == sizes[:2] + [sum(sizes[2:])]
    assert index.merge(max_segments=3) == 0
    _assert_same(index, brute, queries, distances=[0, 8, 14])


def test_media_stored_out_of_id_order_come_back_by_position_then_media(tmp_path):
    media, times, hashes, queries = _store("clustered", seed=21, videos=120)
    shuffled = np.random.default_rng(0).permutation(np.unique(media))
    media = np.repeat(shuffled, FRAMES)  # later batches hold smaller media ids, and one media spans two batches
    index = SegmentedHashIndex(tmp_path)
    _append_in_batches(index, media, times, hashes, batch=1_025)
    brute = BruteForceIndex.build(media, times, hashes)
    for d in (0, 8, 14):
        expected = sorted(_rows(brute.query(queries, d)), key=lambda hit: hit[:2])  # stable: then insertion
        assert _rows(index.query(queries, d)) == expected
    chosen = set(shuffled[::5].tolist())
    expected = sorted(_rows(brute.query_media(queries, 14, chosen)), key=lambda hit: hit[:2])
    assert _rows(index.query_media(queries, 14, chosen)) == expected


@pytest.mark.parametrize("bands,layout", [(3, "contiguous"), (4, "interleaved"), (5, "interleaved")])
def test_other_band_layouts_are_exact_too(tmp_path, bands, layout):
    media, times, hashes, queries = _store("clustered", seed=bands, videos=150)
    index = SegmentedHashIndex(tmp_path, bands=bands, layout=layout)
    _append_in_batches(index, media, times, hashes, batch=2_500)
    _assert_same(index, BruteForceIndex.build(media, times, hashes), queries, distances=[0, 8, 14])


@pytest.mark.parametrize("kind", ["segmented", "in memory"])
def test_complete_to_finds_every_pair_that_near_and_only_true_pairs_beyond(tmp_path, kind):
    media, times, hashes, queries = _store("clustered", seed=41, videos=800)  # 40,000 rows: no brute-force fallback
    brute = BruteForceIndex.build(media, times, hashes)
    if kind == "segmented":
        index = SegmentedHashIndex(tmp_path)
        _append_in_batches(index, media, times, hashes, batch=20_000)
    else:
        index = MultiIndexHashIndex.build(media, times, hashes)
    full = _rows(brute.query(queries, 14))
    part = _rows(index.query(queries, 14, complete_to=11))
    kept = set(part)
    assert part == [hit for hit in full if hit in kept]  # true pairs with their distances, in the exact order
    assert {hit for hit in full if hit[3] <= 11} <= kept  # every pair within 11 bits
    assert len(part) < len(full)  # and some further ones skipped: that is the saving
    assert probe_cap(3, 14, 11) == 3 and probe_cap(4, 14, 11) == 2 and probe_cap(3, 14, 14) is None
    assert _rows(index.query(queries, 14, complete_to=14)) == full
    assert _rows(index.query(queries, 8, complete_to=11)) == _rows(brute.query(queries, 8))


def test_covered_moves_the_mark_past_rows_without_this_column(tmp_path):
    media, times, hashes, _ = _store("clustered", seed=51, videos=10)
    index = SegmentedHashIndex(tmp_path)
    assert index.append(np.arange(1, 101), media[:100], times[:100], hashes[:100], covered=250) == 100
    assert index.high_water_mark == 250  # rows 101-250 had no hash of this column
    assert index.append(np.zeros(0, dtype=np.int64), media[:0], times[:0], hashes[:0], covered=400) == 0
    assert SegmentedHashIndex.open(tmp_path).high_water_mark == 400  # published, for other processes too
    assert index.append(np.arange(300, 320), media[100:120], times[100:120], hashes[100:120]) == 0  # covered
    assert index.append(np.arange(401, 411), media[100:110], times[100:110], hashes[100:110], covered=405) == 10
    assert index.high_water_mark == 410 and len(index) == 110


def test_band_keys_take_each_bit_once_and_are_xor_linear():
    for bands in (3, 4, 5):
        for layout in ("interleaved", "contiguous"):
            bits = band_bits(bands, layout)
            assert sorted(b for band in bits for b in band) == list(range(64))
    rng = np.random.default_rng(0)
    a, b = _random_store(rng, 1)[:20], _random_store(rng, 1)[:20]
    for band in range(3):
        key_a, key_b = (band_keys(h, 3, "interleaved", band, 17) for h in (a, b))
        assert (band_keys(a ^ b, 3, "interleaved", band, 17) == key_a ^ key_b).all()
        assert key_a.max() < 1 << 17


def test_a_media_removed_then_stored_again_is_found_again(tmp_path):
    media, times, hashes, _ = _store("random", seed=3, videos=40)
    index = SegmentedHashIndex(tmp_path)
    index.append(np.arange(len(hashes)) + 1, media, times, hashes)
    target = int(media[0])
    index.remove(target)
    assert target not in index.media_ids()
    again = media == target
    index.append(np.arange(again.sum()) + len(hashes) + 1, media[again], times[again] + 100.0, hashes[again])
    assert len(index) == len(hashes)
    hits = index.query_media(hashes[again][:3], 0, {target})
    assert (hits.timestamps >= 100.0).all() and len(hits) >= 3


def test_a_merge_in_a_thread_while_queries_run(tmp_path):
    media, times, hashes, queries = _store("random", seed=13, videos=120)
    index = SegmentedHashIndex(tmp_path, auto_merge_rows=0)  # appends leave every merge to merge()
    _append_in_batches(index, media, times, hashes, batch=500)
    assert len(index.segment_sizes()) == 12
    expected = _rows(BruteForceIndex.build(media, times, hashes).query(queries, 8))
    merging = threading.Thread(target=index.merge, kwargs={"full": True})
    merging.start()
    while merging.is_alive():
        assert _rows(index.query(queries, 8)) == expected
    merging.join()
    assert index.segment_sizes() == [len(hashes)]
    assert _rows(index.query(queries, 8)) == expected


def test_rebuild_streams_chunks_and_readers_keep_their_view(tmp_path):
    media, times, hashes, queries = _store("clustered", seed=5)
    reader_before = SegmentedHashIndex(tmp_path)
    writer = SegmentedHashIndex(tmp_path, segment_rows=2_000, merge_factor=3, max_segment_rows=7_000)
    _append_in_batches(writer, media[:5000], times[:5000], hashes[:5000], batch=5000)
    reader_before.refresh()
    old_hits = _rows(reader_before.query(queries, 8))

    ids = np.arange(len(hashes)) * 3 + 10
    chunks = ((ids[s:s + 777], media[s:s + 777], times[s:s + 777], hashes[s:s + 777])
              for s in range(0, len(hashes), 777))
    assert writer.rebuild(chunks) == len(hashes)
    assert writer.high_water_mark == ids[-1]
    assert all(rows <= 7_000 for rows in writer.segment_sizes()) and len(writer.segment_sizes()) >= 2
    # the old files are deleted, but the reader that maps them still answers from them
    assert _rows(reader_before.query(queries, 8)) == old_hits
    assert reader_before.refresh()
    _assert_same(reader_before, BruteForceIndex.build(media, times, hashes), queries, distances=[0, 8, 14])


def test_another_process_appends_and_refresh_sees_it(tmp_path):
    media, times, hashes, queries = _store("random", seed=8, videos=60)
    reader = SegmentedHashIndex(tmp_path)
    assert len(reader) == 0 and reader.high_water_mark == -1
    process = multiprocessing.get_context("fork").Process(
        target=_append_worker, args=(str(tmp_path), np.arange(len(hashes)) + 1, media, times, hashes, 1000))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert reader.refresh() and not reader.refresh()
    assert len(reader) == len(hashes) and reader.high_water_mark == len(hashes)
    _assert_same(reader, BruteForceIndex.build(media, times, hashes), queries, distances=[8])


def _append_worker(directory: str, row_ids, media, times, hashes, batch: int) -> None:
    index = SegmentedHashIndex(directory)
    for s in range(0, len(hashes), batch):
        index.append(row_ids[s:s + batch], media[s:s + batch], times[s:s + batch], hashes[s:s + batch])


def _catch_up_worker(directory: str, source: str, seed: int, barrier) -> None:
    """Catch up from a shared source table the way processes catch up from SQL: rows above the mark."""
    table = np.load(source)
    rng = np.random.default_rng(seed)
    index = SegmentedHashIndex(directory)
    barrier.wait()
    while index.high_water_mark < table[0, -1]:
        index.refresh()
        fresh = np.flatnonzero(table[0] > index.high_water_mark)[:int(rng.integers(300, 1200))]
        index.append(table[0, fresh], table[1, fresh], table[2, fresh].view(np.float64), table[3, fresh])


def _add_worker(directory: str, media_ids: list[int], barrier) -> None:
    index = SegmentedHashIndex(directory)
    barrier.wait()
    for media_id in media_ids:
        index.add(media_id, np.arange(FRAMES) * 0.5, np.arange(FRAMES, dtype=np.uint64) + np.uint64(media_id << 20))


def test_two_processes_writing_at_once_both_land_and_the_mark_is_right(tmp_path):
    context = multiprocessing.get_context("fork")
    # two processes catching up from one source table: every row once, the mark at the last id
    media, times, hashes, queries = _store("clustered", seed=9, videos=100)
    ids = np.arange(len(hashes)) * 2 + 1
    source = tmp_path / "source.npy"
    np.save(source, np.stack([ids, media, times.view(np.int64), hashes.view(np.int64)]))
    rows_barrier, adds_barrier = context.Barrier(2), context.Barrier(2)
    workers = [context.Process(target=_catch_up_worker, args=(str(tmp_path / "rows"), str(source), s, rows_barrier))
               for s in (1, 2)]
    # and two adding media without row ids: every media of both lands
    workers += [context.Process(target=_add_worker, args=(str(tmp_path / "adds"), ids, adds_barrier))
                for ids in (list(range(1, 16)), list(range(101, 116)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]

    index = SegmentedHashIndex(tmp_path / "rows")
    assert index.high_water_mark == ids[-1]
    assert index.check(len(hashes), int(ids[-1])) == []
    _assert_same(index, BruteForceIndex.build(media, times, hashes), queries, distances=[0, 8, 14])
    adds = SegmentedHashIndex(tmp_path / "adds")
    assert adds.media_ids() == set(range(1, 16)) | set(range(101, 116))
    assert len(adds) == 30 * FRAMES and len(adds.segment_sizes()) < 30  # small segments were merged


def _die_before_publishing(directory: str, media, times, hashes) -> None:
    index = SegmentedHashIndex(directory)

    def killed(*args, **kwargs):
        os._exit(9)  # the segment file is written; the manifest is not swapped

    index._publish = killed
    index.append(np.arange(len(hashes)) + 10_000, media, times, hashes)


def test_a_writer_killed_before_the_manifest_swap_leaves_a_loadable_index(tmp_path):
    media, times, hashes, queries = _store("random", seed=4, videos=60)
    index = SegmentedHashIndex(tmp_path)
    index.append(np.arange(1500) + 1, media[:1500], times[:1500], hashes[:1500])
    process = multiprocessing.get_context("fork").Process(
        target=_die_before_publishing, args=(str(tmp_path), media[1500:], times[1500:], hashes[1500:]))
    process.start()
    process.join(60)
    assert process.exitcode == 9
    listed = {e["file"] for e in index._view.manifest["segments"]}
    orphans = [p for p in tmp_path.glob("seg-*") if p.name not in listed]
    assert orphans  # the dead writer's segment
    (tmp_path / f"{MANIFEST}.tmp-999").write_text("{half a manif")
    write_segment(tmp_path, 777, media[:10], times[:10], hashes[:10], None, 3, "interleaved")
    (tmp_path / "seg-000000778.seg.tmp-999").write_bytes(b"PVSEG001 and then nothing")

    reopened = SegmentedHashIndex.open(tmp_path)
    assert reopened.check(1500, 1500) == []
    _assert_same(reopened, BruteForceIndex.build(media[:1500], times[:1500], hashes[:1500]), queries,
                 distances=[0, 8])
    reopened.append(np.arange(1500, len(hashes)) + 1, media[1500:], times[1500:], hashes[1500:])
    left = {p.name for p in tmp_path.iterdir()} - {e["file"] for e in reopened._view.manifest["segments"]}
    assert left == {MANIFEST, LOCK}
    _assert_same(reopened, BruteForceIndex.build(media, times, hashes), queries, distances=[8])


def test_corrupt_or_missing_files_are_detected(tmp_path):
    media, times, hashes, _ = _store("random", seed=6, videos=60)
    index = SegmentedHashIndex(tmp_path)
    _append_in_batches(index, media, times, hashes, batch=1000)
    entries = index._view.manifest["segments"]
    first, second = (tmp_path / entries[0]["file"]), (tmp_path / entries[1]["file"])
    index.close()
    earlier = SegmentedHashIndex.open(tmp_path)  # opened before the damage below
    assert earlier.check(len(hashes), len(hashes), deep=True) == []

    # a flipped byte in the data: the deep check finds it
    with open(first, "r+b") as f:
        f.seek(first.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x55]))
    problems = SegmentedHashIndex.open(tmp_path).check(deep=True)
    assert any(first.name in p and "checksum" in p for p in problems)

    # a truncated file, or a header that does not match: open refuses, check says so
    with open(second, "r+b") as f:
        f.truncate(second.stat().st_size - 100)
    with pytest.raises(IndexCorrupt, match=second.name):
        SegmentedHashIndex.open(tmp_path)
    assert any(second.name in p for p in earlier.check())

    # a missing file, and an unreadable manifest
    second.unlink()
    with pytest.raises(IndexCorrupt, match="missing"):
        SegmentedHashIndex.open(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        SegmentedHashIndex.open(tmp_path)

    # rebuilding replaces whatever is there
    rebuilt = SegmentedHashIndex.build(tmp_path, [(np.arange(len(hashes)) + 1, media, times, hashes)])
    assert rebuilt.check(len(hashes), len(hashes), deep=True) == []
    assert SegmentedHashIndex.open(tmp_path).check(len(hashes), len(hashes)) == []


def _mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def _bytes_read() -> int:
    """Bytes this process has read by system calls so far (/proc/self/io)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_open_maps_the_segments_without_reading_them(tmp_path):
    seen = {}
    for videos in (40, 4000):
        directory = tmp_path / str(videos)
        rng = np.random.default_rng(videos)
        hashes = _random_store(rng, videos)
        media = np.repeat(np.arange(videos), FRAMES)
        SegmentedHashIndex.build(directory, [(np.arange(len(hashes)) + 1, media, np.zeros(len(hashes)), hashes)])
        gc.collect()
        (segment_file,) = directory.glob("seg-*.seg")
        before = _bytes_read()
        index = SegmentedHashIndex.open(directory)
        assert len(index) == len(hashes) and index.high_water_mark == len(hashes)
        seen[videos] = (_bytes_read() - before, _mapped_kb(segment_file))
        index.query(hashes[:1], 2)
        assert _mapped_kb(segment_file) > 0  # smaps does see the mapping once a query touches it
        del index
        gc.collect()
    # a few kB read (manifest, header, footer; longer numbers in the bigger one's), and no page of the data mapped
    assert max(seen[40][0], seen[4000][0]) < 8 * 1024 and abs(seen[40][0] - seen[4000][0]) < 256, seen
    assert seen[40][1] == seen[4000][1] == 0, seen


def test_bad_input_gets_a_clear_error(tmp_path):
    index = SegmentedHashIndex(tmp_path)
    with pytest.raises(ValueError, match="one value per hash"):
        index.append(np.arange(3), np.zeros(2, dtype=np.int64), np.zeros(3), np.zeros(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="64-bit integers"):
        index.append(np.arange(2), np.zeros(2, dtype=np.int64), np.zeros(2), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="layout"):
        SegmentedHashIndex(tmp_path / "x", layout="diagonal")
    with pytest.raises(NotImplementedError, match="copy the directory"):
        index.serialize()
    # signed hashes, as the database stores them, are the same bits
    index.append(np.array([1]), np.array([7]), np.array([0.0]), np.array([-1], dtype=np.int64))
    assert index.query(np.array([2**64 - 1], dtype=np.uint64), 0).media_ids.tolist() == [7]
    assert index.append(np.array([1]), np.array([8]), np.array([0.0]), np.array([5])) == 0  # below the mark
