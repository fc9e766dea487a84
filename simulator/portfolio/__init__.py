"""Many scenarios a week at a time: fan-out, the database, the overview page."""
