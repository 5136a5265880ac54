"""Cultivating reserve cadres: 2+1 mentoring (/pair, /mentees, /talk, /difficulties)."""
