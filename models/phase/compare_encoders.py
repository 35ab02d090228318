"""The measurement behind the phase model's encoder choice (MODEL_CARD.md, "Encoder choice").

Leave-one-video-out on a CholecT50 root, same folds, same HMM and decoder for every encoder:
  (a) the detector: tool presence (naive Bayes head, shipped), all pooled activations + presence
      (linear head on 32 PCA dims), pooled activations only (linear head);
  (b) a small CNN (4 conv blocks, 128-d, about 0.3 M parameters) trained from scratch on the
      training videos' labelled frames (96 px, flips, crops, brightness jitter, 40 epochs).

    .venv/bin/python -m models.phase.compare_encoders --data ../shared/data/cholect50-val \
        [--detector MODEL_FOLDER] [--out runs/phase/encoder_comparison.json]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from models.phase.data import read_phase_dataset
from models.phase.encoder import DetectorEncoder
from models.phase.model import LabelledFeatures, PhaseModel, PhaseModelConfig
from models.phase.train import dump_json, leave_one_video_out, load_features
from models.taxonomy import load_taxonomy

CNN_SIZE = 96
HEADS = {
    "detector presence, naive Bayes (shipped)": PhaseModelConfig(),
    "detector pooled + presence, linear (PCA 32)": PhaseModelConfig(head="linear", inputs="all"),
    "detector pooled only, linear (PCA 32)": PhaseModelConfig(head="linear", inputs="pooled"),
}


def _cnn(torch):
    nn = torch.nn

    def block(i: int, o: int):
        return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                             nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, 7))


def cnn_log_probs(train: list, test, epochs: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train the small CNN on `train` PhaseVideos' labelled frames; (times, log-probs) of every `test` frame."""
    import cv2
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pad = CNN_SIZE + CNN_SIZE // 8

    def frames(video, labelled_only: bool):
        labels = dict(zip(video.labels.seconds.tolist(), video.labels.phase_id.tolist()))
        out = [(t, cv2.resize(rgb, (pad, pad), interpolation=cv2.INTER_AREA), labels.get(t, -1)) for t, rgb in video.frames()]
        return [f for f in out if f[2] >= 0] if labelled_only else out

    data = [f for v in train for f in frames(v, True)]
    x = np.stack([f[1] for f in data])
    y = torch.tensor([f[2] for f in data])
    net = _cnn(torch)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
    counts = torch.bincount(y, minlength=7).float()
    weight = counts.sum() / (7 * counts.clamp(min=1))

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255.0

    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            idx = order[start:start + 32]
            crops = []
            for i in idx:
                ox, oy = rng.integers(0, pad - CNN_SIZE + 1, 2)
                crop = x[i, oy:oy + CNN_SIZE, ox:ox + CNN_SIZE]
                crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
            batch = tensor(np.stack(crops))
            batch = (batch * (0.8 + 0.4 * torch.rand(len(idx), 1, 1, 1))).clamp(0, 1)
            loss = torch.nn.functional.cross_entropy(net(batch), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    test_frames = frames(test, False)
    o = (pad - CNN_SIZE) // 2
    with torch.no_grad():
        logits = net(tensor(np.stack([f[1][o:o + CNN_SIZE, o:o + CNN_SIZE] for f in test_frames])))
    return np.array([f[0] for f in test_frames]), torch.log_softmax(logits, 1).numpy().astype(np.float64)


def _cnn_lovo(videos: list, features: list[LabelledFeatures], log) -> dict:
    """The CNN's log-probabilities through the shipped HMM and decoder, per held-out video."""
    names = load_taxonomy().phase_names
    config = PhaseModelConfig()
    out = {}
    for held_out, feats in zip(videos, features):
        train = [v for v in videos if v is not held_out]
        times, logp = cnn_log_probs(train, held_out)
        # The prior (durations) comes from the same training videos; only the evidence differs.
        prior = PhaseModel.fit([f for f in features if f is not feats], names, config, {"classes": [0] * 7})
        n = feats.n_seconds
        evidence = np.full((n, len(names)), np.nan)
        evidence[np.floor(times).astype(int)] = config.temperature * logp
        second = np.floor(feats.label_times).astype(int)
        gt = feats.label_phase
        labelled = np.isin(times, feats.label_times)
        row = {"frame": float((logp[labelled].argmax(1) == gt).mean())}
        for variant, full in (("offline", False), ("offline_full", True)):
            hmm = prior.hmm(n, full)
            row[variant] = float((prior.decode(hmm.smooth(evidence), evidence, hmm)[second] == gt).mean())
        row["online_full"] = float((prior.hmm(None, True).filter(evidence).argmax(1)[second] == gt).mean())
        out[held_out.name] = row
        log(f"CNN fold {held_out.name}: {row}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--detector", default=None)
    parser.add_argument("--cache", default="runs/phase/features")
    parser.add_argument("--out", default="runs/phase/encoder_comparison.json")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    videos = read_phase_dataset(args.data)
    encoder = DetectorEncoder(args.detector)
    features = load_features(videos, encoder, args.cache, log)
    variants = ("frame", "online_full", "offline", "offline_full")
    table = {}
    for label, config in HEADS.items():
        result = leave_one_video_out(features, config, encoder.identity)
        table[label] = {v: {n: result["per_video"][n][v]["strict"]["accuracy"] for n in result["per_video"]} for v in variants}
    cnn = _cnn_lovo(videos, features, log)
    table[f"small CNN trained on our frames ({CNN_SIZE} px)"] = {v: {n: round(r[v], 4) for n, r in cnn.items()} for v in variants}
    for row in table.values():
        for v in variants:
            row[v]["mean"] = round(float(np.mean([row[v][n] for n in cnn])), 4)
    result = {"detector": encoder.identity, "data": args.data, "metric": "strict accuracy at labelled frames", "table": table}
    dump_json(result, Path(args.out))
    for label, row in table.items():
        print(f"{label:50s} " + "  ".join(f"{v} {row[v]['mean']:.3f}" for v in variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
