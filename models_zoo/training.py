"""Training: the recipes of the zoo and the one entry point that trains, evaluates and saves a variant."""
from __future__ import annotations

import inspect
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from bench.progress import bar as progress_bar

from bench import __version__
from bench.config import check_writable, epochs_value, seed_everything
from bench.protocols import FASProtocol, FRProtocol, get_protocol
from bench.errors import BadInputError
from bench.evaluation import images_to_tensor
from models_zoo.checkpoint import (WEIGHTS_DIR, card_path, load_checkpoint, load_weights, refuse_torch_pickle, save_checkpoint,
                                     shipped_weights, zoo_weights_file)
from models_zoo.losses import triplet_semihard_loss
from models_zoo.registry import get_variant


def pk_batches(labels: np.ndarray, p: int, k: int, rng: np.random.Generator):
    """Batches of `p` identities x `k` images each, covering every identity once per epoch."""
    by_id: dict[int, np.ndarray] = {}
    for i, lab in enumerate(labels):
        by_id.setdefault(int(lab), []).append(i)  # type: ignore[arg-type]
    ids = np.array(sorted(by_id))
    rng.shuffle(ids)
    for start in range(0, len(ids) - p + 1, p):
        batch = [rng.choice(by_id[int(i)], k, replace=len(by_id[int(i)]) < k) for i in ids[start : start + p]]
        yield np.concatenate(batch)


def pk_steps(identities: np.ndarray, p: int) -> int:
    """Steps per epoch of `pk_batches` (one per `p` identities); a train split with fewer than `p` is refused."""
    n = len(np.unique(identities))
    if n < p:
        raise BadInputError(f"the train split has {n} identities, fewer than the {p} of one P x K batch of the "
                            "triplet recipe")
    return n // p


OPTIMIZER = "Adam wd=5e-4, one-cycle lr"


def mixed_precision(device: torch.device) -> bool:
    """Whether training on `device` runs the forward passes under bf16 autocast with channels_last tensors:
    on CUDA (the paper profile's setting), not on a CPU (fp32)."""
    return device.type == "cuda"


def precision_card(device: torch.device) -> str:
    return "bf16 autocast, channels_last" if mixed_precision(device) else "fp32"


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when `enabled` (bf16 keeps fp32's range: no loss scaling needed)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def flipped_batch(images: np.ndarray, idx: np.ndarray, maps: Sequence[torch.Tensor], device: torch.device,
                  rng: np.random.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A batch as float NCHW on `device`, each sample flipped horizontally with probability 1/2,
    together with the rows `idx` of every spatial label map, flipped with their images."""
    x = images_to_tensor(images[idx]).to(device)
    flip = torch.from_numpy(rng.uniform(size=len(idx)) < 0.5).to(device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if mixed_precision(device):
        x = x.contiguous(memory_format=torch.channels_last)
    out = []
    for m in maps:
        m = m[torch.from_numpy(np.asarray(idx))].to(device)
        out.append(torch.where(flip[:, None, None], m.flip(2), m))
    return x, out


def shuffled_batches(n: int, batch: int, rng: np.random.Generator):
    """`batches(epoch)` for `fit`: a fresh permutation of `n` samples each epoch, cut into full batches."""
    steps = max(1, n // batch)

    def batches(epoch: int):
        order = rng.permutation(n)
        return (order[k * batch : (k + 1) * batch] for k in range(steps))

    return batches, steps


def downsample_maps(maps: np.ndarray, size: int) -> torch.Tensor:
    """Label maps (N, S, S) in [0, 1] area-averaged to (N, size, size), as float32 on CPU."""
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).unsqueeze(1)
    return torch.nn.functional.adaptive_avg_pool2d(t, size).squeeze(1)


def fit_steps(epochs: float, steps_per_epoch: int) -> int:
    """The optimizer steps of `epochs` (a fraction allowed) of `steps_per_epoch` each: at least one, none for no epochs."""
    return max(1, round(epochs * steps_per_epoch)) if epochs > 0 else 0


def fit(model, images: np.ndarray, batches, loss_of, *, epochs: float, steps_per_epoch: int, lr: float,
        device: torch.device, rng: np.random.Generator, progress: bool, maps: Sequence[torch.Tensor] = (),
        amp: Optional[bool] = None) -> list[float]:
    """The shared training loop: Adam with a one-cycle schedule, random horizontal flips, a progress bar,
    and on CUDA bf16 autocast (`amp`, default `mixed_precision(device)`) around the batch loss.

    `batches(epoch)` yields index arrays into `images`; `loss_of(model, x, idx, *maps)` returns the loss
    of a batch. `maps` are optional per-sample spatial labels (N, H, W) indexed like `images` (depth,
    reflection): each batch's rows are flipped together with their images and passed after `idx`.
    `epochs` may be a fraction: training takes `fit_steps(epochs, steps_per_epoch)` steps (the one-cycle
    schedule spans exactly those) and its last epoch stops early when the steps run out.
    Returns the mean loss of each epoch started.
    """
    steps_per_epoch = max(1, steps_per_epoch)
    total = fit_steps(epochs, steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, total))
    amp = mixed_precision(device) if amp is None else amp
    history = []
    bar = progress_bar(total=total, show=progress, desc="train", unit="step")
    step = 0
    for epoch in range(-(-total // steps_per_epoch)):  # the epochs started: the last may be a part of one
        model.train()
        losses = []
        for idx in batches(epoch):
            if step == total:
                break
            x, batch_maps = flipped_batch(images, idx, maps, device, rng)
            with autocast(device, amp):
                loss = loss_of(model, x, idx, *batch_maps).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs:g}", loss=f"{np.mean(losses):.4f}")
        history.append(float(np.mean(losses)))
    bar.close()
    model.eval()
    return history


def train_triplet(model, protocol: FRProtocol, *, profile: str, size: int, epochs: float, device: torch.device,
                  seed: int, progress: bool = True, lr: float = 2e-3, p: int = 32, k: int = 4, margin: float = 0.2) -> dict:
    """FaceNet recipe: triplet loss with semi-hard online mining on P x K batches, no adversarial training.

    P = 32 identities per batch by default (issue 16: at P = 16 no seed of three reached 95 % test TAR at the dev
    FAR = 1e-3 threshold, at P = 32 all three did; docs/datasets.md). The adversarial fine-tunings (`triplet-adv`,
    and the contrastive variants' warm-up, which call this with their own `p`) keep P = 16: the FR claim's grid
    was measured with it."""
    train = protocol.train_set(size)
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(train.identities)
    history = fit(
        model, train.images, lambda epoch: pk_batches(train.identities, p, k, rng),
        lambda m, x, idx: triplet_semihard_loss(m(x), labels[idx].to(device), margin),
        epochs=epochs, steps_per_epoch=pk_steps(train.identities, p), lr=lr, device=device, rng=rng, progress=progress,
    )
    return {"loss_history": history, "optimizer": f"{OPTIMIZER} {lr}", "batch": f"P={p} x K={k}", "margin": margin}


@torch.no_grad()
def depth_side(model, size: int, device: torch.device) -> int:
    """The side of `model.depth_map`'s output for inputs of `size` pixels (label maps are pooled to it)."""
    was_training = model.training
    model.eval()
    side = model.depth_map(torch.zeros(1, 3, size, size, device=device)).shape[-1]
    model.train(was_training)
    return int(side)


class LossParts:
    """Per-epoch means of a recipe's named loss terms, recorded from inside `loss_of` (for the card)."""

    def __init__(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.rows: list[dict[str, float]] = []

    def add(self, **parts: torch.Tensor) -> None:
        self.rows.append({k: float(v.detach()) for k, v in parts.items()})

    def history(self) -> dict[str, list[float]]:
        n = self.steps_per_epoch
        epochs = [self.rows[i : i + n] for i in range(0, len(self.rows), n)]
        keys = dict.fromkeys(k for r in self.rows for k in r)  # a term may be absent from some steps
        return {k: [round(float(np.mean([r[k] for r in e if k in r] or [np.nan])), 6) for e in epochs] for k in keys}


def live_pos_weight(live: np.ndarray) -> torch.Tensor:
    """BCE `pos_weight` that balances live (positive) against spoof frames."""
    return torch.tensor((1 - live.mean()) / max(live.mean(), 1e-6), dtype=torch.float32)


def train_binary_fas(model, protocol: FASProtocol, *, profile: str, size: int, epochs: float, device: torch.device,
                     seed: int, progress: bool = True, lr: float = 2e-3, batch: int = 64) -> dict:
    """Binary live/spoof training with BCE (live = 1), classes balanced by weighting."""
    train = protocol.frames("train", size)
    rng = np.random.default_rng(seed)
    live = torch.from_numpy(train.live.astype(np.float32))
    pos_weight = live_pos_weight(train.live).to(device)
    batches, steps = shuffled_batches(len(train), batch, rng)
    history = fit(
        model, train.images, batches,
        lambda m, x, idx: torch.nn.functional.binary_cross_entropy_with_logits(m(x), live[idx].to(device), pos_weight=pos_weight),
        epochs=epochs, steps_per_epoch=steps, lr=lr, device=device, rng=rng, progress=progress,
    )
    return {"loss_history": history, "optimizer": f"{OPTIMIZER} {lr}", "batch": batch, "loss": "BCE"}


def warm_start(model, init: Optional[str], profile: str) -> Optional[dict]:
    """Load the weights `init` names into `model` before a recipe trains it (adversarial fine-tuning).

    `init` is a zoo variant (its shipped weights at `profile`) or a .safetensors path (its card, when
    there is one beside it, is checked like a zoo checkpoint's); None or "none" leaves the network as
    built. Returns what the model card records: the source, its sha256 and its dev metrics.
    """
    if init is None or init == "none":
        return None
    path = Path(init)
    if path.suffix != ".safetensors":
        if path.is_file():
            refuse_torch_pickle(path)  # a .pt checkpoint: say how to convert it, not "no such variant"
        found = shipped_weights(init, profile)
        if found is None:
            raise BadInputError(f"--init {init}: no shipped {profile} weights of a variant {init!r} to start from "
                                f"(train it first, or pass a .safetensors path, or --init none)")
        path = found
    if card_path(path).exists():
        card = load_checkpoint(model, path, profile=profile)
        return {"from": init, "variant": card.get("variant"), "sha256": card["sha256"], "dev": card.get("dev")}
    return {"from": init, "sha256": load_weights(model, path)}


RECIPE_ARGUMENTS = ("model", "protocol", "profile", "size", "epochs", "device", "seed", "progress")
"""What `train_variant` passes to every recipe; the rest of a recipe's keywords are its options."""


def specialised_recipe(recipe: Callable[..., dict], name: str, *, fixed: Optional[dict] = None,
                       defaults: Optional[dict] = None) -> Callable[..., dict]:
    """`recipe` under another name, with some options fixed and others given new defaults.

    Fixed options leave the signature, so `train_variant` refuses them like any option the recipe does
    not take: two variants that differ only in an option share one code path.
    """
    fixed, defaults = dict(fixed or {}), dict(defaults or {})
    signature = inspect.signature(recipe)
    unknown = (set(fixed) | set(defaults)) - set(signature.parameters)
    if unknown:
        raise TypeError(f"{recipe.__name__} has no option {', '.join(sorted(unknown))}")
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p
              for p in signature.parameters.values() if p.name not in fixed]

    def specialised(*args, **kwargs):
        refused = set(kwargs) & set(fixed)
        if refused:
            raise TypeError(f"{name}() got an unexpected keyword argument {sorted(refused)[0]!r}")
        return recipe(*args, **{**defaults, **kwargs, **fixed})

    specialised.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    specialised.__name__ = specialised.__qualname__ = name
    specialised.__doc__ = recipe.__doc__
    specialised.__module__ = recipe.__module__
    return specialised


def train_variant(name: str, *, profile: str = "tiny", protocol: Optional[str] = None, epochs: float = 10,
                  out: Optional[Path] = None, device: torch.device = torch.device("cpu"), seed: int = 0,
                  progress: bool = True, command: str = "", options: Optional[dict] = None,
                  force: bool = False) -> tuple[Path, dict]:
    """Train variant `name`, measure its dev metrics, and write safetensors + model card.

    `out` is a .safetensors path or a folder; None is the shipped weights' folder (the CLI passes one always: its
    default is results/weights/). `options` are extra keyword arguments of the variant's recipe (e.g. `{"pretrain": "gan"}`); an
    option the recipe does not take is refused before any work. `epochs` may be a fraction (`fit`). The paper profile is refused on a
    CPU unless `force`.
    """
    spec = get_variant(name)
    if profile == "paper" and device.type != "cuda" and not force:
        raise BadInputError(f"the paper profile of {name!r} ({spec.input_size.get('paper')} px, the seeds' scale) trains on a "
                            "CUDA device; on a CPU it would take days (pass --force to train it anyway)")
    if spec.recipe is None:
        raise BadInputError(f"model {name!r} has no training recipe")
    options = dict(options or {})
    accepted = inspect.signature(spec.recipe).parameters
    for key in options:
        if key not in accepted or key in RECIPE_ARGUMENTS:
            flag = "--" + key.replace("_", "-")
            raise BadInputError(f"model {name!r} does not take {flag} (its recipe {spec.recipe.__name__} has no such option)")
    if epochs <= 0:
        raise BadInputError(f"--epochs must be positive, got {epochs}")
    weights = weights_path(out, name, profile)
    proto = get_protocol(protocol or spec.default_protocol)
    if proto.task != spec.task:
        raise BadInputError(f"protocol {proto.name!r} is a {proto.task} protocol but {name!r} is a {spec.task} model")
    seed_everything(seed)
    size = spec.input_size[profile]
    model = spec.build(profile).to(device)
    if mixed_precision(device):
        model = model.to(memory_format=torch.channels_last)
    start = time.time()
    info = spec.recipe(model, proto, profile=profile, size=size, epochs=epochs, device=device, seed=seed, progress=progress,
                       **options)
    wall = time.time() - start
    dev = proto.calibrate(model, proto.dev_split(size), device)
    card = {
        "variant": name,
        "task": spec.task,
        "profile": profile,
        "architecture": f"{type(model).__name__}({type(model.backbone).__name__})",
        "input_size": size,
        "protocol": proto.name,
        "trained_on": "train",
        # the data trained and calibrated on (the embedded world's content hash; None for a real dataset): a
        # work directory's training is not reused on other data (`bench.claims.running.trained_card`)
        "data": proto.data_fingerprint(size),
        "training_command": command,
        "seed": seed,
        "code_version": __version__,
        "epochs": epochs_value(epochs),
        "wall_time_s": round(wall, 1),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "precision": precision_card(device),
        "host": f"{platform.system()} {platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "citation": spec.citation,
        "training": info,
        "dev": dev.as_card(),
    }
    return weights, save_checkpoint(model, card, weights)


def weights_path(out: Optional[Path], name: str, profile: str) -> Path:
    """Where `train_variant` writes: `out` when it is a .safetensors path, else `<name>-<profile>.safetensors` in the
    folder `out` (None: the shipped weights' folder). Checked before any training (`check_writable`): an output
    that cannot be written is refused in a line instead of failing after the training."""
    weights = Path(out) if out else WEIGHTS_DIR
    if weights.suffix != ".safetensors":
        weights = zoo_weights_file(weights, name, profile)
    return check_writable(weights, "--out")


ZooResult = tuple[str, Path, dict]
"""What `build_zoo` gives back per variant: its name, the weights written, their card."""

HEARTBEAT_S = 600.0
"""How often `build_zoo --jobs` says which trainings are still running (each worker's own bars are off)."""
POLL_S = 1.0
"""How often `build_zoo --jobs` looks for finished trainings."""


@dataclass(frozen=True)
class ZooTraining:
    """One variant's training in a `build_zoo` run: its zoo schedule, and the variant built in the same run whose
    weights it fine-tunes (`after`, None when it starts from nothing built here)."""

    name: str
    profile: str
    epochs: float
    seed: int
    out: Path
    out_dir: Optional[Path]
    after: Optional[str] = None


def train_zoo_variant(task: ZooTraining, device: torch.device, progress: bool, force: bool) -> ZooResult:
    """Train one variant as the zoo does. A recipe that fine-tunes another variant starts from that variant's
    weights in the output folder when they are there (built by this run or an earlier one), else from the
    shipped ones (the recipe's default); the card's command says which."""
    spec = get_variant(task.name)
    command = f"facebench train --model {task.name} --profile {task.profile} --epochs {task.epochs} --seed {task.seed}"
    options = {}
    init = inspect.signature(spec.recipe).parameters.get("init")
    if task.out_dir and init is not None and isinstance(init.default, str):
        fresh = zoo_weights_file(task.out_dir, init.default, task.profile)
        if fresh.exists():
            options["init"] = str(fresh)
            command += f" --init {fresh}"
    weights, card = train_variant(task.name, profile=task.profile, epochs=task.epochs, out=task.out, device=device,
                                  seed=task.seed, progress=progress, command=command, force=force, options=options)
    return task.name, weights, card


def _zoo_worker_start(threads: int) -> None:
    """A `build_zoo --jobs` worker: its share of the cores, and nothing of a Ctrl-C (the parent stops it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def _zoo_worker(task: ZooTraining, device: str, force: bool) -> ZooResult:
    return train_zoo_variant(task, torch.device(device), progress=False, force=force)


def build_zoo(profile: str = "tiny", names: Optional[list[str]] = None, *, out_dir: Optional[Path] = None,
              device: torch.device = torch.device("cpu"), seed: int = 0, progress: bool = True,
              force: bool = False, jobs: int = 1, log: Callable[[str], None] = lambda line: None,
              pool_factory: Optional[Callable[[int, int], object]] = None) -> list[ZooResult]:
    """Train every variant (or `names`) at `profile` with its zoo epochs; returns (name, weights, card) in
    registry order.

    Each card's training command is the `facebench train` line that reproduces that variant alone. A variant
    that fine-tunes another (`triplet-adv` from `facenet-baseline`) starts from the one built in `out_dir`
    when there is one, else from the shipped weights. With `jobs` = 1 the variants are trained here, one after the
    other, in registry order. With `jobs` > 1 they are trained by that many worker processes (spawned), each with
    cpu_count // jobs torch threads (one each on the 2-core machine with 2 jobs: the threads the shipped cards
    record), as workers come free: first the variants another one fine-tunes, then the others in registry order; a
    variant that fine-tunes another built in the same run waits for it. A failed training stops the others (what finished is kept) and its error is raised. `log` hears a line
    when a training starts and ends, and every `HEARTBEAT_S` which are still running. `pool_factory(jobs, threads)`
    replaces the process pool (tests: an object with `apply_async`, `terminate`, `close` and `join`).
    """
    from models_zoo.registry import VARIANTS

    if jobs < 1:
        raise BadInputError(f"--jobs must be at least 1, got {jobs}")
    trainable = [n for n in VARIANTS.names() if VARIANTS.get(n).recipe is not None]
    names = list(names) if names else trainable
    specs = [get_variant(n) for n in names]  # unknown names fail before any training
    untrainable = [s.name for s in specs if s.recipe is None]
    if untrainable:
        raise BadInputError(f"{', '.join(untrainable)}: no training recipe (its weights are not trained by the zoo); "
                            f"--only takes {', '.join(trainable)}")
    missing = [s.name for s in specs if profile not in s.zoo_epochs]
    if missing:
        raise BadInputError(f"no zoo training schedule at the {profile} profile for {', '.join(missing)}")
    # every output checked before the first training (an output that cannot be written is refused in a line)
    tasks = []
    for spec in specs:
        init = inspect.signature(spec.recipe).parameters.get("init")
        start = init.default if init is not None and isinstance(init.default, str) else None
        tasks.append(ZooTraining(spec.name, profile, spec.zoo_epochs[profile], seed,
                                 weights_path(Path(out_dir) if out_dir else None, spec.name, profile),
                                 Path(out_dir) if out_dir else None,
                                 after=start if start in names else None))
    if jobs == 1:
        return [train_zoo_variant(task, device, progress, force) for task in tasks]
    return _build_in_parallel(tasks, jobs, device, force, log, pool_factory)


def _build_in_parallel(tasks: list[ZooTraining], jobs: int, device: torch.device, force: bool,
                       log: Callable[[str], None], pool_factory: Optional[Callable[[int, int], object]]) -> list[ZooResult]:
    import multiprocessing
    import os

    threads = max(1, (os.cpu_count() or 1) // jobs)
    if pool_factory is None:
        def pool_factory(n: int, t: int):
            return multiprocessing.get_context("spawn").Pool(n, initializer=_zoo_worker_start, initargs=(t,))
    log(f"zoo build: {len(tasks)} trainings, {jobs} workers with {threads} torch thread(s) each")
    pool = pool_factory(jobs, threads)
    # the variants others fine-tune start first: the longest chain (facenet-baseline, then triplet-adv's
    # adversarial fine-tuning) is what the whole build waits for
    prerequisites = {task.after for task in tasks if task.after is not None}
    waiting = sorted(tasks, key=lambda task: task.name not in prerequisites)
    running, done = {}, {}
    began: dict[str, float] = {}
    heartbeat = time.time() + HEARTBEAT_S
    try:
        while waiting or running:
            for task in list(waiting):
                if len(running) >= jobs:
                    break
                if task.after is not None and task.after not in done:
                    continue  # fine-tunes a variant still being trained here
                waiting.remove(task)
                running[task.name] = pool.apply_async(_zoo_worker, (task, str(device), force))
                began[task.name] = time.time()
                log(f"zoo build: training {task.name} ({task.epochs:g} epochs)")
            finished = [name for name, job in running.items() if job.ready()]
            for name in finished:
                result = running.pop(name).get()  # a failed training raises its error here
                done[name] = result
                log(f"zoo build: {name} trained in {result[2]['wall_time_s']:.0f} s "
                    f"({len(done)} of {len(tasks)} done)")
            if not finished:
                if time.time() >= heartbeat:
                    log("zoo build: running " + ", ".join(f"{n} ({(time.time() - began[n]) / 60:.0f} min)"
                                                          for n in running)
                        + (f"; {len(waiting)} waiting" if waiting else ""))
                    heartbeat = time.time() + HEARTBEAT_S
                time.sleep(POLL_S)
    except BaseException:
        pool.terminate()  # Ctrl-C or a failed training: the trainings still running stop now
        pool.join()
        raise
    pool.close()
    pool.join()
    return [done[task.name] for task in tasks]
