"""Datasets: the common root every source writes (`layout`), its loader (`frames`), segment features
(`features`), summaries, and the sources: `syndive/` (generator), `mtl_aqa/`, `rg`."""
