import torch

# Small networks and 2-D problems: one thread per test worker is fastest.
torch.set_num_threads(1)
