"""Ray plumbing shared by the distributed selectors: connecting, and a group of shard actors
that Ray restarts and the driver restores.

Every selector runs the same way. Each actor holds one shard and a *worker* (the selector's
per-shard state around the single-process kernels). The driver keeps a log of every update it
has broadcast (the picks: centers, decayed n-grams, raised columns); each call names how many
log entries the actor must already hold, may carry the next entry, and asks a question.

Faults. Actors are created with ``max_restarts``: Ray restarts a dead actor, empty. The driver
notices (the call fails, or the restarted actor reports that it holds nothing), has it load its
shard again, restore the worker's state from its last checkpoint (a driver-owned object, taken
every ``checkpoint_every`` log entries) and replay the log entries after it, then repeats the
call. The worker's state after a replay is the state it had, so the run continues
with the same result. Nothing here schedules or transports anything itself: Ray does both.
"""
from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import param_error

RECOVERY_ATTEMPTS = 20  # restores tried per failed call before the error is raised


class StateLost(RuntimeError):
    """An actor holds fewer log entries than the driver expects: Ray restarted it."""


def import_ray(func: str):
    """The ray module, or an ImportError naming the extra that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{func} needs Ray: pip install 'iterselect[ray]' ({exc})") from None
    return ray


def connect(address, func: str):
    """Make sure this process is connected to a Ray cluster; return the ray module.

    ``None``: the cluster this process is already connected to, else the one ``$RAY_ADDRESS``
    names, else a new local one. ``"auto"``: the cluster at ``$RAY_ADDRESS``, else one started
    on this machine with ``ray start``, else a new local one. Any other string: that cluster's
    address (``"ray://host:10001"`` or ``"host:6379"``).
    """
    ray = import_ray(func)
    if ray.is_initialized():
        return ray
    if address is not None and not isinstance(address, str):
        raise param_error(func, "address", "None, 'auto' or a Ray cluster address (str)", address, TypeError)
    if address is None:
        # ray.init joins $RAY_ADDRESS by itself; dashboard options are for a cluster it starts
        ray.init(**({} if os.environ.get("RAY_ADDRESS") else {"include_dashboard": False}))
    elif address == "auto":
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"])
        else:
            try:
                ray.init(address="auto")
            except ConnectionError:
                ray.init(include_dashboard=False)
    else:
        ray.init(address=address)
    return ray


def cluster_cpus(ray) -> tuple[float, float, int]:
    """(all CPUs, the most CPUs on one node, alive nodes) of the connected cluster."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    per_node = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes]
    return sum(per_node), max(per_node, default=1.0), max(1, len(nodes))


def actor_cpus(ray, num_shards: int, num_cpus) -> tuple[float, int]:
    """(CPUs reserved per actor, threads its kernels use). By default the cluster's CPUs are
    shared equally, at most one node's worth per actor; Ray wants whole numbers above 1."""
    if num_cpus is None:
        total, biggest, _ = cluster_cpus(ray)
        num_cpus = min(total / num_shards, biggest) if total > 0 else 1.0
    num_cpus = float(num_cpus)
    if num_cpus >= 1:
        num_cpus = float(int(num_cpus))
    return num_cpus, max(1, int(num_cpus))


def default_shards(ray) -> int:
    """One shard per alive node (each actor then runs its kernels on its node's cores)."""
    return cluster_cpus(ray)[2]


def nbytes(obj) -> int:
    """Bytes of the numpy arrays in a (nested) message: what a call moves, headers aside."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(nbytes(o) for o in obj.values())
    return 8 if isinstance(obj, (int, float, np.generic)) else 0


def gather(group, offsets: np.ndarray, ids: np.ndarray, method: str) -> list:
    """``worker.method(local indices)`` on the shards that hold global indices ``ids`` (shard s
    holds ``[offsets[s], offsets[s + 1])``); their items, in the order of ``ids``."""
    owner = np.searchsorted(offsets, ids, side="right") - 1
    out = [None] * len(ids)
    for s in np.unique(owner):
        at = np.flatnonzero(owner == s)
        for a, item in zip(at.tolist(), group.call_one(int(s), method, ids[at] - offsets[s])):
            out[a] = item
    return out


class ShardActor:
    """The Ray actor that holds one shard's worker. Ray re-runs this constructor when it
    restarts the actor, which then holds nothing until the driver loads it again."""

    def __init__(self):
        self.worker = None
        self.group = None
        self.applied = 0

    def load(self, group: str, worker_cls, shard, params: dict, state=None, position: int = 0, log=()):
        """Build the worker on its shard; with ``state`` (a checkpoint taken at log entry
        ``position``) and ``log``, restore it to where the driver is."""
        self.worker, self.group = None, None
        worker = worker_cls(shard, **params)
        if state is not None or log:
            worker.restore(state, position, list(log))
        self.worker, self.group, self.applied = worker, group, len(log)

    def _check(self, group: str, applied: int):
        if self.group != group or applied != self.applied:
            raise StateLost(f"the actor holds {self.applied} log entries of run {self.group}; the driver "
                            f"expects {applied} of run {group}")

    def call(self, group: str, method: str, applied: int, update, args: tuple):
        self._check(group, applied)
        if update is not None:
            self.worker.apply(update)
            self.applied += 1
        return getattr(self.worker, method)(*args)

    def snapshot(self, group: str, applied: int):
        self._check(group, applied)
        return applied, self.worker.snapshot()

    def release(self) -> None:
        self.worker, self.group, self.applied = None, None, 0

    def peak_memory(self) -> int:
        """This process's peak resident memory in bytes (the shard's mapped pages included)."""
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


_POOL: dict | None = None  # idle actors by CPUs per actor, while reuse_actors() is active
_POOL_LOCK = threading.Lock()


@contextlib.contextmanager
def reuse_actors():
    """Keep the shard actors alive between distributed calls inside this block (each call then
    skips starting worker processes, seconds on a busy machine); they are killed at its end.
    Idle actors keep their CPUs reserved, so other Ray work waits for them meanwhile.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect import distributed
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> with distributed.reuse_actors():
    ...     a = distributed.kcenter_greedy(X, 5, num_shards=2, progress=False)
    ...     b = distributed.kcenter_greedy(X, 5, num_shards=2, progress=False)
    >>> a.indices.tolist() == b.indices.tolist()
    True
    """
    global _POOL
    with _POOL_LOCK:
        outer = _POOL is not None
        if not outer:
            _POOL = {}
    try:
        yield
    finally:
        if not outer:
            with _POOL_LOCK:
                pool, _POOL = _POOL, None
            import ray

            for actors in pool.values():
                for a in actors:
                    ray.kill(a, no_restart=True)


def release_idle_actors(ray) -> None:
    """Kill the pool's idle actors (see :func:`reuse_actors`), freeing their CPUs for other Ray
    work of this driver (a Ray Dataset being materialized would otherwise wait for them)."""
    with _POOL_LOCK:
        if not _POOL:
            return
        actors = [a for idle in _POOL.values() for a in idle]
        _POOL.clear()
    for a in actors:
        ray.kill(a, no_restart=True)


def _take_actors(ray, count: int, cpus: float, max_restarts: int) -> list:
    """``count`` actors: idle ones of the pool first. Idle actors of another size are killed, so
    that the CPUs they hold are free for the new ones."""
    others = []
    with _POOL_LOCK:
        idle = _POOL.get((cpus, max_restarts), []) if _POOL is not None else []
        taken, idle[:] = idle[:count], idle[count:]
        if _POOL is not None and count > len(taken):
            for key in list(_POOL):
                if key != (cpus, max_restarts):
                    others += _POOL.pop(key)
    for a in others:
        ray.kill(a, no_restart=True)
    remote = ray.remote(ShardActor).options(num_cpus=cpus, max_restarts=max_restarts, max_task_retries=0,
                                            scheduling_strategy="SPREAD")
    return taken + [remote.remote() for _ in range(count - len(taken))]


def _give_back(ray, actors: list, cpus: float, max_restarts: int) -> None:
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.setdefault((cpus, max_restarts), []).extend(actors)
            return
    for a in actors:
        ray.kill(a, no_restart=True)


class ShardGroup:
    """One actor per shard, each holding ``worker_cls(shard, **params)``; calls that survive
    actor restarts (see the module docstring).

    ``fault_hook(group, method, call_number)``, when set (tests do), runs after each
    :meth:`call_all` has submitted its calls and before it waits for them.
    """

    fault_hook = None

    def __init__(self, ray, worker_cls, shards: list, params: dict, *, func: str, num_cpus=None,
                 max_restarts: int = 3, checkpoint_every: int = 0):
        self.ray = ray
        self.func = func
        self.cpus, self.threads = actor_cpus(ray, len(shards), num_cpus)
        self.max_restarts = max_restarts
        self.name = f"{func}-{uuid.uuid4().hex[:12]}"
        self.worker_cls, self.shards, self.params = worker_cls, shards, dict(params, threads=self.threads)
        self.actors = _take_actors(ray, len(shards), self.cpus, max_restarts)
        self.log: list = []
        self.checkpoint_every = checkpoint_every
        self.checkpoints: list = [None] * len(shards)  # (log position, driver-owned state ref)
        self.restarts = 0
        self.calls = 0
        self.bytes_to_shards = 0
        self.bytes_from_shards = 0
        loads = [a.load.remote(self.name, worker_cls, shard, self.params) for a, shard in zip(self.actors, shards)]
        try:
            ray.get(loads)
        except BaseException as exc:
            self.close()
            cause = getattr(exc, "cause", None)
            if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, (ValueError, TypeError)):
                raise cause from None  # a shard failed its checks: the error as the single process words it
            raise

    def __len__(self) -> int:
        return len(self.actors)

    def call_all(self, method: str, *args, update=None) -> list:
        """``worker.method(*args)`` on every shard (after applying ``update``, a new log entry,
        when given); the answers in shard order."""
        position = len(self.log)
        futures = [a.call.remote(self.name, method, position, update, args) for a in self.actors]
        self.calls += 1
        if ShardGroup.fault_hook is not None:
            ShardGroup.fault_hook(self, method, self.calls)
        answers = [self._get(i, f, method, position, update, args) for i, f in enumerate(futures)]
        self.bytes_to_shards += len(self.actors) * (nbytes(update) + nbytes(args))
        self.bytes_from_shards += sum(nbytes(a) for a in answers)
        if update is not None:
            self.log.append(update)
            if self.checkpoint_every and len(self.log) % self.checkpoint_every == 0:
                self.checkpoint()
        return answers

    def call_one(self, i: int, method: str, *args):
        """``worker.method(*args)`` on shard i alone (no update)."""
        position = len(self.log)
        future = self.actors[i].call.remote(self.name, method, position, None, args)
        answer = self._get(i, future, method, position, None, args)
        self.bytes_to_shards += nbytes(args)
        self.bytes_from_shards += nbytes(answer)
        return answer

    def checkpoint(self) -> None:
        """Every worker's state, kept in the object store and owned by this driver."""
        position = len(self.log)
        refs = [a.snapshot.options(num_returns=2).remote(self.name, position) for a in self.actors]
        for i, (pos_ref, state_ref) in enumerate(refs):
            try:
                self.ray.get(pos_ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
                self._recover(i)  # keep the previous checkpoint for this one
                continue
            self.checkpoints[i] = (position, state_ref)

    def peak_memory(self) -> list[int]:
        return self.ray.get([a.peak_memory.remote() for a in self.actors])

    def _get(self, i, future, method, position, update, args):
        ray = self.ray
        for _ in range(RECOVERY_ATTEMPTS):
            try:
                return ray.get(future)
            except ray.exceptions.RayTaskError as exc:
                if not isinstance(exc.cause, StateLost):
                    raise
            except ray.exceptions.RayActorError:
                pass
            self._recover(i)
            future = self.actors[i].call.remote(self.name, method, position, update, args)
        raise RuntimeError(f"{self.func}: shard {i} failed {RECOVERY_ATTEMPTS} times in a row; giving up")

    def _recover(self, i: int) -> None:
        """Wait for Ray to restart actor i, then load its shard again and restore its worker: the
        last checkpoint and the log entries after it."""
        ray = self.ray
        position, state = self.checkpoints[i] if self.checkpoints[i] is not None else (0, None)
        last = None
        for attempt in range(RECOVERY_ATTEMPTS):
            try:
                ray.get(self.actors[i].load.remote(self.name, self.worker_cls, self.shards[i], self.params,
                                                   state, position, self.log))
                self.restarts += 1
                return
            except ray.exceptions.RayActorError as exc:  # still restarting, or dead for good
                last = exc
                time.sleep(min(2.0, 0.1 * (attempt + 1)))
        raise RuntimeError(f"{self.func}: shard {i} could not be restored: {last}") from last

    def close(self) -> None:
        """Free the workers; the actors go back to the pool (see :func:`reuse_actors`) or die."""
        if not self.actors:
            return
        try:
            self.ray.get([a.release.remote() for a in self.actors])
            _give_back(self.ray, self.actors, self.cpus, self.max_restarts)
        except self.ray.exceptions.RayActorError:
            for a in self.actors:
                self.ray.kill(a, no_restart=True)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class RunStats:
    """What a distributed run cost.

    Attributes
    ----------
    shards : int
        Actors (one shard each).
    rounds : int
        Round trips of the picking loop (each: one call to every shard).
    picks : int
        Picks made by the loop (``k``); ``picks / rounds`` picks per round trip.
    seconds : float
        Wall time of the picking loop.
    round_trip_seconds : float
        Mean wall time of one round trip, the shards' work included.
    bytes_to_shards, bytes_from_shards : int
        Array payload sent to all shards and received from them (whole run, headers aside).
    restarts : int
        Shards restored after Ray restarted their actor.
    peak_memory : list of int
        Each actor's peak resident memory in bytes at the end (pages of a memory-mapped shard
        count when read).
    """

    shards: int
    rounds: int
    picks: int
    seconds: float
    round_trip_seconds: float
    bytes_to_shards: int
    bytes_from_shards: int
    restarts: int
    peak_memory: list = field(default_factory=list)


def run_stats(group: ShardGroup, rounds: int, picks: int, seconds: float) -> RunStats:
    return RunStats(shards=len(group), rounds=rounds, picks=picks, seconds=seconds,
                    round_trip_seconds=seconds / max(1, rounds), bytes_to_shards=group.bytes_to_shards,
                    bytes_from_shards=group.bytes_from_shards, restarts=group.restarts,
                    peak_memory=group.peak_memory())
