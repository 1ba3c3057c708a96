"""Seed data for the refining models: importers of human-labelled pages and quality labels (`human`)."""
