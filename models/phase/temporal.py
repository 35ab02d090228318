"""The temporal phase model: multi-stage temporal convolutions over per-second tool evidence.

Three networks of one shape (MS-TCN style: dilated residual 1-D convolutions, a second stage that
refines the first one's probabilities), each for one way a video is seen:
- `offline`: a whole operation, every second in view; inputs are the tool evidence, the elapsed
  fraction and the operation's length.
- `online`: causal (left-padded convolutions), as a live view sees it; inputs are the tool evidence and
  the minutes elapsed since the start.
- `clip`: any stretch of an operation (a 30 s teaching clip, a partial recording); tool evidence
  only, no timing, trained on random crops.
All three are trained on annotated tool presence with the detector's measured noise injected
(`models.phase.evidence.ToolNoise`), then temperature-scaled on operations held out of fitting.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from models.phase.evidence import ToolNoise, hold_every
from models.phase.model import PhaseModelFile, _torch
from models.phase.sequences import LabelSequence
from models.phase.timeline import PhaseProbabilities

MODEL_FORMAT = 2
VARIANTS = ("offline", "online", "clip")
# A video shorter than this is never read as a whole operation (Cholec80's shortest lasts ~12 min).
MIN_OPERATION_S = 600.0
# Whole operation: the clip model must see the first phases at the start and the last ones at the end.
START_PHASES = ("Preparation", "CalotTriangleDissection")
END_PHASES = ("GallbladderPackaging", "CleaningCoagulation", "GallbladderRetraction")
EDGE_SHARE = 0.15  # the first/last 15 % of a long video are checked for opening/closing phases
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TemporalConfig:
    """Network shape, training schedule and noise augmentation."""

    channels: int = 32
    layers: int = 10  # dilations 1..2**(layers-1) seconds: a receptive field of ~17 min per stage
    stages: int = 2
    epochs: int = 25
    clip_epochs: int = 20
    batch: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    smooth_weight: float = 0.15  # MS-TCN's truncated-MSE smoothing loss
    hold_prob: float = 0.5  # share of training sequences seen with sparse sampling (held values)
    hold_max_s: int = 12
    rho_max: float = 0.9  # temporal correlation of injected detector errors, drawn per sequence in [0, rho_max]
    clip_min_s: int = 16
    clip_max_s: int = 240
    clips_per_video: int = 16
    calibration_videos: int = 8  # held out of fitting; temperatures are chosen on them
    low_confidence: float = 0.5  # segments below this mean probability are flagged for review
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TemporalConfig":
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def timing_features(variant: str, n_seconds: int) -> np.ndarray:
    """(n, k) timing inputs of a variant: offline [elapsed fraction, length in hours], online
    [elapsed hours], clip none."""
    t = np.arange(n_seconds, dtype=np.float32)
    if variant == "offline":
        return np.stack([t / max(n_seconds - 1, 1), np.full(n_seconds, n_seconds / 3600.0, np.float32)], axis=1)
    if variant == "online":
        return (t / 3600.0)[:, None]
    if variant == "clip":
        return np.zeros((n_seconds, 0), dtype=np.float32)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def build_network(in_dim: int, n_phases: int, config: TemporalConfig, causal: bool):
    """An untrained multi-stage TCN: (B, in_dim, T) -> list of (B, n_phases, T) logits, one per stage."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Residual(nn.Module):
        def __init__(self, dilation: int):
            super().__init__()
            self.dilation = dilation
            self.conv = nn.Conv1d(config.channels, config.channels, 3, dilation=dilation)
            self.out = nn.Conv1d(config.channels, config.channels, 1)
            self.drop = nn.Dropout(0.2)

        def forward(self, x):
            d = self.dilation
            padded = F.pad(x, (2 * d, 0) if causal else (d, d))
            return x + self.drop(self.out(F.relu(self.conv(padded))))

    class Stage(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.inp = nn.Conv1d(width, config.channels, 1)
            self.layers = nn.ModuleList(Residual(2**i) for i in range(config.layers))
            self.head = nn.Conv1d(config.channels, n_phases, 1)

        def forward(self, x):
            x = self.inp(x)
            for layer in self.layers:
                x = layer(x)
            return self.head(x)

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList([Stage(in_dim)] + [Stage(n_phases) for _ in range(config.stages - 1)])

        def forward(self, x):
            outs = [self.stages[0](x)]
            for stage in self.stages[1:]:
                outs.append(stage(F.softmax(outs[-1], dim=1)))
            return outs

    return Network()


class NumpyTCN:
    """`build_network`'s forward pass in numpy, from its state_dict: inference without importing torch."""

    def __init__(self, weights: dict[str, np.ndarray], config: TemporalConfig, causal: bool):
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.config, self.causal = config, causal

    def eval(self) -> "NumpyTCN":
        return self

    def state_dict(self) -> dict[str, Any]:
        torch = _torch()
        return {k: torch.from_numpy(v.copy()) for k, v in self.weights.items()}

    def _conv1x1(self, name: str, x: np.ndarray) -> np.ndarray:
        return x @ self.weights[f"{name}.weight"][:, :, 0].T + self.weights[f"{name}.bias"]

    def _dilated(self, name: str, x: np.ndarray, d: int) -> np.ndarray:
        """Kernel-3 convolution over time with zero padding (2d before if causal, else d on each side)."""
        w = self.weights[f"{name}.weight"]
        left = 2 * d if self.causal else d
        padded = np.pad(x, ((left, 2 * d - left), (0, 0)))
        n = len(x)
        return sum(padded[k * d: k * d + n] @ w[:, :, k].T for k in range(3)) + self.weights[f"{name}.bias"]

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """(T, D) inputs -> (T, P) logits of the last stage."""
        x = np.asarray(inputs, dtype=np.float32)
        for s in range(self.config.stages):
            if s:
                z = x - x.max(axis=1, keepdims=True)
                x = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            h = self._conv1x1(f"stages.{s}.inp", x)
            for i in range(self.config.layers):
                name = f"stages.{s}.layers.{i}"
                h = h + self._conv1x1(f"{name}.out", np.maximum(self._dilated(f"{name}.conv", h, 2**i), 0))
            x = self._conv1x1(f"stages.{s}.head", h)
        return x.astype(np.float64)


def _inputs(evidence: np.ndarray, variant: str) -> np.ndarray:
    return np.concatenate([evidence.astype(np.float32), timing_features(variant, len(evidence))], axis=1)


def _noisy(seq_tools: np.ndarray, noise: ToolNoise, rng: np.random.Generator, config: TemporalConfig) -> np.ndarray:
    """Annotated presence -> detector-like evidence: measured confidences, correlated errors, sparse holds."""
    evidence = noise.sample(seq_tools, rng, rho=float(rng.uniform(0, config.rho_max)))
    if rng.random() < config.hold_prob:
        step = int(rng.integers(2, config.hold_max_s + 1))
        evidence = hold_every(evidence, step, int(rng.integers(0, step)))
    return evidence


def _batches(
    sequences: Sequence[LabelSequence], variant: str, noise: ToolNoise, rng: np.random.Generator, config: TemporalConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (inputs (B, D, T), labels (B, T) with -1 padding) batches."""
    items: list[tuple[np.ndarray, np.ndarray]] = []
    if variant == "clip":
        for seq in sequences:
            for _ in range(config.clips_per_video):
                length = int(rng.integers(config.clip_min_s, min(config.clip_max_s, len(seq)) + 1))
                start = int(rng.integers(0, len(seq) - length + 1))
                tools = seq.tools[start:start + length]
                items.append((_inputs(_noisy(tools, noise, rng, config), variant), seq.phase[start:start + length]))
        batch = config.batch * 8  # short sequences: more per batch
    else:
        for seq in sequences:
            items.append((_inputs(_noisy(seq.tools, noise, rng, config), variant), seq.phase))
        batch = config.batch
    order = rng.permutation(len(items))
    out = []
    for i in range(0, len(order), batch):
        chunk = [items[j] for j in order[i:i + batch]]
        t = max(len(y) for _, y in chunk)
        x = np.zeros((len(chunk), chunk[0][0].shape[1], t), dtype=np.float32)
        y = np.full((len(chunk), t), -1, dtype=np.int64)
        for k, (xi, yi) in enumerate(chunk):
            x[k, :, : len(yi)] = xi.T
            y[k, : len(yi)] = yi
        out.append((x, y))
    return out


def _fit_network(
    sequences: Sequence[LabelSequence], variant: str, noise: ToolNoise, n_phases: int, config: TemporalConfig, log: Log
):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(config.seed + VARIANTS.index(variant))
    torch.manual_seed(config.seed)
    in_dim = noise_dim = len(noise.tool_names)
    in_dim = noise_dim + timing_features(variant, 2).shape[1]
    net = build_network(in_dim, n_phases, config, causal=variant == "online")
    epochs = config.clip_epochs if variant == "clip" else config.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=max(epochs, 1) * 1000,
                                                pct_start=0.1)
    steps_per_epoch = None
    net.train()
    for epoch in range(epochs):
        batches = _batches(sequences, variant, noise, rng, config)
        if steps_per_epoch is None:  # re-make the schedule now the batch count is known
            steps_per_epoch = len(batches)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=epochs * steps_per_epoch,
                                                        pct_start=0.1)
        total = 0.0
        for x, y in batches:
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            outs = net(xt)
            loss = 0.0
            for logits in outs:
                loss = loss + F.cross_entropy(logits, yt, ignore_index=-1)
                logp = F.log_softmax(logits, dim=1)
                diff = (logp[:, :, 1:] - logp.detach()[:, :, :-1]) ** 2
                valid = ((yt[:, 1:] >= 0) & (yt[:, :-1] >= 0)).unsqueeze(1)
                loss = loss + config.smooth_weight * (diff.clamp(max=16) * valid).sum() / (valid.sum() * n_phases).clamp(min=1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            total += loss.item()
        log(f"{variant}: epoch {epoch + 1}/{epochs} loss {total / max(len(batches), 1):.4f}")
    return net.eval()


def _logits(net: Any, inputs: np.ndarray) -> np.ndarray:
    if isinstance(net, NumpyTCN):
        return net.logits(inputs)
    torch = _torch()
    with torch.no_grad():
        out = net(torch.from_numpy(inputs.T[None].copy()))[-1][0]
    return out.T.numpy().astype(np.float64)


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> float:
    """The temperature minimising the negative log-likelihood of `labels` (a grid search, 0.25-8)."""
    z = np.concatenate(logits)
    y = np.concatenate(labels)
    if len(y) == 0:
        raise ValueError("no labelled seconds to calibrate on")
    best, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 61)):
        p = _softmax(z, t)[np.arange(len(y)), y]
        nll = -np.log(np.maximum(p, 1e-12)).mean()
        if nll < best_nll:
            best, best_nll = float(t), nll
    return round(best, 4)


@dataclass
class TemporalPhaseModel(PhaseModelFile):
    """Three temporal networks (offline, online, clip), their temperatures and the noise they were trained with."""

    WHAT = "temporal phase model"

    nets: dict[str, Any]
    temperatures: dict[str, float]
    noise: ToolNoise
    config: TemporalConfig
    phase_names: tuple[str, ...]
    encoder: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    edge_threshold: float = 0.3  # chosen at fit time on the calibration operations (choose_edge_threshold)
    calot_evidence: Any = None  # models.phase.appearance.CalotEvidence: anatomy in view, for clips
    anatomy_window_s: int = 9

    @property
    def tool_names(self) -> tuple[str, ...]:
        return self.noise.tool_names

    @property
    def n_phases(self) -> int:
        return len(self.phase_names)

    # -- training -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        sequences: Sequence[LabelSequence],
        noise: ToolNoise,
        phase_names: Sequence[str],
        config: TemporalConfig | None = None,
        encoder: dict[str, Any] | None = None,
        variants: Sequence[str] = VARIANTS,
        log: Log = _quiet,
    ) -> "TemporalPhaseModel":
        """Fit each variant on all but `config.calibration_videos` sequences; temperatures on those."""
        config = config or TemporalConfig()
        if len(sequences) < 2:
            raise ValueError(f"need at least two labelled operations to train, got {len(sequences)}")
        rng = np.random.default_rng(config.seed)
        n_cal = min(config.calibration_videos, len(sequences) // 4)
        order = rng.permutation(len(sequences))
        calibration = [sequences[i] for i in order[:n_cal]]
        fitting = [sequences[i] for i in order[n_cal:]]
        nets, temps = {}, {}
        for variant in variants:
            nets[variant] = _fit_network(fitting, variant, noise, len(phase_names), config, log)
            if calibration:
                cal_rng = np.random.default_rng(config.seed + 100)
                zs, ys = [], []
                for seq in calibration:
                    if variant == "clip":
                        spans = [(s, min(s + 32, len(seq))) for s in range(0, len(seq) - 32, 97)]
                    else:
                        spans = [(0, len(seq))]
                    for a, b in spans:
                        ev = _noisy(seq.tools[a:b], noise, cal_rng, config)
                        zs.append(_logits(nets[variant], _inputs(ev, variant)))
                        ys.append(seq.phase[a:b])
                temps[variant] = fit_temperature(zs, ys)
            else:
                temps[variant] = 1.0
            log(f"{variant}: temperature {temps[variant]}")
        training = {"fitting": [s.name for s in fitting], "calibration": [s.name for s in calibration]}
        model = cls(nets, temps, noise, config, tuple(phase_names), dict(encoder or {}), training)
        if "clip" in nets and calibration:
            model.edge_threshold, model.training["operation_rule"] = choose_edge_threshold(model, calibration)
            log(f"whole-operation rule: threshold {model.edge_threshold} {model.training['operation_rule']}")
        return model

    # -- inference ------------------------------------------------------------------------
    def probabilities(self, evidence: np.ndarray, variant: str) -> np.ndarray:
        """(T, P) calibrated per-second probabilities from (T, C) tool evidence."""
        evidence = np.asarray(evidence, dtype=np.float32)
        if evidence.ndim != 2 or evidence.shape[1] != len(self.tool_names):
            raise ValueError(f"evidence must be (T, {len(self.tool_names)}) tool confidences, got {evidence.shape}")
        if variant not in self.nets:
            raise ValueError(f"variant must be one of {sorted(self.nets)}, got {variant!r}")
        if len(evidence) == 0:
            return np.zeros((0, self.n_phases))
        return _softmax(_logits(self.nets[variant], _inputs(evidence, variant)), self.temperatures.get(variant, 1.0))

    def edge_score(self, evidence: np.ndarray) -> float:
        """How much a video looks whole: the smaller of the shares of its first 15 % that the timing-free
        clip model reads as an opening phase and of its last 15 % read as a closing phase."""
        n = len(evidence)
        path = self.probabilities(evidence, "clip").argmax(axis=1)
        edge = max(int(EDGE_SHARE * n), 1)
        start = [self.phase_names.index(p) for p in START_PHASES]
        end = [self.phase_names.index(p) for p in END_PHASES]
        return float(min(np.isin(path[:edge], start).mean(), np.isin(path[-edge:], end).mean()))

    def choose_variant(self, evidence: np.ndarray) -> str:
        """"offline" for a whole operation, "clip" otherwise: decided from the evidence, not length alone.

        A video under MIN_OPERATION_S is a clip; a longer one is a whole operation when its
        `edge_score` reaches `edge_threshold` (chosen on operations held out of fitting) or when the
        clipper, which every cholecystectomy uses and the detector finds well, is used in its middle.
        """
        if "clip" not in self.nets:
            return "offline"
        if len(evidence) < MIN_OPERATION_S:
            return "clip"
        if self.edge_score(evidence) >= self.edge_threshold or clipping_in_middle(evidence, self.tool_names):
            return "offline"
        return "clip"

    def anatomy_log_ratio(self, times_s: np.ndarray, areas: Sequence[dict[str, float]], n_seconds: int) -> np.ndarray | None:
        """(n_seconds,) smoothed Calot-vs-gallbladder-dissection log likelihood ratio from the anatomy
        segmenter's per-frame class areas; None when this model has no anatomy evidence."""
        if self.calot_evidence is None or len(areas) == 0:
            return None
        from models.phase.appearance import area_features, smooth
        from models.phase.evidence import per_second

        ratio = self.calot_evidence.log_ratio(area_features(areas, self.calot_evidence.classes))
        return smooth(per_second(np.asarray(times_s), ratio[:, None], n_seconds)[:, 0], self.anatomy_window_s)

    def predict(self, evidence: np.ndarray, variant: str | None = None,
                calot_log_ratio: np.ndarray | None = None) -> PhaseProbabilities:
        """Per-second probabilities and decoded phase; `variant` None chooses offline or clip.

        `calot_log_ratio` (from `anatomy_log_ratio`) refines clips: tools alone cannot tell the two
        dissection phases apart there; whole operations have their timing and are left as they are.
        """
        variant = variant or self.choose_variant(evidence)
        probs = self.probabilities(evidence, variant)
        if calot_log_ratio is not None and variant == "clip":
            from models.phase.appearance import fuse

            probs = fuse(probs, np.asarray(calot_log_ratio)[: len(probs)], self.phase_names)
        n = len(probs)
        mode = "online" if variant == "online" else "offline"
        return PhaseProbabilities(np.arange(n, dtype=np.int64), probs.astype(np.float32),
                                  probs.argmax(axis=1).astype(np.int64), self.phase_names, mode)

    def online(self) -> "OnlineTemporalRecognizer":
        """A causal recognizer fed one second of evidence at a time."""
        return OnlineTemporalRecognizer(self)

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "kind": "temporal",
            "nets": {v: n.state_dict() for v, n in self.nets.items()},
            "temperatures": dict(self.temperatures),
            "noise": self.noise.to_state(),
            "config": self.config.to_dict(),
            "phase_names": list(self.phase_names),
            "encoder": self.encoder,
            "training": self.training,
            "edge_threshold": self.edge_threshold,
            "calot_evidence": None if self.calot_evidence is None else self.calot_evidence.to_state(),
            "anatomy_window_s": self.anatomy_window_s,
        }

    @classmethod
    def _read_state(cls, entry: Any) -> dict[str, Any]:
        """In a process without torch, a plain copy (models._state): the nets then run in numpy (`NumpyTCN`)."""
        if "torch" in sys.modules:
            return super()._read_state(entry)
        from models._state import plain_state
        from models.registry import SHA256_KEY, verify_weights, weights_sha256

        verify_weights(entry)
        return plain_state(entry.weights, str(entry.metadata.get(SHA256_KEY) or weights_sha256(entry.weights)))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TemporalPhaseModel":
        if state.get("format") != MODEL_FORMAT or state.get("kind") != "temporal":
            raise ValueError(f"not a temporal phase model (format {state.get('format')!r})")
        config = TemporalConfig.from_dict(state["config"])
        noise = ToolNoise.from_state(state["noise"])
        names = tuple(state["phase_names"])
        nets = {}
        for variant, weights in state["nets"].items():
            if all(isinstance(v, np.ndarray) for v in weights.values()):  # a plain copy: no torch in this process
                nets[variant] = NumpyTCN(weights, config, causal=variant == "online")
                continue
            in_dim = len(noise.tool_names) + timing_features(variant, 2).shape[1]
            net = build_network(in_dim, len(names), config, causal=variant == "online")
            net.load_state_dict(weights)
            nets[variant] = net.eval()
        calot = None
        if state.get("calot_evidence"):
            from models.phase.appearance import CalotEvidence

            calot = CalotEvidence.from_state(state["calot_evidence"])
        return cls(nets, dict(state["temperatures"]), noise, config, names, state.get("encoder", {}),
                   state.get("training", {}), float(state.get("edge_threshold", 0.3)), calot,
                   int(state.get("anatomy_window_s", 9)))


def clipping_in_middle(evidence: np.ndarray, tool_names: Sequence[str], min_seconds: int = 3) -> bool:
    """True when the clipper is seen for at least `min_seconds` and the median time it is seen lies in the
    middle 10-90 % of the video: the shape of a whole cholecystectomy (clipping between the dissections)."""
    if "Clipper" not in tool_names or len(evidence) == 0:
        return False
    seen = np.flatnonzero(np.asarray(evidence)[:, list(tool_names).index("Clipper")] > 0)
    if len(seen) < min_seconds:
        return False
    middle = np.median(seen) / len(evidence)
    return bool(0.1 <= middle <= 0.9)


def choose_edge_threshold(model: "TemporalPhaseModel", calibration: Sequence[LabelSequence],
                          seed: int = 11) -> tuple[float, dict[str, Any]]:
    """The edge-score threshold that best separates whole operations from partial 10-40 min stretches
    of the same held-out operations (balanced accuracy; ties go to the lower threshold, i.e. whole).

    Each operation is seen twice, with dense evidence and with one frame every 7 s held (sparse data).
    """
    rng = np.random.default_rng(seed)
    whole, partial, whole_ev, partial_ev = [], [], [], []
    for seq in calibration:
        for step in (1, 7):
            ev = hold_every(model.noise.sample(seq.tools, rng, rho=0.5), step)
            whole.append(model.edge_score(ev))
            whole_ev.append(ev)
            n = len(seq)
            length = int(rng.integers(600, 2400))
            if n * 0.8 > length:
                start = int(rng.integers(int(0.1 * n), int(0.9 * n) - length + 1))
                partial.append(model.edge_score(ev[start:start + length]))
                partial_ev.append(ev[start:start + length])
    whole_a, partial_a = np.asarray(whole), np.asarray(partial)
    best, best_score = 0.3, -1.0
    for t in np.round(np.arange(0.05, 0.95, 0.05), 2):
        score = 0.5 * ((whole_a >= t).mean() + ((partial_a < t).mean() if len(partial_a) else 1.0))
        if score > best_score + 1e-9:
            best, best_score = float(t), score
    report = {"whole": len(whole), "whole_read_as_whole": int((whole_a >= best).sum()),
              "partial": len(partial), "partial_read_as_clip": int((partial_a < best).sum()),
              "balanced_accuracy": round(float(best_score), 4)}
    # the whole rule (edge score or clipping in the middle), on the same videos
    model.edge_threshold = best
    report["rule_whole_read_as_whole"] = int(sum(model.choose_variant(e) == "offline" for e in whole_ev))
    report["rule_partial_read_as_clip"] = int(sum(model.choose_variant(e) == "clip" for e in partial_ev))
    return best, report


@dataclass
class OnlineTemporalRecognizer:
    """Causal recognition for live use: `recognizer(evidence_of_one_second) -> (P,) probabilities`.

    Keeps the seconds seen so far and re-runs the causal network over them (a few ms per second of
    video at live rates; the network's receptive field bounds what matters).
    """

    model: TemporalPhaseModel
    window_s: int = 2048
    _seen: list[np.ndarray] = field(default_factory=list)
    _elapsed: int = 0

    def reset(self) -> None:
        self._seen, self._elapsed = [], 0

    def __call__(self, evidence: np.ndarray) -> np.ndarray:
        evidence = np.asarray(evidence, dtype=np.float32).reshape(-1)
        self._seen.append(evidence)
        self._elapsed += 1
        if len(self._seen) > self.window_s:
            self._seen.pop(0)
        window = np.stack(self._seen)
        start = self._elapsed - len(window)
        inputs = np.concatenate([window, (np.arange(start, self._elapsed, dtype=np.float32) / 3600.0)[:, None]], axis=1)
        logits = _logits(self.model.nets["online"], inputs)[-1:]
        return _softmax(logits, self.model.temperatures.get("online", 1.0))[0]
