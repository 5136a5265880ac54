"""The chat layer: between the flows and storage; knows people, screens and buttons."""
