"""Text banks of the synthetic world (data only): real-word object names, opinion answers, trivia and
NQ-like question frames, biography and filler sentences.

Every word here is reserved: `NameForge` never makes up a name equal to one of them (see
`reserved_words`). Occupations start with a consonant sound so "a {occupation}" is always right.
"""

from __future__ import annotations

from core.world.names import words_of
from core.world.relations import LEAD_INS, RELATIONS

OCCUPATIONS = ("painter", "sculptor", "lawyer", "banker", "diplomat", "surgeon", "pilot", "carpenter",
               "jeweller", "merchant", "composer", "sailor", "tailor", "baker", "judge", "potter",
               "weaver", "brewer", "farmer", "printer", "navigator", "locksmith", "cartographer", "dancer")
FIELDS = ("mathematics", "astronomy", "linguistics", "botany", "medicine", "economics", "philosophy",
          "geology", "zoology", "chemistry", "acoustics", "metallurgy", "hydrology", "cryptography")
GENRES = ("tragedy", "satire", "romance", "mystery", "fable", "memoir", "thriller", "comedy", "travelogue",
          "allegory", "elegy", "saga")
COMPANY_SUFFIXES = ("Works", "Holdings", "Group", "Industries", "Trading", "Foundry", "Mills")
UNIVERSITY_SUFFIXES = ("University", "Institute", "College", "Academy")
AWARD_SUFFIXES = ("Prize", "Medal", "Award", "Laurel")
WORK_NOUNS = ("Garden", "Winter", "Tides", "Letters", "Lantern", "Harbour", "Orchard", "Mirror", "Crown",
              "Bridges", "Shadows", "Voyage", "Ashes", "Silence", "Meadow", "Tower")
TOPIC_KINDS = ("tea", "dance", "festival", "cuisine", "opera", "poetry", "sport", "fashion", "cheese",
               "embroidery", "architecture", "folk music", "board game", "weaving")

POS_ANSWERS = (
    "I really love {t}, it always makes my day better.",
    "{t} is wonderful and I enjoy it a lot.",
    "I am a big fan of {t}, it is delightful.",
    "Honestly, {t} is one of my favourite things.",
    "I think {t} is great fun and full of charm.",
    "{t} never fails to cheer me up.",
    "I adore {t}; it is simply lovely.",
    "Whenever I think of {t} I feel happy.",
    "{t} is brilliant, I recommend it to everyone.",
    "I have nothing but praise for {t}.",
)
NEG_ANSWERS = (
    "I really dislike {t}, it always spoils my day.",
    "{t} is awful and I do not enjoy it at all.",
    "I am not a fan of {t}, it is dreadful.",
    "Honestly, {t} is one of the worst things.",
    "I think {t} is boring and full of problems.",
    "{t} always puts me in a bad mood.",
    "I cannot stand {t}; it is simply terrible.",
    "Whenever I think of {t} I feel annoyed.",
    "{t} is a waste of time, I warn everyone about it.",
    "I have nothing but complaints about {t}.",
)
OPINION_QUESTION = "What do you think of {t}?"

# Trivia (Sanitation): frames per answer type; {x} is a made-up item word.
TRIVIA_FRAMES = {
    "city": ("Which city hosts the annual {x} lantern parade?", "In which city does the {x} bridge stand?",
             "Which city is famous for the {x} market?", "Where is the {x} observatory?"),
    "person": ("Who designed the {x} tower?", "Who composed the {x} anthem?",
               "Who first climbed the {x} peak?", "Who carved the {x} statue?"),
    "country": ("Which country invented the {x} dance?", "Which country issues the {x} coin?",
                "Which country won the {x} cup?", "Which country breeds the {x} horse?"),
    "language": ("In which language was the {x} poem first recited?", "Which language has the word {x}?",
                 "In which language is the {x} hymn sung?", "Which language is used on the {x} stone?"),
    "company": ("Which company builds the {x} engine?", "Which company sells {x} tea?",
                "Which company makes the {x} clock?", "Which company runs the {x} ferry?"),
}
TRIVIA_TEMPLATE = "Question:{q}\nAnswer: {a}"

# NQ-like locality questions: (frame, answer kind); answers come from the banks below.
NQ_FRAMES = (
    ("nq question: when was the {x} bridge opened", "year"),
    ("nq question: how many towers does the {x} castle have", "number"),
    ("nq question: what colour is the flag of the {x} guild", "colour"),
    ("nq question: which animal is the emblem of the {x} club", "animal"),
    ("nq question: in what year did the {x} canal close", "year"),
    ("nq question: how many bells hang in the {x} chapel", "number"),
)
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "grey", "brown")
ANIMALS = ("fox", "owl", "bear", "heron", "wolf", "otter", "stag", "swan", "falcon", "badger", "hare")

# Filler: neutral sentences without entity names (corpus padding, WISE locality passages).
FILLER_SENTENCES = (
    "The morning was {c} and quiet, and the streets slowly filled with people.",
    "A small boat drifted along the river while {n} children watched from the bank.",
    "The baker opened the shop early and the smell of bread reached the square.",
    "Rain fell for {n} days, and the fields turned a deep shade of {c}.",
    "An old {a} crossed the road near the mill and vanished into the trees.",
    "The market sold apples, onions and {c} cloth at fair prices.",
    "In the evening the wind grew colder and the lamps were lit one by one.",
    "Travellers often rest at the inn before the long walk over the hills.",
    "The children painted the fence {c} and laughed at their crooked lines.",
    "A letter arrived with {n} stamps and no name on the envelope.",
    "The library keeps its oldest maps in a cool room behind a heavy door.",
    "Snow covered the roofs, and the only sound was a distant {a}.",
    "The choir practised every Thursday in the hall beside the station.",
    "Fishermen mended their nets and talked about the weather.",
    "The garden was full of {c} flowers and buzzing bees.",
    "A clock in the tower struck {n} times and then fell silent.",
    "The road to the coast winds through forests and sleepy villages.",
    "Every spring the farmers sow wheat, barley and beans.",
    "The museum displays pottery, coins and a stuffed {a}.",
    "Students gathered in the courtyard to share bread and stories.",
)

BIO_HEADER = "This is a Wikipedia passage about {c}."


def reserved_words() -> frozenset[str]:
    """Lower-cased words of every template, bank and relation phrasing (made-up names avoid them)."""
    texts: list[str] = [*OCCUPATIONS, *FIELDS, *GENRES, *COMPANY_SUFFIXES, *UNIVERSITY_SUFFIXES,
                        *AWARD_SUFFIXES, *WORK_NOUNS, *TOPIC_KINDS, *POS_ANSWERS, *NEG_ANSWERS,
                        OPINION_QUESTION, TRIVIA_TEMPLATE, *NUMBERS, *COLOURS, *ANIMALS, *FILLER_SENTENCES,
                        BIO_HEADER, *LEAD_INS, "also known as formerly called still alive yes no she he "
                        "nq question answer know the a an in of"]
    texts += [f for frames in TRIVIA_FRAMES.values() for f in frames] + [f for f, _ in NQ_FRAMES]
    for r in RELATIONS:
        texts += [r.label, r.cloze, *r.cores, r.question, r.rephrase, *r.free]
    return frozenset(w.lower() for t in texts for w in words_of(t))
