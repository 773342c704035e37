"""World size profiles: `smoke` (tests, well under a second) and `default` (what `dvc repro` builds).

`default` holds about 4,500 known facts: enough for >= 3,000 ZsRE edit records, and small enough that
a 4-layer, 128-256-wide LM memorises the facts on 2 CPU cores in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class WorldSize:
    """Counts of every kind of thing the generator makes, plus the dataset split sizes."""

    continents: int
    countries: int
    cities: int
    universities: int
    companies: int
    emerging_companies: int
    awards: int
    works: int
    people: int
    father_pairs: int
    topics: tuple[int, int, int]  # train, val, test
    trivia_per_answer: int  # per split (train K_F, test success)
    trivia_retain: tuple[int, int]  # train K_R, test locality
    nq: int
    filler: int
    # dataset sizes (records); a split takes what is available when the world is smaller
    recent: tuple[int, int]
    zsre: tuple[int, int, int]  # mend train, mend eval (= KnowEdit ZsRE test), edit
    wikibio: tuple[int, int]
    counterfact_kn: tuple[int, int]  # KnowEdit wiki_counterfact train, test
    counterfact_rome: int
    counterfact_easyedit: tuple[int, int, int]  # EasyEdit request form: train, val, edit
    wise_hallucination: tuple[int, int]  # edit, train
    wise_temporal: tuple[int, int]


PROFILES: dict[str, WorldSize] = {
    "smoke": WorldSize(
        continents=3, countries=4, cities=12, universities=3, companies=5, emerging_companies=3, awards=3,
        works=8, people=26, father_pairs=3, topics=(4, 2, 3), trivia_per_answer=2, trivia_retain=(6, 4),
        nq=24, filler=8, recent=(6, 6), zsre=(40, 30, 60), wikibio=(4, 4), counterfact_kn=(30, 30),
        counterfact_rome=40, counterfact_easyedit=(20, 10, 10), wise_hallucination=(5, 5), wise_temporal=(2, 1),
    ),
    "default": WorldSize(
        continents=5, countries=20, cities=100, universities=30, companies=60, emerging_companies=40,
        awards=12, works=180, people=500, father_pairs=70, topics=(200, 40, 60), trivia_per_answer=16,
        trivia_retain=(200, 80), nq=1600, filler=300, recent=(120, 220), zsre=(800, 500, 3000),
        wikibio=(120, 120), counterfact_kn=(600, 400), counterfact_rome=1500, counterfact_easyedit=(1000, 200, 500), wise_hallucination=(200, 140),
        wise_temporal=(20, 20),
    ),
}


def world_size(profile: str) -> WorldSize:
    """The size profile named `profile` (ValueError listing the known names otherwise)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown world profile {profile!r}; known: {sorted(PROFILES)}")
    return PROFILES[profile]
