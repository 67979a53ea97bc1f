"""Feature specification of the example ``customer-churn`` model (raw table ``customer_activity``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.features.spec import Feature, FeatureSpec

PLANS = ("basic", "standard", "premium")


def transform(record: Mapping[str, Any]) -> dict[str, Any]:
    """Raw activity record → feature values (pure; used for training and serving alike)."""
    sessions = float(record["sessions"])
    minutes = float(record["minutes_active"])
    plan = str(record["plan"])
    return {
        "sessions": int(sessions),
        "minutes_per_session": round(minutes / sessions, 6) if sessions > 0 else 0.0,
        "support_tickets": int(record["support_tickets"]),
        "monthly_spend": float(record["monthly_spend"]),
        "plan_tier": PLANS.index(plan) if plan in PLANS else -1,
    }


SPEC = FeatureSpec(
    name="customer-churn",
    version=1,
    record_identifier="customer_id",
    event_time="event_time",
    features=(
        Feature("sessions", "Integral", "Sessions in the day"),
        Feature("minutes_per_session", "Fractional", "Average active minutes per session"),
        Feature("support_tickets", "Integral", "Support tickets opened in the day"),
        Feature("monthly_spend", "Fractional", "Current monthly spend"),
        Feature("plan_tier", "Integral", "0 basic, 1 standard, 2 premium, -1 unknown"),
    ),
    transform=transform,
    target="churned",
    description="Daily churn-risk features per customer",
)
