"""Paper reproductions, organised by artifact. Each paper depends on core only."""
