"""The Feature Store runtime's HTTP API on loopback, now in :mod:`tools.featurestore_emulator` (the drill uses it).

Re-exported here so tests and benchmarks keep importing ``tests.support.featurestore_http``.
"""

from tools.featurestore_emulator import PREFIX, STATS, FeatureStoreFake, FeatureStoreHttp, serving

__all__ = ["PREFIX", "STATS", "FeatureStoreFake", "FeatureStoreHttp", "serving"]
