"""What ``autotune.api`` offers, one job per module; ``api`` re-exports it.

Modules here import torch, transformers and ONNX Runtime only inside the functions that train
or measure, so reading results stays fast.
"""
