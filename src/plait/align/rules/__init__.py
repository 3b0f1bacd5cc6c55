"""Window rules, one file per stream kind; the table of them lives in plait.align.align."""
