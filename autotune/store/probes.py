"""Latency probes stored per hardware fingerprint, shared by every worker and study."""

from __future__ import annotations

from autotune.compression.config import LatencyResult
from autotune.errors import StorageError
from autotune.store.db import session_scope
from autotune.store.models import LatencyProbeRecord
from autotune.store.retry import retrying


class SqlProbeCache:
    """The pipeline's probe cache (``compression.reuse.ProbeCache``) in the database."""

    def __init__(self, url: str, hardware_id: str) -> None:
        self.url = url
        self.hardware_id = hardware_id

    @retrying
    def get(self, key: str) -> LatencyResult | None:
        with session_scope(self.url) as session:
            row = LatencyProbeRecord.find(session, self.hardware_id, key)
            if row is None:
                return None
            return LatencyResult(
                row.median_ms,
                row.median_ms,
                0.0,
                row.reference_ms,
                row.reference_ms / row.median_ms,
            )

    @retrying
    def put(self, key: str, result: LatencyResult) -> None:
        try:
            with session_scope(self.url) as session:
                if LatencyProbeRecord.find(session, self.hardware_id, key) is None:
                    session.add(
                        LatencyProbeRecord(
                            hardware_id=self.hardware_id,
                            key=key,
                            median_ms=result.median_ms,
                            reference_ms=result.reference_median_ms,
                        )
                    )
        except StorageError as exc:
            if exc.transient:
                raise
            # otherwise another worker stored the same probe first
