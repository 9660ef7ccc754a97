"""Explainable scores (advocate, lead, churn risk): pure functions, no I/O, no clock.

Filled by the scoring issue; the import rules already hold it to "no database, no HTTP".
"""
