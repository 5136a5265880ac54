"""storage.lookup: one NotAllowed and one Stale for all of storage."""

from __future__ import annotations

from storage import lookup, mentoring, nominations, review_queries, trainings


def test_refusals_are_one_type_each() -> None:
    # The chat layer maps each refusal once, whichever module raised it.
    assert nominations.NotAllowed is lookup.NotAllowed
    assert mentoring.Stale is lookup.Stale
    assert review_queries.Stale is lookup.Stale
    # An audience that changed is still a refusal.
    assert issubclass(trainings.AudienceChanged, lookup.NotAllowed)
