"""The in-memory Feature Store runtime client, now in :mod:`tools.featurestore_emulator` (the drill uses it too).

Re-exported here so tests and benchmarks keep importing ``tests.support.featurestore_fake``.
"""

from tools.featurestore_emulator import (
    STORES,
    FakeFeatureGroup,
    FeatureStoreFake,
    PutCall,
    add_described_group,
    client_error,
    event_instant,
)

__all__ = [
    "STORES",
    "FakeFeatureGroup",
    "FeatureStoreFake",
    "PutCall",
    "add_described_group",
    "client_error",
    "event_instant",
]
