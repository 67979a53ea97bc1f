"""Streaming ingestion layer: per catalog table, a KMS-encrypted Kinesis stream delivered by Firehose into the raw
zone as Parquet, and, per model with an online store reading that table, the consumer Lambda that keeps the online
features current.

``settings`` (stack key ``catalog.tables[].streaming`` and the checks that need the whole config), ``component``
(:class:`~infra.streaming.component.StreamingTable`), ``iam`` (its roles' statements) and ``alarms``.

Nothing is imported here: :mod:`infra.catalog` imports the settings, and the component imports the catalog.
"""
