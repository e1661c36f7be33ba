"""The main job end to end (what `hwnas demo` runs): profile → predictors → search → report.

It composes the stages below it and adds nothing of its own but the order and the report.
"""
