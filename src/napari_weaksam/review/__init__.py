"""Reviewing pseudo-labels: the order a person sees proposals in and their decisions (no Qt)."""

from .queue import (
    ORDERS,
    STATE_FILTERS,
    ReviewEntry,
    ReviewQueue,
    latest_proposals,
    review_rounds,
    state_name,
)

__all__ = [
    "ORDERS", "STATE_FILTERS", "ReviewEntry", "ReviewQueue", "latest_proposals",
    "review_rounds", "state_name",
]
