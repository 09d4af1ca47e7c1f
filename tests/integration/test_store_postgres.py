"""The history store's contract on a real PostgreSQL: the dialect-neutral tests of
tests/unit/test_store.py and tests/unit/test_migrations.py, each on a fresh database of the
session's server (``store_target`` is its URL instead of a SQLite file)."""

from __future__ import annotations

import pytest

from tests.unit.test_migrations import (  # noqa: F401 - collected here, on PostgreSQL
    test_a_new_store_is_created_at_head_and_matches_tables_py,
    test_a_store_of_a_newer_driftgate_is_refused_untouched,
    test_stores_opened_at_once_migrate_once,
)
from tests.unit.test_store import (  # noqa: F401 - collected here, on PostgreSQL
    store,
    test_a_warn_and_the_halt_after_it_in_one_batch_leave_the_halt_in_force,
    test_a_zombie_is_fenced_and_nothing_of_its_batch_lands,
    test_checkpoint_is_idempotent_for_events_and_signals,
    test_claim_due_notifications_claims_whole_queues,
    test_claim_pending_hands_each_row_to_one_member_per_lease,
    test_claim_takes_older_generations_and_never_goes_back,
    test_counts_add_up_and_offsets_move,
    test_enqueue_returns_only_the_new_notifications,
    test_history_filters,
    test_json_and_lifecycle_columns_round_trip,
    test_new_signal_supersedes_the_active_one_of_its_scope,
    test_outbox_marks_delivery_per_sink,
    test_state_prefix_is_exact,
    test_states_round_trip_bytes_and_drop_in_the_same_checkpoint,
    test_the_fence_covers_the_batch_offsets_and_needs_an_owner_row,
    test_two_handles_on_one_store_share_it,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture
def store_target(postgres_url: str) -> str:
    return postgres_url
