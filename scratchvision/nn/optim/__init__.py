"""Optimisers (SGD, Adam, AdamW) and learning-rate schedulers, as torch.optim."""
from scratchvision.nn.optim import lr_scheduler
from scratchvision.nn.optim.adam import Adam, AdamW
from scratchvision.nn.optim.optimizer import Optimizer
from scratchvision.nn.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
