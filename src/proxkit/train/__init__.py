"""Training refiners from seed annotations, and the refining metrics that judge them."""
