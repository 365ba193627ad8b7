"""What a planner reads: text and tables, comparisons, the HTML report."""
