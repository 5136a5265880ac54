"""Use: idle-asset revitalisation projects, progress reports, outcomes (elected, awards,
publicity, pay linked to the yearly assessment)."""
