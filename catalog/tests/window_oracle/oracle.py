"""Independent oracle for maintenance-window start instants (used by window_oracle.rs).

Reads a JSON list of cases from stdin:
  {"tz": "Europe/Berlin", "minutes": [30], "hours": [2], "dates": ["2026-03-29", ...],
   "duration_minutes": 240}
and prints, per case:
  {"from": UTC of the first date's midnight, "until": UTC of the midnight after the
   last date, "windows": [[start, end], ...], "offset_changes": bool}

Method, sharing nothing with the Rust code: walk every wall-clock minute of each
local date, keep those whose hour and minute are listed, map each to UTC with
zoneinfo using fold=0 (the first of two on fall-back), detect non-existent times
(spring-forward gap) by round-tripping UTC -> local, and move those forward minute
by minute to the first wall-clock time that exists. Starts mapping to an instant
already taken are dropped. End = start + duration, added in UTC (elapsed time).
"""
import json
import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo


def opens_at(tz, wall):
    t = wall
    for _ in range(48 * 60 + 1):
        utc = t.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
        if utc.astimezone(tz).replace(tzinfo=None) == t:
            return utc
        t += timedelta(minutes=1)
    raise SystemExit(f"no valid wall-clock time after {wall} in {tz}")


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(case):
    tz = ZoneInfo(case["tz"])
    dates = [date.fromisoformat(d) for d in case["dates"]]
    minutes, hours = set(case["minutes"]), set(case["hours"])
    duration = timedelta(minutes=case["duration_minutes"])
    windows = []
    for d in dates:
        midnight = datetime(d.year, d.month, d.day)
        for i in range(24 * 60):
            wall = midnight + timedelta(minutes=i)
            if wall.hour in hours and wall.minute in minutes:
                start = opens_at(tz, wall)
                if not windows or start > windows[-1][0]:
                    windows.append((start, start + duration))
    first, last = dates[0], dates[-1] + timedelta(days=1)
    noon = lambda d: datetime(d.year, d.month, d.day, 12, tzinfo=tz).utcoffset()
    return {
        "from": fmt(opens_at(tz, datetime(first.year, first.month, first.day))),
        "until": fmt(opens_at(tz, datetime(last.year, last.month, last.day))),
        "windows": [[fmt(s), fmt(e)] for s, e in windows],
        "offset_changes": noon(dates[0]) != noon(dates[-1]),
    }


print(json.dumps([run(c) for c in json.load(sys.stdin)]))
