"""The log a per-video signal index loads from: appends, tombstones, processes that share it, damage."""

from __future__ import annotations

import pytest

from fingerprints.signal_log import FILE, LogCorrupt, SignalLog, remove_from_logs


class Consumer:
    """What a signal index does with the entries: the values by media, and how often it started again."""

    def __init__(self) -> None:
        self.values: dict[int, bytes] = {}
        self.resets = 0

    def reset(self) -> None:
        self.values, self.resets = {}, self.resets + 1

    def entry(self, entry) -> None:
        _, media_id, value = entry
        if value is None:
            self.values.pop(media_id, None)
        else:
            self.values[media_id] = value

    def sync(self, log: SignalLog, rows=None) -> int:
        return log.sync(self.reset, self.entry, None if rows is None else (lambda after: [r for r in rows
                                                                                            if r[0] > after]))


def test_appends_only_rows_above_the_mark_and_other_processes_see_them(tmp_path):
    rows = [(3, 10, b"a" * 100), (7, 11, b""), (9, 12, bytes(range(256)))]
    writer, reader = SignalLog(tmp_path, "cuts", 1), SignalLog(tmp_path, "cuts", 1)
    mine, theirs = Consumer(), Consumer()
    assert mine.sync(writer, rows[:2]) == 2 and writer.high_water_mark == 7
    assert mine.sync(writer, rows) == 1  # only row 9 is new
    theirs.sync(reader)
    assert theirs.values == mine.values == {10: b"a" * 100, 11: b"", 12: bytes(range(256))}
    writer.remove(11, mine.entry)
    theirs.sync(reader)  # the tombstone reaches the other reader
    assert theirs.values == mine.values and 11 not in theirs.values and theirs.resets == 1
    fresh = Consumer()
    fresh.sync(SignalLog(tmp_path, "cuts", 1))
    assert fresh.values == mine.values


def test_a_torn_last_record_is_not_read_and_the_next_writer_cuts_it_off(tmp_path):
    log, consumer = SignalLog(tmp_path, "cuts", 1), Consumer()
    consumer.sync(log, [(1, 5, b"x" * 50)])
    with open(tmp_path / FILE, "ab") as f:
        f.write(b"\x02\x00\x00")  # a writer died mid-record
    other = Consumer()
    other.sync(SignalLog(tmp_path, "cuts", 1))
    assert other.values == {5: b"x" * 50}
    consumer.sync(log, [(1, 5, b"x" * 50), (2, 6, b"y")])
    again = Consumer()
    again.sync(SignalLog(tmp_path, "cuts", 1))
    assert again.values == {5: b"x" * 50, 6: b"y"}


def test_damage_and_another_kind_are_refused_and_a_rebuild_swaps_in_a_new_file(tmp_path):
    log, consumer = SignalLog(tmp_path, "cuts", 1), Consumer()
    consumer.sync(log, [(1, 5, b"x" * 50)])
    reader, reading = SignalLog(tmp_path, "cuts", 1), Consumer()
    reading.sync(reader)
    with pytest.raises(LogCorrupt, match="holds"):
        Consumer().sync(SignalLog(tmp_path, "cuts", 2))
    data = bytearray((tmp_path / FILE).read_bytes())
    data[-1] ^= 1
    (tmp_path / FILE).write_bytes(bytes(data))
    with pytest.raises(LogCorrupt, match="checksum"):
        Consumer().sync(SignalLog(tmp_path, "cuts", 1))
    rebuilt = Consumer()
    log.rebuild([(1, 5, b"x" * 50)], rebuilt.reset, rebuilt.entry)
    assert rebuilt.values == {5: b"x" * 50}
    reading.sync(reader)  # another reader notices the new file and reads it from the start
    assert reading.values == {5: b"x" * 50} and reading.resets == 2


def test_a_deleted_media_is_hidden_in_logs_no_longer_in_use(tmp_path):
    old, damaged = tmp_path / "old", tmp_path / "damaged"
    Consumer().sync(SignalLog(old, "cuts", 1), [(1, 5, b"x")])
    damaged.mkdir()
    (damaged / FILE).write_bytes(b"rubbish")
    remove_from_logs([old, damaged], 5)
    consumer = Consumer()
    consumer.sync(SignalLog(old, "cuts", 1))
    assert consumer.values == {} and not (damaged / FILE).exists()
