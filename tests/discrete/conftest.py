import torch

# Small networks and exact enumerations: one thread per test worker is fastest.
torch.set_num_threads(1)
