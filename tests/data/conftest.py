import pytest
import torch

from tests.data.fake_cifar import LocalServer

# Small networks and 2-D problems: one thread per test worker is fastest.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def local_server():
    """A local HTTP server on 127.0.0.1, shared by a module's tests."""
    server = LocalServer()
    yield server
    server.close()
