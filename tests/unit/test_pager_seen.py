"""window.Seen, the identities a window has seen as hashes, against a set of the strings."""

from __future__ import annotations

import random

from pipelines.jambonz.pager import Seen


def test_seen_answers_as_a_set_of_the_strings_would_across_merges() -> None:
    rng = random.Random(7)
    seen, truth = Seen(), set[str]()
    for _ in range(200_000):  # past three merges of the recent set into the sorted array
        ident = f"call-{rng.randrange(400_000)}"
        assert (ident in seen) == (ident in truth)
        if rng.random() < 0.5:
            seen.add(ident)
            truth.add(ident)
        else:
            page = {f"call-{rng.randrange(400_000)}" for _ in range(rng.randrange(1, 6))}
            assert seen.isdisjoint(page) == truth.isdisjoint(page)
            seen.update(page)
            truth |= page
