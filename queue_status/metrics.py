"""The `messaging_queue_depth` gauge of `/metrics`, read at scrape time (`queue_depths`)."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from .selectors import queue_depths


class QueueDepthCollector:
    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "messaging_queue_depth", "Tasks waiting in the broker queue.", labels=["channel"]
        )
        for channel, pending in queue_depths().items():
            depth.add_metric([channel], pending)
        yield depth
