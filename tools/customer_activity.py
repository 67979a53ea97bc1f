"""The ``customer_activity`` table as the drill and the tests load it into the curated zone.

One declaration of its Glue columns (the shape :func:`pipelines.local_run.synthetic_customer_activity` generates
and the stacks' ``catalog.tables`` entry declares) and one way to turn the seeded records into a curated load,
so the drill and every test writing the table through :func:`mlops.ingestion.write_curated_dataset` agree on it.
A product tool may use it; tests import it from here (tools never import ``tests/``).
"""

from __future__ import annotations

import pandas as pd

from infra.catalog import ColumnSpec, TableSpec
from pipelines.local_run import synthetic_customer_activity

TABLE_NAME = "customer_activity"


def customer_activity_table(name: str = TABLE_NAME) -> TableSpec:
    """The curated table's declaration: the synthetic records' columns, partitioned by ``dt`` (the event date)."""
    return TableSpec(
        name=name,
        zone="curated",
        columns=(
            ColumnSpec(name="customer_id", type="string"),
            ColumnSpec(name="event_time", type="timestamp"),
            ColumnSpec(name="sessions", type="int"),
            ColumnSpec(name="minutes_active", type="double"),
            ColumnSpec(name="support_tickets", type="int"),
            ColumnSpec(name="plan", type="string"),
            ColumnSpec(name="monthly_spend", type="double"),
            ColumnSpec(name="churned", type="int"),
        ),
        partition_keys=(ColumnSpec(name="dt", type="string"),),
    )


def curated_customer_activity(customers: int, days: int = 3) -> pd.DataFrame:
    """Seeded synthetic records as a curated load: ``event_time`` a (naive, UTC) timestamp and the ``dt`` partition
    key beside it."""
    frame = synthetic_customer_activity(customers=customers, days=days)
    frame["event_time"] = pd.to_datetime(frame["event_time"]).dt.tz_localize(None)
    frame["dt"] = frame["event_time"].dt.strftime("%Y-%m-%d")
    return frame
