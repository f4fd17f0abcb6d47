"""Vendor-neutral heart of pouracquit: model, diff, pipeline, service entry points."""
