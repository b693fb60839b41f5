"""Speed and ETA on a fake clock: smoothed over a window, falling when the line stalls."""

from __future__ import annotations

import pytest

from engine.download.progress import DownloadProgress, ProgressReporter, SpeedMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_is_the_average_over_the_window() -> None:
    clock = Clock()
    meter = SpeedMeter(window_s=5.0, clock=clock)
    for _ in range(10):  # 1 MB every second for 10 s
        clock.now += 1.0
        meter.add(1_000_000)
    assert meter.speed() == pytest.approx(1_000_000)
    clock.now += 1.0
    meter.add(6_000_000)  # one burst is spread over the window, not shown raw
    assert meter.speed() == pytest.approx(2_000_000)


def test_speed_falls_to_zero_when_nothing_arrives() -> None:
    clock = Clock()
    meter = SpeedMeter(window_s=5.0, clock=clock)
    clock.now += 1.0
    meter.add(1_000_000)
    clock.now += 2.5
    assert 0 < meter.speed() < 1_000_000
    clock.now += 10.0
    assert meter.speed() == 0.0


def test_reporter_throttles_and_computes_eta() -> None:
    clock = Clock()
    events: list[DownloadProgress] = []
    reporter = ProgressReporter(
        events.append, total_bytes=10_000, done_bytes=2_000, interval_s=1.0, clock=clock
    )
    clock.now += 1.0
    reporter.downloaded("a", 1_000, 8_000, 1_000)
    assert events[-1].done_bytes == 3_000
    assert events[-1].speed_bytes_per_s == pytest.approx(1_000)  # pre-existing bytes do not count
    assert events[-1].eta_s == pytest.approx(7.0)
    clock.now += 0.1
    reporter.downloaded("a", 1_500, 8_000, 500)
    assert len(events) == 1  # within the interval
    reporter.downloaded("a", 8_000, 8_000, 6_500)
    assert len(events) == 2 and events[-1].file_done == 8_000  # a finished file always reports
    reporter.report("done", force=True)
    assert events[-1].phase == "done" and events[-1].eta_s == 0.0


def test_eta_is_unknown_before_any_byte() -> None:
    events: list[DownloadProgress] = []
    reporter = ProgressReporter(events.append, total_bytes=10, done_bytes=0, clock=Clock())
    reporter.report("downloading", "a", 0, 10)
    assert events[-1].eta_s is None and events[-1].speed_bytes_per_s == 0.0
