"""WISE hallucination and temporal datasets, mirroring the real files' keys and style (WISE section 3.3).

* wise/hallucination/hallucination-{edit,train}.json: {"prompt": "This is a Wikipedia passage about
  <concept>. <0-3 biography sentences>", "subject": <concept>, "target_new": <next sentence: a recent fact,
  absent from the corpus>, "locality_prompt": <150 characters of a filler passage>,
  "locality_ground_truth": <its next 150 characters>}. With no biography sentence the prompt ends in ". "
  like the real file's.
* wise/temporal/temporal-{edit,train}.json: companies founded after the cutoff (emerging entities).
  {"prompt": "<name> is", "subject": <same as prompt, as in the real file>, "target_new": <continuation
  describing the company>, "ood_rephrase": <a differently worded description>, "locality_prompt",
  "locality_ground_truth"}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.world.bios import bio_header, concept
from core.world.emit_common import locality_passage, shuffled, take_splits, write
from core.world.emit_knowedit_text import bio_cases
from core.world.schema import Entity, World

MAX_BIO_SENTENCES = 3


def hallucination_records(world: World) -> list[dict[str, Any]]:
    """All hallucination records (shuffled); each person shows 0-3 biography sentences, fixed per person."""
    people = {p.eid: i for i, p in enumerate(world.of_type("person"))}
    rows = []
    for eid, bio, earlier, label in bio_cases(world):
        person = world.entity(eid)
        shown = (*bio[:people[eid] % (MAX_BIO_SENTENCES + 1)], *earlier)
        prompt = " ".join((bio_header(person), *shown)) if shown else bio_header(person) + " "
        rows.append({"prompt": prompt, "subject": concept(person), "target_new": label})
    rows = shuffled(world, "wise_hallucination", rows)
    for i, r in enumerate(rows):
        r["locality_prompt"], r["locality_ground_truth"] = locality_passage(world, i)
    return rows


def _describe(world: World, company: Entity) -> tuple[str, str]:
    """(continuation after "<name> is", an independent description) from the company's recent facts."""
    city = world.value(company.eid, "P159", with_recent=True)
    founder = world.value(company.eid, "P112", with_recent=True)
    assert city is not None and founder is not None, company
    country = world.value(city, "P17")
    occupation = world.value(founder, "P106")
    cname, fname = world.name(city), world.name(founder)
    where = f"{cname}, a city in {world.name(country)}" if country else cname
    job = f" who worked as a {world.name(occupation)}" if occupation else ""
    target = (f"a company founded in {company.born} by {fname}{job}. Its headquarters are in {where}. "
              f"Since then {company.name} has grown quickly and hired many people in {cname}.")
    ood = (f"{company.name}, which has its head office in {cname}, was set up by its founder {fname} in "
           f"{company.born}. Within a few years the firm became well known, and its founder still leads it.")
    return target, ood


def temporal_records(world: World) -> list[dict[str, Any]]:
    """All temporal records (shuffled), one per company founded after the cutoff."""
    rows = []
    for c in world.of_type("company"):
        if c.born is not None and c.born > world.cutoff:
            target, ood = _describe(world, c)
            prompt = f"{c.name} is"
            rows.append({"prompt": prompt, "subject": prompt, "target_new": target, "ood_rephrase": ood})
    rows = shuffled(world, "wise_temporal", rows)
    for i, r in enumerate(rows):
        r["locality_prompt"], r["locality_ground_truth"] = locality_passage(world, len(world.filler) // 2 + i)
    return rows


def emit_wise(world: World, out: Path, hallucination: tuple[int, int], temporal: tuple[int, int],
              counts: dict[str, int]) -> None:
    """Write the WISE hallucination and temporal edit/train files."""
    for kind, rows, sizes in (("hallucination", hallucination_records(world), hallucination),
                              ("temporal", temporal_records(world), temporal)):
        for split, part in zip(("edit", "train"), take_splits(rows, sizes), strict=True):
            write(out, f"wise/{kind}/{kind}-{split}.json", part, counts)
