"""Cultivate: mentoring, trainings with their invitations, attendance and scores."""
