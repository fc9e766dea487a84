"""Input files: the scenario, count tables, the archive table, calendars, the cache."""
