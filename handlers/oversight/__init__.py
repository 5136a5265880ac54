"""Oversight: the summary in numbers and its push schedule, the workbook export."""
