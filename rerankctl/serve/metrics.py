"""Server metrics in the Prometheus text exposition format (version 0.0.4), written by hand.

Counters end in ``_total``; histograms have cumulative ``_bucket{le=...}`` lines ending in
``le="+Inf"``, then ``_sum`` and ``_count``. Everything is updated from the event loop, but a
lock keeps ``render`` consistent should a thread ever record too.
"""

from __future__ import annotations

import threading
import time
from collections import deque

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
RATE_WINDOW_S = 10.0


def _fmt(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histogram:
    """A cumulative-bucket histogram."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: dict[str, str]) -> list[str]:
        out, running = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            out.append(f"{name}_bucket{_labels({**labels, 'le': _fmt(bound)})} {running}")
        out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {_fmt(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class ServerMetrics:
    """Requests, latency, batch sizes and document throughput of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_pairs = Histogram(BATCH_BUCKETS)
        self.documents_total = 0
        self.tokens_total = 0
        self.in_flight = 0
        self._recent: deque[tuple[float, int]] = deque()

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def request_finished(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            key = (route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, pairs: int) -> None:
        """One forward batch of ``pairs`` (query, document) pairs."""
        with self._lock:
            self.batch_pairs.observe(pairs)

    def observe_documents(self, documents: int, tokens: int) -> None:
        """A request's documents were scored."""
        now = time.monotonic()
        with self._lock:
            self.documents_total += documents
            self.tokens_total += tokens
            self._recent.append((now, documents))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def documents_per_second(self) -> float:
        """Documents scored per second over the last ``RATE_WINDOW_S`` seconds."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            return sum(n for _, n in self._recent) / RATE_WINDOW_S

    def render(self, gauges: dict[str, tuple[str, float]] | None = None) -> str:
        """The exposition text; ``gauges`` adds ``name -> (help, value)`` gauges (queue depth, ...)."""
        rate = self.documents_per_second()
        with self._lock:
            out = [
                "# HELP rerankctl_requests_total HTTP requests answered, by route and status code.",
                "# TYPE rerankctl_requests_total counter",
            ]
            for (route, status), n in sorted(self.requests.items()):
                out.append(f"rerankctl_requests_total{_labels({'route': route, 'status': status})} {n}")
            out += [
                "# HELP rerankctl_request_duration_seconds Time from request to response, by route.",
                "# TYPE rerankctl_request_duration_seconds histogram",
            ]
            for route, hist in sorted(self.latency.items()):
                out += hist.lines("rerankctl_request_duration_seconds", {"route": route})
            out += [
                "# HELP rerankctl_batch_pairs (query, document) pairs per forward batch.",
                "# TYPE rerankctl_batch_pairs histogram",
            ]
            out += self.batch_pairs.lines("rerankctl_batch_pairs", {})
            out += [
                "# HELP rerankctl_documents_total Documents scored.",
                "# TYPE rerankctl_documents_total counter",
                f"rerankctl_documents_total {self.documents_total}",
                "# HELP rerankctl_prompt_tokens_total Prompt tokens scored.",
                "# TYPE rerankctl_prompt_tokens_total counter",
                f"rerankctl_prompt_tokens_total {self.tokens_total}",
                f"# HELP rerankctl_documents_per_second Documents scored per second over the last {RATE_WINDOW_S:g} s.",
                "# TYPE rerankctl_documents_per_second gauge",
                f"rerankctl_documents_per_second {_fmt(rate)}",
                "# HELP rerankctl_requests_in_flight Requests being handled now.",
                "# TYPE rerankctl_requests_in_flight gauge",
                f"rerankctl_requests_in_flight {self.in_flight}",
            ]
        for name, (help_text, value) in sorted((gauges or {}).items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_fmt(value)}"]
        return "\n".join(out) + "\n"
