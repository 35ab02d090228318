"""The phase model: a per-frame classifier on encoder features, then the phase-order HMM.

Per frame, a small head (standardisation, PCA, linear softmax, trained with class-balanced loss
so its outputs act as scaled likelihoods) scores the phases. Frames are grouped per second of video
time (any sampling rate), their log-probabilities averaged and multiplied by `temperature` (< 1
because neighbouring frames are far from independent evidence). The HMM (models/phase/hmm.py) then
turns the evidence into per-second probabilities: causal filtering online, forward-backward
smoothing and a Viterbi path offline.

Two priors on the video as a whole: `full_procedure=False` (default; a clip or a video that may
start anywhere: it starts in each phase with that phase's share of an operation's time, durations
as learned) or `full_procedure=True` (the video
is a whole operation: it starts in Preparation, ends in one of `end_phases`, and offline the
expected phase durations are scaled to the video's length).
"""
from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self, Sequence

import numpy as np

from models.phase.hmm import OnlinePhaseFilter, PhaseHMM, ordered_path, phase_transitions
from models.phase.timeline import PhaseProbabilities

MODEL_FORMAT = 1


def save_state(state: dict[str, Any], path: str | Path) -> Path:
    """torch.save a model's state to `path` atomically (a temporary file renamed over it)."""
    import os

    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


class PhaseModelFile:
    """A phase model kept as one weights file: `state()` is what is saved, `from_state(state)` rebuilds it."""

    WHAT = "phase model"  # what a file that fails to load is said not to be

    @classmethod
    def _read_state(cls, entry: Any) -> dict[str, Any]:
        return _torch().load(entry.weights, map_location="cpu", weights_only=True)

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the one weights file (atomic)."""
        return save_state(self.state(), path)

    @classmethod
    def load(cls, ref: str | Path | None = None) -> Self:
        """A shipped model name (default "phase"), a model folder, or a weights file."""
        from models.registry import resolve_model

        entry = resolve_model(ref or "phase")
        try:
            return cls.from_state(cls._read_state(entry))
        except (KeyError, AttributeError, RuntimeError, ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
            raise ValueError(f"{str(entry.weights)!r} is not a SurgLens {cls.WHAT}: {exc}") from exc


@dataclass
class PhaseModelConfig:
    """Hyper-parameters of the head and of the temporal prior."""

    head: str = "bernoulli"  # "bernoulli": naive Bayes on tool presence; "linear": softmax on PCA of the features
    alpha: float = 1.0  # bernoulli: pseudo-counts per tool and phase
    inputs: str = "all"  # linear: "all", "presence" or "pooled" (detector activations only)
    pca_dims: int = 32  # linear: 0 keeps every selected standardised feature
    weight_decay: float = 1e-2  # linear
    epochs: int = 300  # linear
    lr: float = 1e-2  # linear
    temperature: float = 0.1  # chosen on the three LOVO folds with the final detector (MODEL_CARD.md)
    substates: int = 32
    off_workflow: float = 0.02
    min_duration_s: float = 20.0
    end_phases: tuple[str, ...] = ("GallbladderRetraction",)
    decoder: str = "ordered"  # offline timeline: "ordered" (workflow-constrained posterior path), "viterbi", "posterior"
    switch_cost: float = 3.0  # ordered decoder: cost of each phase change, in seconds of probability
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["end_phases"] = list(self.end_phases)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PhaseModelConfig":
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if "end_phases" in known:
            known["end_phases"] = tuple(known["end_phases"])
        return cls(**known)


@dataclass(frozen=True)
class LabelledFeatures:
    """Encoded frames of one video (times, features) and its ground truth (label times, phase ids)."""

    name: str
    times: np.ndarray  # (N,) seconds
    features: np.ndarray  # (N, D)
    label_times: np.ndarray  # (M,) seconds
    label_phase: np.ndarray  # (M,) phase ids
    tolerance_s: float = 0.5

    def frame_labels(self) -> np.ndarray:
        """Phase of each encoded frame: the latest label at most `tolerance_s` earlier, else -1."""
        idx = np.searchsorted(self.label_times, self.times + 1e-9, side="right") - 1
        ok = idx >= 0
        ok[ok] &= self.times[ok] - self.label_times[idx[ok]] < self.tolerance_s
        return np.where(ok, self.label_phase[np.maximum(idx, 0)], -1)

    @property
    def n_seconds(self) -> int:
        return int(np.floor(max(self.times.max(initial=0), self.label_times.max(initial=0)))) + 1


def expected_durations(videos: Sequence[LabelledFeatures], n_phases: int, floor_s: float) -> np.ndarray:
    """Mean length of a visit to each phase in the ground truth; boundaries halfway between labels."""
    total, visits = np.zeros(n_phases), np.zeros(n_phases)
    for v in videos:
        t, y = v.label_times, v.label_phase
        if len(t) == 0:
            continue
        cuts = np.flatnonzero(np.diff(y)) + 1
        bounds = np.concatenate([[0.0], (t[cuts - 1] + t[cuts]) / 2, [t[-1] + 1]])
        for k, start in enumerate(np.concatenate([[0], cuts])):
            total[y[start]] += bounds[k + 1] - bounds[k]
            visits[y[start]] += 1
    mean = np.where(visits > 0, total / np.maximum(visits, 1), np.nan)
    fallback = np.nanmean(mean) if np.isfinite(mean).any() else 300.0
    return np.maximum(np.where(np.isfinite(mean), mean, fallback), floor_s)


def _input_columns(inputs: str, dim: int, n_presence: int) -> np.ndarray:
    """Indices of the feature columns a linear head uses; presence values are the last `n_presence`."""
    if inputs == "all":
        return np.arange(dim)
    if n_presence <= 0 or n_presence >= dim:
        raise ValueError(f"inputs={inputs!r} needs the encoder's class list to split {dim} features")
    if inputs == "presence":
        return np.arange(dim - n_presence, dim)
    if inputs == "pooled":
        return np.arange(dim - n_presence)
    raise ValueError(f"inputs must be 'all', 'presence' or 'pooled', got {inputs!r}")


def _torch():
    import torch

    return torch


def _build_head(kind: str, in_dim: int, n_phases: int, width: int):
    """An empty head of `kind` ("bernoulli": width = tools; "linear": width = projected dims)."""
    torch = _torch()
    nn = torch.nn

    class BernoulliHead(nn.Module):
        """Naive Bayes on tool presence (the last `width` inputs, present when > 0): log P(tools | phase)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_dim))  # unused; records the input width
            self.register_buffer("log_p", torch.zeros(n_phases, width))
            self.register_buffer("log_not_p", torch.zeros(n_phases, width))

        def forward(self, x):
            present = (x[:, -width:] > 0).float()
            return present @ self.log_p.T + (1 - present) @ self.log_not_p.T

    class LinearHead(nn.Module):
        """Standardise, project (PCA of the selected inputs), linear softmax scores."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_dim))
            self.register_buffer("scale", torch.ones(in_dim))
            self.register_buffer("projection", torch.zeros(in_dim, width))
            self.net = nn.Linear(width, n_phases)

        def forward(self, x):
            return self.net(((x - self.mean) / self.scale) @ self.projection)

    if kind == "bernoulli":
        return BernoulliHead()
    if kind == "linear":
        return LinearHead()
    raise ValueError(f"head must be 'bernoulli' or 'linear', got {kind!r}")


def _fit_bernoulli(x: np.ndarray, y: np.ndarray, n_phases: int, n_tools: int, alpha: float):
    """Per-phase tool frequencies with `alpha` pseudo-counts (Laplace smoothing)."""
    torch = _torch()
    if n_tools <= 0 or n_tools >= x.shape[1] + 1:
        raise ValueError(f"the bernoulli head needs the encoder's class list, got {n_tools} tools for {x.shape[1]} features")
    present = x[:, -n_tools:] > 0
    p = np.full((n_phases, n_tools), 0.5)
    for k in range(n_phases):
        rows = present[y == k]
        if len(rows):
            p[k] = (rows.sum(axis=0) + alpha) / (len(rows) + 2 * alpha)
    head = _build_head("bernoulli", x.shape[1], n_phases, n_tools)
    head.log_p.copy_(torch.as_tensor(np.log(p), dtype=torch.float32))
    head.log_not_p.copy_(torch.as_tensor(np.log1p(-p), dtype=torch.float32))
    return head


def _fit_linear(x: np.ndarray, y: np.ndarray, n_phases: int, n_tools: int, config: "PhaseModelConfig"):
    """Class-balanced softmax regression on the PCA of the standardised selected inputs."""
    torch = _torch()
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), 1e-6)
    selected = _input_columns(config.inputs, x.shape[1], n_tools)
    z = ((x - mean) / scale)[:, selected]
    if config.pca_dims and config.pca_dims < min(z.shape):
        _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        basis = vt[: config.pca_dims].T
    else:
        basis = np.eye(z.shape[1])
    projection = np.zeros((x.shape[1], basis.shape[1]))  # unselected inputs get zero rows
    projection[selected] = basis
    torch.manual_seed(config.seed)
    head = _build_head("linear", x.shape[1], n_phases, projection.shape[1])
    head.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
    head.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
    head.projection.copy_(torch.as_tensor(projection, dtype=torch.float32))
    counts = np.bincount(y, minlength=n_phases).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    wt = torch.as_tensor(weights, dtype=torch.float32)
    opt = torch.optim.AdamW(head.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.epochs):
        loss = torch.nn.functional.cross_entropy(head(xt), yt, weight=wt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head


class PhaseModel(PhaseModelFile):
    """Per-frame head + phase-order HMM. `predict(times, features)` -> PhaseProbabilities."""

    def __init__(
        self,
        head: Any,
        durations_s: np.ndarray,
        config: PhaseModelConfig,
        phase_names: Sequence[str],
        encoder: dict[str, Any] | None = None,
    ):
        self.head = head.eval()
        self.durations_s = np.asarray(durations_s, dtype=np.float64)
        self.config = config
        self.phase_names = tuple(phase_names)
        self.encoder = dict(encoder or {})
        unknown = [p for p in config.end_phases if p not in self.phase_names]
        if unknown:
            raise ValueError(f"end phases {unknown} are not among {list(self.phase_names)}")

    @property
    def n_phases(self) -> int:
        return len(self.phase_names)

    @property
    def input_dim(self) -> int:
        return int(self.head.mean.shape[0])

    # -- training -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        videos: Sequence[LabelledFeatures],
        phase_names: Sequence[str],
        config: PhaseModelConfig | None = None,
        encoder: dict[str, Any] | None = None,
    ) -> "PhaseModel":
        """Train the head on every labelled frame of `videos`; durations from their ground truth."""
        config = config or PhaseModelConfig()
        n_phases = len(phase_names)
        xs, ys = [], []
        for v in videos:
            y = v.frame_labels()
            xs.append(v.features[y >= 0])
            ys.append(y[y >= 0])
        x = np.concatenate(xs).astype(np.float64) if xs else np.zeros((0, 0))
        y = np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64)
        if len(y) < 2 or len(np.unique(y)) < 2:
            raise ValueError(f"need labelled frames of at least two phases to train, got {len(y)} frames")
        n_tools = len((encoder or {}).get("classes", []))
        if config.head == "bernoulli":
            head = _fit_bernoulli(x, y, n_phases, n_tools, config.alpha)
        elif config.head == "linear":
            head = _fit_linear(x, y, n_phases, n_tools, config)
        else:
            raise ValueError(f"head must be 'bernoulli' or 'linear', got {config.head!r}")
        durations = expected_durations(videos, n_phases, config.min_duration_s)
        return cls(head, durations, config, phase_names, encoder)

    # -- inference ------------------------------------------------------------------------
    def frame_log_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, P) per-frame log-probabilities of the head."""
        torch = _torch()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise ValueError(f"features must be (N, {self.input_dim}) for this phase model, got {features.shape}")
        with torch.no_grad():
            return torch.log_softmax(self.head(torch.from_numpy(features)), dim=1).numpy().astype(np.float64)

    def emissions(self, times_s: np.ndarray, features: np.ndarray, n_seconds: int) -> np.ndarray:
        """(n_seconds, P) evidence per second: mean frame log-probability x temperature; NaN without frames."""
        times_s = np.asarray(times_s, dtype=np.float64)
        if len(times_s) != len(features):
            raise ValueError(f"{len(times_s)} times for {len(features)} feature rows")
        out = np.full((n_seconds, self.n_phases), np.nan)
        if len(times_s) == 0:
            return out
        second = np.floor(times_s + 1e-9).astype(np.int64)
        keep = (second >= 0) & (second < n_seconds)
        logp = self.frame_log_proba(features[keep])
        sums = np.zeros((n_seconds, self.n_phases))
        counts = np.bincount(second[keep], minlength=n_seconds)
        np.add.at(sums, second[keep], logp)
        seen = counts > 0
        out[seen] = self.config.temperature * sums[seen] / counts[seen, None]
        return out

    def hmm(self, n_seconds: int | None = None, full_procedure: bool = False) -> PhaseHMM:
        """The temporal prior; with `full_procedure` and a length, durations scale to the video."""
        durations = self.durations_s
        if full_procedure and n_seconds:
            durations = durations * (n_seconds / durations.sum())
        k = self.config.substates
        durations = np.maximum(durations, k + 1.0)
        transition = phase_transitions(durations, k, off_workflow=self.config.off_workflow)
        if full_procedure:
            initial = np.eye(self.n_phases)[0]
            ends = [self.phase_names.index(p) for p in self.config.end_phases]
            final = np.zeros(self.n_phases)
            final[ends] = 1.0 / len(ends)
            return PhaseHMM(transition, initial, final, k, start_at_beginning=True)
        # A clip starts at a random moment: each phase is as likely as the share of time it takes.
        return PhaseHMM(transition, self.durations_s / self.durations_s.sum(), None, k)

    def predict(
        self,
        times_s: np.ndarray,
        features: np.ndarray,
        n_seconds: int | None = None,
        mode: str = "offline",
        full_procedure: bool = False,
    ) -> PhaseProbabilities:
        """Per-second probabilities over seconds 0..n_seconds-1 (default: up to the last frame)."""
        if mode not in ("offline", "online"):
            raise ValueError(f"mode must be 'offline' or 'online', got {mode!r}")
        times_s = np.asarray(times_s, dtype=np.float64)
        if n_seconds is None:
            n_seconds = int(np.floor(times_s.max())) + 1 if len(times_s) else 0
        evidence = self.emissions(times_s, features, n_seconds)
        hmm = self.hmm(n_seconds if mode == "offline" else None, full_procedure)
        if mode == "offline":
            probs = hmm.smooth(evidence)
            path = self.decode(probs, evidence, hmm)
        else:
            probs = hmm.filter(evidence)
            path = probs.argmax(axis=1)
        return PhaseProbabilities(
            np.arange(n_seconds, dtype=np.int64), probs.astype(np.float32), path.astype(np.int64), self.phase_names, mode
        )

    def decode(self, probs: np.ndarray, evidence: np.ndarray, hmm: PhaseHMM) -> np.ndarray:
        """The offline phase per second, by the configured decoder."""
        if self.config.decoder == "viterbi":
            return hmm.viterbi(evidence)
        if self.config.decoder == "posterior":
            return probs.argmax(axis=1)
        if self.config.decoder == "ordered":
            return ordered_path(probs, switch_cost=self.config.switch_cost)
        raise ValueError(f"unknown decoder {self.config.decoder!r} (ordered, viterbi, posterior)")

    def online(self, full_procedure: bool = False) -> "OnlinePhaseRecognizer":
        """A causal recognizer fed one second at a time."""
        return OnlinePhaseRecognizer(self, full_procedure)

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the model, as tensors and plain values (weights_only-safe)."""
        return {
            "format": MODEL_FORMAT,
            "head": self.head.state_dict(),
            "durations_s": self.durations_s.tolist(),
            "config": self.config.to_dict(),
            "phase_names": list(self.phase_names),
            "encoder": self.encoder,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PhaseModel":
        if state.get("format") != MODEL_FORMAT:
            raise ValueError(f"unsupported phase model format {state.get('format')!r}")
        head_state = state["head"]
        config = PhaseModelConfig.from_dict(state["config"])
        width = head_state["log_p" if config.head == "bernoulli" else "projection"].shape[-1]
        head = _build_head(config.head, int(head_state["mean"].shape[0]), len(state["phase_names"]), int(width))
        head.load_state_dict(head_state)
        return cls(head, np.asarray(state["durations_s"]), config, state["phase_names"], state.get("encoder"))


@dataclass
class OnlinePhaseRecognizer:
    """Causal phase recognition for live use: `recognizer(second, features) -> (P,) probabilities`."""

    model: PhaseModel
    full_procedure: bool = False
    _filter: OnlinePhaseFilter = field(init=False)
    _last_second: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._filter = OnlinePhaseFilter(self.model.hmm(None, self.full_procedure))

    def reset(self) -> None:
        self._filter.reset()
        self._last_second = None

    def __call__(self, second: int, features: np.ndarray) -> np.ndarray:
        """Evidence of one second (the frames sampled in it, (n, D)); seconds must increase."""
        second = int(second)
        if self._last_second is not None and second <= self._last_second:
            raise ValueError(f"seconds must increase: got {second} after {self._last_second}")
        features = np.atleast_2d(np.asarray(features, dtype=np.float32))
        evidence = self.model.config.temperature * self.model.frame_log_proba(features).mean(axis=0)
        elapsed = 1 if self._last_second is None else second - self._last_second
        self._last_second = second
        return self._filter(evidence, elapsed)
