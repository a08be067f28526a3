"""Prometheus text format as a scraper sees it: every sample keyed by name and labels."""

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, missing: float, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), missing)
