"""Manage (管): the cadres in the pool — grade and annual results, practice posts."""
