"""Run a function in N processes, one per GPU (or N CPU processes over gloo), as a torch.distributed group.

``launch(fn, args, processes, cpu=...)`` starts ``fn(*args)`` in every process with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and a free rendezvous port set, so ``distill`` inside it finds its rank
(accelerate reads the same variables; each rank takes ``cuda:LOCAL_RANK``). GPU processes are
*spawned* (CUDA cannot be used in a forked child of a process that already used it; ``fn`` and its
arguments must then be importable / picklable); CPU processes are forked (fast; the test path).
A failure in any rank is raised in the caller.
"""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, fn, args: tuple, processes: int, port: int, threads: int) -> None:
    import torch
    from accelerate.state import AcceleratorState, GradientState

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes),
                      LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      OMP_NUM_THREADS=str(threads))
    # A forked child inherits the parent's accelerate state (one process); this rank starts its own.
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    torch.set_num_threads(threads)
    try:
        fn(*args)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(fn, args: tuple = (), processes: int = 1, *, cpu: bool = False) -> None:
    """Run ``fn(*args)`` in ``processes`` ranks and wait for all of them (in this process when 1)."""
    if processes <= 1:
        fn(*args)
        return
    import torch
    from torch.multiprocessing import start_processes

    threads = max(1, torch.get_num_threads() // processes) if cpu else 1
    start_processes(_rank_main, args=(fn, tuple(args), processes, free_port(), threads), nprocs=processes,
                    start_method="fork" if cpu else "spawn", join=True)
