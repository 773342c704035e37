"""The synthetic world: seeded entities and facts, the pretraining corpus, recall probes, and emitters
that write every dataset in the exact layout of the real KnowEdit / ZsRE / CounterFact / WISE files.

Entry points: `build_world(profile, seed)`, `core.world.corpus.pretraining_corpus(world)`,
`core.world.probes.recall_probes(world)`, and the CLI `python -m core.world.build`.
"""

from core.world.generate import build_world
from core.world.schema import Entity, Fact, World

__all__ = ["Entity", "Fact", "World", "build_world"]
