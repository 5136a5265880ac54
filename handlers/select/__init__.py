"""Select: self-nomination, recommendation, the township review, joint vetting."""
