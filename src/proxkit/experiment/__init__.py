"""Pre-training comparisons: raw vs rule-filtered vs ProX-refined corpora, trained and evaluated alike."""
