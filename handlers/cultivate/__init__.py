"""Cultivate (管): mentoring, trainings with their invitations, attendance and scores."""
