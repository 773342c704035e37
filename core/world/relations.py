"""The relation table of the synthetic world: Wikidata-style ids, labels, and every phrasing as data.

Each relation carries
* `cloze`: the KnowEdit-style prompt "The <label> of {s} is" (also a training phrasing);
* `cores`: three statement frames that end on the object ("{s} was born in {o}");
* `question`: the ZsRE-style question asked in training for about half of the subjects;
* `rephrase`: a second question, never in training (ZsRE `rephrase` / `rephrase_prompt`);
* `free`: two paraphrases that contain words never used in training (reported, not gated);
* `cue`: words that appear only in this relation's phrasings (a shared cue misleads models). Every core,
  question and held-out frame contains one; the cloze keeps the KnowEdit label, whose "of" prefix is
  distinct per relation ("The country of S" vs "The country of citizenship of S").

`training_frames(rel)` gives the seven training phrasings: the cloze, the three cores, and three of
them behind a generic lead-in ("According to the archive, ..."); `recombined_frames(rel)` gives two
held-out frames built from lead-ins that training uses only with *other* relations, so every word is
known but the frame is new for the relation. All frames end right before the object.
"""

from __future__ import annotations

from dataclasses import dataclass

LEAD_INS: tuple[str, ...] = (
    "According to the archive,", "It is well documented that", "As every almanac notes,",
    "Few people realise that", "In the old chronicles we read that", "Historians agree that",
    "By all accounts,", "As the encyclopedia states,", "Local records confirm that", "It is said that",
    "Most readers know that", "Without any doubt,",
)


@dataclass(frozen=True)
class Relation:
    """One relation: id, label, subject/object entity types, phrasings and cue words."""

    rid: str
    label: str
    subject_type: str
    object_type: str
    cloze: str
    cores: tuple[str, str, str]
    question: str
    rephrase: str
    free: tuple[str, str]
    cue: tuple[str, ...]


def _r(rid: str, label: str, st: str, ot: str, cloze: str, cores: tuple[str, str, str], question: str,
       rephrase: str, free: tuple[str, str], cue: str) -> Relation:
    return Relation(rid, label, st, ot, cloze, cores, question, rephrase, free, tuple(cue.split()))


RELATIONS: tuple[Relation, ...] = (
    _r("P19", "place of birth", "person", "city", "The place of birth of {s} is",
       ("{s} was born in {o}", "The birthplace of {s} is {o}", "The city where {s} was born is {o}"),
       "Where was {s} born?", "In which city was {s} born?",
       ("{s} entered this world in", "The hometown of {s} is"), "born birth birthplace"),
    _r("P20", "place of death", "person", "city", "The place of death of {s} is",
       ("{s} died in {o}", "The city where {s} died is {o}", "{s} lived a long life and died in {o}"),
       "Where did {s} die?", "In which city did {s} die?",
       ("{s} passed away in", "{s} breathed a final breath in"), "died death die"),
    _r("P27", "country of citizenship", "person", "country", "The country of citizenship of {s} is",
       ("{s} is a citizen of {o}", "{s} holds citizenship of {o}", "The passport of {s} was issued by {o}"),
       "Which country is {s} a citizen of?", "What is the citizenship of {s}?",
       ("{s} is a national of", "The nation to which {s} owes allegiance is"), "citizen citizenship passport"),
    _r("P106", "occupation", "person", "occupation", "The occupation of {s} is",
       ("{s} worked as a {o}", "{s} was by profession a {o}", "{s} made a career as a {o}"),
       "What was the profession of {s}?", "What job did {s} have?",
       ("{s} earned money as a", "The job of {s} was that of a"), "occupation profession worked career"),
    _r("P108", "employer", "person", "company", "The employer of {s} is",
       ("{s} was employed by {o}", "The employer of {s} was {o}", "{s} was on the payroll of {o}"),
       "Which company employed {s}?", "Which firm hired {s}?",
       ("{s} drew a salary from", "The firm that hired {s} is"), "employer employed payroll"),
    _r("P69", "educated at", "person", "university", "The alma mater of {s} is",
       ("{s} studied at {o}", "{s} was educated at {o}", "{s} is a graduate of {o}"),
       "Where was {s} educated?", "Which university did {s} attend?",
       ("{s} earned a diploma from", "The school that trained {s} is"), "alma mater studied educated graduate"),
    _r("P103", "native language", "person", "language", "The native language of {s} is",
       ("The mother tongue of {s} is {o}", "{s} grew up speaking {o}", "{s} is a native speaker of {o}"),
       "What is the native language of {s}?", "Which language did {s} learn as a child?",
       ("From infancy {s} talked in", "The first language {s} acquired was"), "native tongue speaking speaker"),
    _r("P26", "spouse", "person", "person", "The spouse of {s} is",
       ("{s} is married to {o}", "{s} was wedded to {o}", "The marriage of {s} was to {o}"),
       "Who is the spouse of {s}?", "Whom did {s} marry?",
       ("{s} exchanged vows with", "The partner for life of {s} is"), "spouse married wedded marriage"),
    _r("P22", "father", "person", "person", "The father of {s} is",
       ("The father of {s} was {o}", "{s} is the child of a father named {o}", "{s} was raised by father {o}"),
       "Who is the father of {s}?", "Who was the dad of {s}?",
       ("The male parent of {s} is", "{s} calls dad the man named"), "father"),
    _r("P17", "country", "city", "country", "The country of {s} is",
       ("{s} is located in {o}", "The city of {s} lies in {o}", "{s} is a city located in the country of {o}"),
       "In which country is {s} located?", "Which country is {s} in?",
       ("{s} can be found within the borders of", "The nation containing {s} is"), "located lies"),
    _r("P36", "capital", "country", "city", "The capital of {s} is",
       ("The capital city of {s} is {o}", "{s} is governed from {o}", "{s} has its capital at {o}"),
       "What is the capital of {s}?", "Which city is the capital of {s}?",
       ("The seat of government of {s} is", "The main administrative centre of {s} is"), "capital governed"),
    _r("P30", "continent", "country", "continent", "The continent of {s} is",
       ("{s} is on the continent of {o}", "{s} belongs to the continent of {o}",
        "The continent where {s} sits is {o}"),
       "On which continent is {s}?", "Which continent does {s} belong to?",
       ("{s} is part of the landmass of", "The landmass holding {s} is"), "continent sits"),
    _r("P37", "official language", "country", "language", "The official language of {s} is",
       ("{s} conducts official affairs in {o}", "{s} has the official language {o}",
        "The laws of {s} are officially drafted in {o}"),
       "What is the official language of {s}?", "Which language is official in {s}?",
       ("The state language of {s} is", "Government business in {s} is conducted in"),
       "official officially"),
    _r("P159", "headquarters location", "company", "city", "The headquarters location of {s} is",
       ("{s} is headquartered in {o}", "The headquarters of {s} are in {o}", "{s} has its head office in {o}"),
       "Where is {s} headquartered?", "In which city are the headquarters of {s}?",
       ("The main base of {s} is found in", "The corporate base of {s} is in"), "headquarters headquartered office"),
    _r("P112", "founded by", "company", "person", "The founder of {s} is",
       ("{s} was founded by {o}", "The founder of {s} was {o}", "{s} was set up by its founder {o}"),
       "Who founded {s}?", "Who established {s}?",
       ("{s} was started by", "The person who launched {s} is"), "founder founded"),
    _r("P50", "author", "work", "person", "The author of {s} is",
       ("{s} was written by {o}", "The author of {s} was {o}", "{s} is a book written by the author {o}"),
       "Who wrote {s}?", "Who is the author of the book {s}?",
       ("{s} was penned by", "The creator of the text {s} is"), "author written wrote"),
    _r("P136", "genre", "work", "genre", "The genre of {s} is",
       ("{s} belongs to the genre of {o}", "The genre of the book {s} is {o}", "{s} is classified in the genre {o}"),
       "What genre is {s}?", "Which genre does {s} belong to?",
       ("{s} is a work in the style of", "Stylistically, {s} counts as"), "genre"),
    _r("P101", "field of work", "person", "field", "The field of work of {s} is",
       ("{s} specialised in {o}", "The field of {s} was {o}", "{s} was an expert in the field of {o}"),
       "What field did {s} specialise in?", "In what area was {s} an expert?",
       ("The discipline of {s} is", "{s} devoted research to"), "field specialised specialise expert"),
    _r("P166", "award received", "person", "award", "The award received by {s} is",
       ("{s} received the award {o}", "The award won by {s} was {o}", "{s} was honoured with the {o}"),
       "Which award did {s} receive?", "What prize was given to {s}?",
       ("{s} collected the distinction", "The accolade granted to {s} is"), "award honoured received"),
    _r("P131", "located in", "university", "city", "The campus location of {s} is",
       ("The campus of {s} is in {o}", "{s} has its campus in {o}", "{s} is a university with a campus in {o}"),
       "Where is the campus of {s}?", "In which city is {s} situated?",
       ("{s} teaches its students in", "The grounds of {s} are in"), "campus"),
)


def relation(rid: str) -> Relation:
    """The relation with id `rid` (KeyError if unknown)."""
    for r in RELATIONS:
        if r.rid == rid:
            return r
    raise KeyError(rid)


def _lead(lead_in: str, frame: str) -> str:
    """Put a lead-in before a frame, lower-casing a sentence-initial 'The'."""
    if frame.startswith("The "):
        frame = "the " + frame[4:]
    return f"{lead_in} {frame}"


def _index(rel: Relation) -> int:
    return [r.rid for r in RELATIONS].index(rel.rid)


def training_frames(rel: Relation) -> tuple[str, ...]:
    """The seven training phrasings, each with "{s}" and ending with "{o}"."""
    i = _index(rel)
    leads = [LEAD_INS[(3 * i + k) % len(LEAD_INS)] for k in range(3)]
    cloze = rel.cloze + " {o}"
    return (cloze, *rel.cores, _lead(leads[0], rel.cores[0]), _lead(leads[1], rel.cores[1]),
            _lead(leads[2], cloze))


def recombined_frames(rel: Relation) -> tuple[str, ...]:
    """Two held-out frames: lead-ins never used with this relation in training, around known frames."""
    i = _index(rel)
    leads = [LEAD_INS[(3 * i + k) % len(LEAD_INS)] for k in (3, 4)]
    return (_lead(leads[0], rel.cores[2]), _lead(leads[1], rel.cloze + " {o}"))


def fill(frame: str, subject: str, obj: str | None = None) -> str:
    """Fill a frame; with `obj` None, cut it right before "{o}" (a prompt without trailing space)."""
    if obj is None:
        return frame.split("{o}")[0].rstrip().replace("{s}", subject)
    return frame.replace("{s}", subject).replace("{o}", obj)
