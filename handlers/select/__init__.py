"""Select (选): self-nomination, recommendation, the township review, joint vetting."""
