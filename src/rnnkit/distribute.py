"""Data-parallel training over processes started by ``torchrun`` (DistributedDataParallel semantics).

A script that calls ``model.fit(...)`` trains data-parallel when launched as::

    torchrun --nproc_per_node=2 train.py          # or --nnodes=2 --node_rank=... --rdzv-endpoint=...

``fit`` sees torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``) and
joins the process group itself (``gloo`` on CPU; ``nccl`` for CUDA tensors, each process on GPU
``LOCAL_RANK``), with a timeout (``RNNKIT_DIST_TIMEOUT`` seconds, default 300) so that a rank that
died never leaves the others waiting for ever. With one process nothing changes.

The rules, per training step of ``fit(x, y, batch_size=B)`` with ``W`` processes:

- **Arrays: global batch = B x W.** ``batch_size`` is per process, as in PyTorch's DDP. The
  arrays are cut into global batches of ``B*W`` samples (in the order of rank 0's shuffle, sent to
  every rank) and rank ``r`` trains on samples ``[r*B, (r+1)*B)`` of each. A last, smaller global
  batch of ``m`` samples is split as evenly as possible (``[r*m//W, (r+1)*m//W)``); if ``m < W``
  it is left out.
- **Datasets and generators: each batch they yield is a global batch** (as in Keras's
  distribution API), split the same way: rank ``r`` trains on its rows ``[r*m//W, (r+1)*m//W)``
  of every batch of ``m``. Every process must yield the same batches (seed them alike).
- **Gradients are averaged** after every backward pass: each rank's gradient weighted by its sample
  count, ``g = sum_r n_r g_r / sum_r n_r``, one ``all_reduce`` of all gradients plus two numbers
  (the sample count and the loss). With equal shards this is DDP's plain mean, and for losses that
  average over the batch it is exactly the gradient of one process on the global batch. Every rank
  then applies the same update, so the weights stay equal (rank 0's are broadcast at each epoch's
  start, as DDP does once). Communication per step: the parameters' bytes (4 bytes x parameters),
  plus two all-reduces of a few bytes (the logs, the stop flag). Unlike DDP, the gradients go in one
  message after the backward pass, not in buckets overlapped with it.
- **Logs are global.** The loss and metrics that callbacks, the progress bar and ``History`` see
  are the sample-weighted means over ranks (exact for the loss and for mean metrics such as
  accuracy or MAE; per-rank values averaged for others, e.g. AUC). Validation arrays are split
  into one contiguous block per rank, dataset batches by rows. ``EarlyStopping`` and ``ReduceLROnPlateau`` therefore decide on
  the same numbers in every process, and a stop asked for in any rank stops all of them.
- **Rank 0 writes.** Only rank 0 prints the progress bar and runs ``ModelCheckpoint``,
  ``CSVLogger`` and ``TensorBoard``; ``model.save`` / ``save_weights`` do nothing elsewhere.
  ``BackupAndRestore`` runs in every rank (each must restore the same state): give each rank its
  own folder, e.g. ``BackupAndRestore(f"backup/rank{rnnkit.distribute.rank()}")``.

Example (``train.py``, launched with ``torchrun --nproc_per_node=2 train.py``)::

    rnnkit.utils.set_random_seed(0)
    model.fit(x, y, batch_size=32, epochs=5)   # global batch 64
    if rnnkit.distribute.is_primary():
        print(model.evaluate(x, y))
"""
from __future__ import annotations

import atexit
import datetime
import itertools
import os

import torch
import torch.distributed as dist

from . import callbacks as callbacks_module, data_adapter

TIMEOUT_ENV = "RNNKIT_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0


# ----- the process group ------------------------------------------------------------------------
def launched():
    """True when the environment says this process is one of several (torchrun sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def active():
    """True while a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    """This process's rank: the process group's, else torchrun's ``RANK`` (before ``fit`` joins), else 0."""
    if active():
        return dist.get_rank()
    return int(os.environ["RANK"]) if launched() else 0


def world_size():
    """The number of processes training together: the process group's, else torchrun's ``WORLD_SIZE``, else 1."""
    if active():
        return dist.get_world_size()
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def is_primary():
    """True in the process that prints and writes files: rank 0, or the only process."""
    return rank() == 0


def initialize(device=None):
    """Join torchrun's process group if this process was launched by it and none is running yet.

    ``device``: the model's ``torch.device``; for CUDA each process takes GPU ``LOCAL_RANK`` and
    CUDA tensors go over ``nccl`` (CPU tensors over ``gloo``). Returns ``active()``."""
    if active() or not launched():
        return active()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 asks for distributed training, but this PyTorch build has no "
                           "torch.distributed.")
    backend = "gloo"
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=_timeout_seconds()))
    atexit.register(_leave)
    return active()


def _timeout_seconds():
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0 (default {DEFAULT_TIMEOUT_S:g}).")
    return seconds


def _leave():
    if dist.is_initialized():
        dist.destroy_process_group()


# ----- data: each rank its shard ----------------------------------------------------------------
def shard(batches):
    """The batches this rank trains on (see the module's rules); ``batches`` itself with one process."""
    if batches is None or not active():
        return batches
    if isinstance(batches, data_adapter.ArrayBatches):
        return ShardedArrayBatches(batches, rank(), world_size())
    return ShardedIterableBatches(batches, rank(), world_size())


def shard_validation(batches):
    """Validation batches of this rank: a contiguous block of the arrays, or its rows of each dataset batch."""
    if batches is None or not active():
        return batches
    if isinstance(batches, data_adapter.ArrayBatches):
        return ShardedArrayBatches(batches, rank(), world_size(), blocks=True) if batches.n >= world_size() \
            else batches  # fewer samples than ranks: every rank evaluates them all
    return ShardedIterableBatches(batches, rank(), world_size(), training=False)


class ShardedArrayBatches(data_adapter.ArrayBatches):
    """Rank ``rank``'s part of in-memory batches: its slice of each global batch of ``batch_size * world``
    samples (training) or, with ``blocks=True``, its contiguous block of all samples in ``batch_size``
    batches (validation).

        ShardedArrayBatches(data_adapter.ArrayBatches(x, y, 32, shuffle=True), rank=1, world=2)
    """

    def __init__(self, batches, rank, world, blocks=False):
        self.__dict__.update(batches.__dict__)  # the same arrays, batch size and shuffle flag
        self.rank, self.world, self.blocks = rank, world, blocks

    def _global_batches(self):
        """(start, size) of each global batch; a last one smaller than ``world`` is left out."""
        size = self.batch_size * self.world
        return [(start, min(size, self.n - start)) for start in range(0, self.n, size)
                if min(size, self.n - start) >= self.world]

    def __len__(self):
        if self.blocks:
            lo, hi = self._block()
            return -(-(hi - lo) // self.batch_size)
        return len(self._global_batches())

    def _block(self):
        return self.rank * self.n // self.world, (self.rank + 1) * self.n // self.world

    def _order(self):
        """The sample order of this pass: rank 0's random permutation, sent to every rank."""
        if not self.shuffle:
            return torch.arange(self.n)
        order = torch.randperm(self.n)
        dist.broadcast(order, src=0)  # gloo (CPU); under nccl a CPU tensor still goes over gloo
        return order

    def __iter__(self):
        order = self._order()
        if self.blocks:
            lo, hi = self._block()
            slices = [(start, min(start + self.batch_size, hi)) for start in range(lo, hi, self.batch_size)]
        else:
            slices = [(start + self.rank * m // self.world, start + (self.rank + 1) * m // self.world)
                      for start, m in self._global_batches()]
        for lo, hi in slices:
            idx = order[lo:hi]
            yield (data_adapter._take(self.x, idx), None if self.y is None else data_adapter._take(self.y, idx),
                   None if self.w is None else self.w[idx])


class ShardedIterableBatches:
    """Rank ``rank``'s rows of every batch of a dataset or generator that every rank reads alike:
    rows ``[rank*m//world, (rank+1)*m//world)`` of a batch of ``m``, so each batch is a global batch.
    A batch of fewer than ``world`` rows is skipped by every rank in training; in validation
    (``training=False``) rank 0 takes it whole."""

    def __init__(self, batches, rank, world, training=True):
        self.batches, self.rank, self.world, self.training = batches, rank, world, training

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for x, y, w in self.batches:
            m = len(data_adapter.first_leaf(x))
            if m >= self.world:
                rows = slice(self.rank * m // self.world, (self.rank + 1) * m // self.world)
            elif self.training or self.rank:
                continue
            else:
                rows = slice(0, m)
            yield (data_adapter._take(x, rows), None if y is None else data_adapter._take(y, rows),
                   None if w is None else w[rows])


# ----- one step: gradients, logs, decisions ------------------------------------------------------
def broadcast_model(model):
    """Copy rank 0's weights and buffers to every rank (DDP does this once, when it wraps a model)."""
    if not active():
        return
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters, loss, count):
    """Replace each parameter's ``.grad`` by the sample-weighted mean over ranks and return the
    global loss ``sum_r n_r loss_r / sum_r n_r`` (``loss`` itself with one process).

    One ``all_reduce`` (sum) of ``[n * grads..., n * loss, n]``: the bytes of the gradients plus 8.

        loss.backward()
        loss_value = average_gradients(model.parameters(), float(loss), len(x_batch))
    """
    if not active():
        return loss
    grads = [p.grad for p in parameters if p.grad is not None]
    device = grads[0].device if grads else torch.device("cpu")
    tail = torch.tensor([loss, 1.0], dtype=torch.float32, device=device)
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [tail]) * float(count)
    dist.all_reduce(flat)
    flat /= float(flat[-1])
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return float(flat[-2])


def average_logs(logs, count):
    """``logs`` (name -> number) as the means over ranks, each rank weighted by ``count``, its samples
    behind the values; unchanged with one process."""
    if not active() or not logs:
        return logs
    names = list(logs)
    values = torch.tensor([float(logs[k]) for k in names] + [1.0], dtype=torch.float64) * float(count)
    dist.all_reduce(values)
    return {name: float(value / values[-1]) for name, value in zip(names, values[:-1].tolist())}


def any_rank(flag):
    """True in every rank when ``flag`` is true in any (so that all ranks stop together)."""
    if not active():
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def callbacks_for_rank(callbacks):
    """The callbacks this rank runs: all of them on rank 0; elsewhere all but the ones that write
    files (``ModelCheckpoint``, ``CSVLogger``, ``TensorBoard``)."""
    found = list(callbacks or [])
    if is_primary():
        return found
    writers = (callbacks_module.ModelCheckpoint, callbacks_module.CSVLogger, callbacks_module.TensorBoard)
    return [c for c in found if not isinstance(c, writers)]
