"""Backbones, detectors and segmenters: one readable file per model."""
