"""Phase-order prior: a hidden Markov model over the phases on a one-second grid.

Each phase is a chain of `substates` hidden states (an Erlang duration: with k sub-states of
mean d/k seconds each, the phase lasts d seconds on average with a spread of d/sqrt(k), which a
single geometric state cannot express). From a phase's last sub-state the process moves on,
mostly to one of its workflow successors (Cholec80: Preparation -> Calot triangle dissection ->
Clipping and cutting -> Gallbladder dissection -> {Packaging, Cleaning}, Packaging <-> Cleaning,
both -> Retraction, Retraction -> Cleaning), and with a small probability `off_workflow` to any
other phase, so unusual orders stay possible but must be earned by the evidence.

Emissions are per-second, per-phase log-likelihoods (T, P); a row of NaN means no frame that
second. `filter` is causal (online); `smooth` and `viterbi` use the whole video (offline).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# How the HMM baseline decodes (models.phase.model.PhaseModel.predict), as evaluated and carded.
VARIANTS = {
    "frame": "per-frame head only, argmax, no temporal model",
    "online": "causal HMM filter, video may start in any phase",
    "offline": "whole-video HMM (forward-backward, workflow-ordered path), video may start in any phase",
    "online_full": "causal HMM filter, video is a whole operation (starts in Preparation)",
    "offline_full": "whole-video HMM, whole operation: starts in Preparation, ends in retraction, expected "
                    "durations scaled to the video length",
    "prior_only_full": "offline_full with no image evidence at all (the timing prior alone, a baseline)",
}

# Successors in the Cholec80 workflow, by phase id (taxonomy order).
CHOLEC80_SUCCESSORS: dict[int, tuple[int, ...]] = {0: (1,), 1: (2,), 2: (3,), 3: (4, 5), 4: (5, 6), 5: (4, 6), 6: (5,)}


def phase_transitions(
    expected_duration_s: Sequence[float],
    substates: int = 1,
    successors: dict[int, Sequence[int]] = CHOLEC80_SUCCESSORS,
    off_workflow: float = 0.02,
) -> np.ndarray:
    """Per-second transition matrix over (phase, sub-state) pairs, state = phase * substates + j.

    Sub-state j advances to j+1 with probability substates / duration; from the last sub-state,
    the phase is left with that probability: a share `off_workflow` of it goes uniformly to the
    first sub-state of non-successor phases, the rest uniformly to the successors' first sub-states.
    """
    durations = np.asarray(expected_duration_s, dtype=np.float64)
    n, k = len(durations), int(substates)
    if k < 1:
        raise ValueError(f"substates must be >= 1, got {substates!r}")
    if np.any(durations <= k):
        raise ValueError(f"expected durations must exceed {k} s (one per sub-state), got {durations.round(1).tolist()}")
    if not 0 <= off_workflow < 1:
        raise ValueError(f"off_workflow must lie in [0, 1), got {off_workflow!r}")
    a = np.zeros((n * k, n * k))
    for p in range(n):
        rate = k / durations[p]
        for j in range(k):
            s = p * k + j
            a[s, s] = 1.0 - rate
            if j + 1 < k:
                a[s, s + 1] = rate
                continue
            succ = [q for q in successors.get(p, ()) if q != p]
            others = [q for q in range(n) if q != p and q not in succ]
            to_succ = 0.0 if not succ else (1.0 if not others else 1.0 - off_workflow)
            for group, share in ((succ, to_succ), (others, 1.0 - to_succ)):
                for q in group:
                    a[s, q * k] += rate * share / len(group)
    return a


class PhaseHMM:
    """Forward filtering, forward-backward smoothing and Viterbi decoding on a 1 s grid.

    `initial` and `final` are distributions over phases: the first second's phase, and (offline
    only, optional) the last second's phase. Within a phase, the first second may be any sub-state
    unless `start_at_beginning`, which puts a phase's initial mass on its first sub-state.
    """

    def __init__(
        self,
        transition: np.ndarray,
        initial: Sequence[float],
        final: Sequence[float] | None = None,
        substates: int = 1,
        start_at_beginning: bool = False,
    ):
        self.transition = np.asarray(transition, np.float64)
        self.substates = int(substates)
        n_phases = len(initial)
        n = n_phases * self.substates
        if self.transition.shape != (n, n):
            raise ValueError(f"transition must be ({n}, {n}) for {n_phases} phases x {self.substates} sub-states, got {self.transition.shape}")
        if not np.allclose(self.transition.sum(axis=1), 1) or np.any(self.transition < 0):
            raise ValueError("transition rows must be probability distributions")
        self.n_phases = n_phases
        self.initial = self._spread(initial, start_at_beginning)
        self.final = None if final is None else self._spread(final, False) * self.substates
        self._log_a = np.log(np.maximum(self.transition, 1e-300))

    def _spread(self, phase_probs: Sequence[float], first_only: bool) -> np.ndarray:
        probs = np.asarray(phase_probs, np.float64)
        if probs.shape != (self.n_phases,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1):
            raise ValueError(f"phase distribution must be {self.n_phases} non-negative numbers summing to 1, got {probs.tolist()}")
        if first_only:
            out = np.zeros((self.n_phases, self.substates))
            out[:, 0] = probs
            return out.ravel()
        return np.repeat(probs / self.substates, self.substates)

    def state_likelihood(self, log_lik: np.ndarray) -> np.ndarray:
        """(T, S) likelihoods rescaled per row from (T, P) log-likelihoods; NaN rows become flat."""
        log_lik = np.asarray(log_lik, dtype=np.float64)
        if log_lik.ndim != 2 or log_lik.shape[1] != self.n_phases:
            raise ValueError(f"log-likelihoods must be (T, {self.n_phases}), got {log_lik.shape}")
        lik = np.nan_to_num(log_lik, nan=0.0)
        lik = np.exp(lik - lik.max(axis=1, keepdims=True))
        return np.repeat(lik, self.substates, axis=1)

    def _to_phases(self, state_probs: np.ndarray) -> np.ndarray:
        return state_probs.reshape(len(state_probs), self.n_phases, self.substates).sum(axis=2)

    def _forward(self, lik: np.ndarray) -> np.ndarray:
        out = np.empty_like(lik)
        belief = self.initial
        for t in range(len(lik)):
            if t:
                belief = belief @ self.transition
            belief = belief * lik[t]
            total = belief.sum()
            belief = belief / total if total > 0 else np.full_like(belief, 1.0 / len(belief))
            out[t] = belief
        return out

    def filter(self, log_lik: np.ndarray) -> np.ndarray:
        """Causal phase posteriors P(phase at t | evidence up to t), (T, P)."""
        return self._to_phases(self._forward(self.state_likelihood(log_lik)))

    def smooth(self, log_lik: np.ndarray) -> np.ndarray:
        """Offline phase posteriors P(phase at t | whole video), (T, P)."""
        lik = self.state_likelihood(log_lik)
        if len(lik) == 0:
            return np.zeros((0, self.n_phases))
        forward = self._forward(lik)
        backward = np.ones_like(lik)
        if self.final is not None:
            backward[-1] = self.final
        for t in range(len(lik) - 2, -1, -1):
            b = self.transition @ (lik[t + 1] * backward[t + 1])
            backward[t] = b / max(b.sum(), 1e-300)
        post = forward * backward
        post = post / np.maximum(post.sum(axis=1, keepdims=True), 1e-300)
        return self._to_phases(post)

    def viterbi(self, log_lik: np.ndarray) -> np.ndarray:
        """Most likely phase per second (T,) under the prior and the evidence (offline)."""
        lik = np.log(np.maximum(self.state_likelihood(log_lik), 1e-300))
        n_t = len(lik)
        if n_t == 0:
            return np.zeros(0, dtype=np.int64)
        score = np.log(np.maximum(self.initial, 1e-300)) + lik[0]
        back = np.zeros((n_t, len(score)), dtype=np.int64)
        for t in range(1, n_t):
            cand = score[:, None] + self._log_a
            back[t] = cand.argmax(axis=0)
            score = cand.max(axis=0) + lik[t]
        if self.final is not None:
            score = score + np.log(np.maximum(self.final, 1e-300))
        path = np.empty(n_t, dtype=np.int64)
        path[-1] = int(score.argmax())
        for t in range(n_t - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path // self.substates


class OnlinePhaseFilter:
    """The causal filter, one second at a time: `filter(log_lik) -> phase probabilities`; `reset()`."""

    def __init__(self, hmm: PhaseHMM):
        self.hmm = hmm
        self._belief: np.ndarray | None = None

    def reset(self) -> None:
        self._belief = None

    def __call__(self, log_lik: np.ndarray, seconds_elapsed: int = 1) -> np.ndarray:
        """Update with one second's (P,) log-likelihoods (NaN = no frame), `seconds_elapsed` after the last."""
        lik = self.hmm.state_likelihood(np.asarray(log_lik, np.float64).reshape(1, -1))[0]
        if self._belief is None:
            belief = self.hmm.initial
        else:
            belief = self._belief @ np.linalg.matrix_power(self.hmm.transition, max(int(seconds_elapsed), 1))
        belief = belief * lik
        total = belief.sum()
        self._belief = belief / total if total > 0 else np.full_like(belief, 1.0 / len(belief))
        return self.hmm._to_phases(self._belief[None])[0]


def ordered_path(
    probs: np.ndarray,
    successors: dict[int, Sequence[int]] = CHOLEC80_SUCCESSORS,
    off_workflow_cost: float = 5.0,
    switch_cost: float = 0.0,
) -> np.ndarray:
    """The phase sequence with the highest expected number of correct seconds that follows the workflow.

    Maximises sum_t probs[t, phase_t] minus costs, over paths that stay or move to a workflow
    successor; every change of phase costs `switch_cost` and a move off the workflow another
    `off_workflow_cost` (in seconds of probability mass), so such moves happen only where the evidence
    clearly supports them. Unlike Viterbi on a weak signal, this does not collapse into the longest
    phase: it follows the per-second posteriors, with the order imposed.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n_t, n = probs.shape
    if n_t == 0:
        return np.zeros(0, dtype=np.int64)
    move = np.full((n, n), -float(off_workflow_cost + switch_cost))
    for p, succ in successors.items():
        for q in succ:
            if p < n and q < n:
                move[p, q] = -float(switch_cost)
    np.fill_diagonal(move, 0.0)
    score = probs[0].copy()
    back = np.zeros((n_t, n), dtype=np.int64)
    for t in range(1, n_t):
        cand = score[:, None] + move
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + probs[t]
    path = np.empty(n_t, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n_t - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
