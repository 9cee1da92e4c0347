"""The layer's tests solve many tiny problems: one thread each (a thread pool's hand-offs cost
more than a 16×16 FFT, and the machine is shared)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
