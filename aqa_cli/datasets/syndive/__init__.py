"""SynDive, aqa's synthetic diving benchmark: dive plans and motion (`motion`), the capsule renderer
(`render`), commentary sentences (`commentary`) and the generator that writes a dataset root (`synth`)."""
