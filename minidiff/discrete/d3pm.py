"""`D3PM`: discrete diffusion on K states with the kernels of `minidiff.markov.corruption`.

Austin et al. (2021), "Structured denoising diffusion models in discrete state-spaces"
(D3PM). The forward chain q(x_t | x_{t-1}) = Cat(x_{t-1} Q_t) and its marginal
q(x_t | x_0) = Cat(x_0 Q_bar_t) come from `minidiff.markov.corruption` (the single source
of the kernels): this module only gathers their tables, for t = 0..T, as tensors.

The posterior follows from Bayes (D3PM, eq. 3):

    q(x_{t-1} = j | x_t = k, x_0 = i) = Q_t[j, k] Q_bar_{t-1}[i, j] / Q_bar_t[i, k].

The model predicts p~(x_0 | x_t) (the "x_0-parameterization", D3PM sec. 3.3) and the
reverse step mixes the posteriors over it,

    p(x_{t-1} | x_t) = sum_i p~(x_0 = i | x_t) q(x_{t-1} | x_t, x_0 = i),

summing over the x_0 compatible with x_t (Q_bar_t[i, k] > 0), with p~ renormalised on
them. D3PM's eq. 4 writes the normalised product (x_t Q_t^T) * (p~ Q_bar_{t-1}) instead;
both agree when p~ is one-hot, but only the mixture equals the true reverse
q(x_{t-1} | x_t) when p~ is the exact q(x_0 | x_t), which makes the ELBO of an exact
denoiser equal the data entropy (tested). Losses, per token, in nats:

- L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for t >= 2, and at t = 1 the
  same formula gives -log p~(x_0 | x_1) because q(x_0 | x_1, x_0) is one-hot;
- L_T = KL(q(x_T | x_0) || p(x_T)) with the chain's stationary law as prior;
- the hybrid loss L_vlb + lambda E[-log p~(x_0 | x_t)] (D3PM, sec. 3.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import torch
from torch.nn import functional as F

from minidiff.markov.corruption import CORRUPTIONS, Corruption, cumulative_matrix, step_matrix

__all__ = [
    "D3PM", "D3PM_LOSSES", "D3PMLoss", "HYBRID_CE_WEIGHT", "check_token_inputs", "posterior_matrix",
]  # fmt: skip

D3PMLoss = Literal["vlb", "hybrid", "ce"]
D3PM_LOSSES: tuple[str, ...] = get_args(D3PMLoss)
HYBRID_CE_WEIGHT = 0.01  # lambda of L_vlb + lambda * CE for text (D3PM, sec. 3.4 and 4.1)

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_token_inputs(y: torch.Tensor | None, num_bins: int | None) -> None:
    """Refuse what a discrete diffusion's training loss does not take: labels ``y`` and
    ``num_bins`` (the discretised Gaussian decoder's) must be None."""
    if y is not None or num_bins is not None:
        raise ValueError(f"a discrete diffusion takes no labels y and no num_bins (set "
                         f"training.num_bins=none), got y={y!r}, "
                         f"num_bins={num_bins!r}")  # fmt: skip


def posterior_matrix(kind: Corruption, beta: np.ndarray, t: int, K: int) -> np.ndarray:
    """q(x_{t-1} = j | x_t = k, x_0 = i) by Bayes from the chain's kernels (D3PM, eq. 3).

    Args:
        kind: a corruption of `minidiff.markov.corruption.CORRUPTIONS`.
        beta: (T + 1,) betas in paper indexing.
        t: the step, 1 <= t <= T.
        K: the number of states (the mask included for ``"absorbing"``).

    Returns:
        (K, K, K) float64 indexed [i, k, j]; NaN where q(x_t = k | x_0 = i) = 0.
    """
    ### BEGIN SOLUTION
    Q_t = step_matrix(kind, float(beta[t]), K)
    Q_bar_prev = cumulative_matrix(kind, beta, t - 1, K)
    Q_bar_t = cumulative_matrix(kind, beta, t, K)
    joint = Q_bar_prev[:, None, :] * Q_t.T[None, :, :]  # (i, k, j): q(x_{t-1}=j, x_t=k | i)
    with np.errstate(invalid="ignore", divide="ignore"):
        return joint / Q_bar_t[:, :, None]
    ### END SOLUTION


class D3PM:
    """A discrete diffusion with T steps on K states (Austin et al. 2021).

    Args:
        corruption: ``"uniform"`` or ``"absorbing"`` (mask = state K - 1).
        beta: (T + 1,) betas in paper indexing; ``beta[T] = 1`` makes q(x_T | x_0) the prior.
        K: the number of states, the mask included for ``"absorbing"``.
        loss, ce_weight: the loss `training_losses` trains with (see `losses`).
    """

    def __init__(
        self, corruption: Corruption, beta: np.ndarray, K: int, *, loss: D3PMLoss = "hybrid",
        ce_weight: float = HYBRID_CE_WEIGHT,
    ) -> None:  # fmt: skip
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; expected one of {CORRUPTIONS}")
        if loss not in D3PM_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {D3PM_LOSSES}")
        self.loss, self.ce_weight = loss, ce_weight  # the training loss of `training_losses`
        beta = np.asarray(beta, dtype=np.float64)
        self.corruption, self.K, self.T = corruption, int(K), beta.shape[0] - 1
        # (T + 1, K, K) tables straight from the layer-0 kernels; Q_0 = Q_bar_0 = I.
        self.Q = np.stack([step_matrix(corruption, float(b), K) for b in beta])
        self.Q_bar = np.stack(
            [cumulative_matrix(corruption, beta, t, K) for t in range(self.T + 1)]
        )
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def data_states(self) -> int:
        """The states a denoiser predicts: K, or K - 1 without the mask."""
        return self.K - 1 if self.corruption == "absorbing" else self.K

    def prior(self) -> np.ndarray:
        """(K,) the stationary law p(x_T): uniform, or all mass on the mask."""
        if self.corruption == "uniform":
            return np.full(self.K, 1.0 / self.K)
        return np.eye(self.K)[self.K - 1]

    def tables(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = (
                torch.as_tensor(self.Q, device=like.device, dtype=like.dtype),
                torch.as_tensor(self.Q_bar, device=like.device, dtype=like.dtype),
            )
        return self._cache[key]

    def _check_t(self, t: torch.Tensor, low: int) -> torch.Tensor:
        if t.ndim != 1 or t.dtype != torch.int64 or bool(((t < low) | (t > self.T)).any()):
            raise ValueError(f"t must be (B,) int64 in {low}..{self.T}, got {t}")
        return t

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None,
        u: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """x_t ~ Cat(x_0 Q_bar_t) for x0 (B, L) int64 and t (B,), by inverting the CDF at
        the uniforms u (B, L, 1) (drawn when None); returns (B, L) int64."""
        t = self._check_t(t, 0)
        _, Q_bar = self.tables(torch.empty(0, dtype=torch.float64, device=x0.device))
        probs = Q_bar[t][torch.arange(x0.shape[0])[:, None], x0]  # (B, L, K): row x0 of Q_bar_t
        if u is None:
            u = torch.rand(probs.shape[:-1] + (1,), generator=generator, dtype=torch.float64)
        return (
            torch.searchsorted(probs.cumsum(-1), u.to(x0.device)).squeeze(-1).clamp_max(self.K - 1)
        )

    def model_logits(self, output: torch.Tensor) -> torch.Tensor:
        """(B, L, K) logits of p~(x_0 | x_t) from a denoiser's (B, L, data_states) output."""
        if output.shape[-1] != self.data_states:
            raise ValueError(
                f"the denoiser must output {self.data_states} logits per token, "
                f"got shape {tuple(output.shape)}"
            )
        if self.corruption == "absorbing":  # x_0 is never the mask
            return F.pad(output, (0, 1), value=float("-inf"))
        return output

    def reverse_probs(
        self, logits: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """p(x_{t-1} | x_t) = sum_i p~(i | x_t) q(x_{t-1} | x_t, i) over compatible i.

        Args:
            logits: (B, L, K) logits of p~(x_0 | x_t); -inf rules a state out.
            xt: (B, L) int64 states; t: (B,) int64 steps in 1..T.

        Returns:
            (B, L, K) probabilities of x_{t-1}; one-hot logits give q(x_{t-1} | x_t, x_0).
        """
        t = self._check_t(t, 1)
        Q, Q_bar = self.tables(logits)
        rows = torch.arange(xt.shape[0], device=xt.device)[:, None]
        column_bar = Q_bar[t].transpose(1, 2)[rows, xt]  # (B, L, K_i): q(x_t | x_0 = i)
        column_step = Q[t].transpose(1, 2)[rows, xt]  # (B, L, K_j): q(x_t | x_{t-1} = j)
        compatible = column_bar > 0
        p0 = torch.softmax(logits.masked_fill(~compatible, float("-inf")), dim=-1)
        weight = torch.where(compatible, p0 / column_bar.clamp_min(1e-300), 0.0)
        return column_step * torch.bmm(weight, Q_bar[t - 1])  # (B, L, K_j)

    def vlb_terms(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """(B, L) nats: KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)).

        At t = 1 the same formula is -log p~(x_0 | x_1).
        """
        q = self.reverse_probs(F.one_hot(x0, self.K).to(logits.dtype).log(), xt, t)
        p = self.reverse_probs(logits, xt, t)
        return torch.where(
            q > 0, q * (q.clamp_min(1e-300).log() - p.clamp_min(1e-300).log()), 0.0
        ).sum(-1)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """(B, L) nats: KL(q(x_T | x_0) || p(x_T))."""
        q = torch.as_tensor(self.Q_bar[self.T], device=x0.device)[x0]  # (B, L, K) float64
        prior = torch.as_tensor(self.prior(), device=x0.device)
        return torch.where(q > 0, q * (q.clamp_min(1e-300) / prior).log(), 0.0).sum(-1)

    def losses(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        *,
        loss: D3PMLoss = "hybrid",
        ce_weight: float = HYBRID_CE_WEIGHT,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(B,) per-sequence training loss in nats per token at one random t ~ U{1..T}.

        ``"vlb"``: T L_{t-1} + L_T (an unbiased estimate of the negative ELBO);
        ``"hybrid"``: that plus ``ce_weight`` * (-log p~(x_0 | x_t)) (D3PM, sec. 3.4);
        ``"ce"``: the cross-entropy alone.
        """
        if loss not in D3PM_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {D3PM_LOSSES}")
        draws = self.training_draws(x0, generator)
        return self._losses_at(denoiser, x0, draws["t"], draws["u"], loss, ce_weight)

    def training_draws(self, x0: torch.Tensor, generator: torch.Generator | None = None
                       ) -> dict[str, torch.Tensor]:  # fmt: skip
        """The random draws of one training step for x0 (B, L): t (B,) ~ U{1..T} and the
        uniforms u (B, L, 1) of `q_sample`."""
        t = torch.randint(1, self.T + 1, (x0.shape[0],), generator=generator).to(x0.device)
        return {"t": t, "u": torch.rand((*x0.shape, 1), generator=generator, dtype=torch.float64)}

    def training_losses(self, denoiser: Denoiser, x0: torch.Tensor, *, t: torch.Tensor,
                        u: torch.Tensor, y: torch.Tensor | None = None,
                        num_bins: int | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """``{"loss", "t"}``: the (B,) loss ``self.loss`` at the draws of `training_draws`.

        Raises:
            ValueError: labels ``y`` or a ``num_bins`` (Gaussian decoders only) are given.
        """
        check_token_inputs(y, num_bins)
        return {"loss": self._losses_at(denoiser, x0, t, u, self.loss, self.ce_weight), "t": t}

    def nelbo(self, denoiser: Denoiser, x0: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """(B,) one-sample NELBO estimates of x0 (B, L) in nats per token (loss "vlb")."""
        return self.losses(denoiser, x0, loss="vlb", generator=generator)

    def _losses_at(self, denoiser, x0, t, u, loss, ce_weight) -> torch.Tensor:
        xt = self.q_sample(x0, t, u=u)
        logits = self.model_logits(denoiser(xt, t.to(torch.float32) / self.T))
        ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none").mean(-1)  # (B,)
        if loss == "ce":
            return ce
        vlb = self.T * self.vlb_terms(logits, x0, xt, t).mean(-1)
        vlb = vlb + self.prior_kl(x0).mean(-1).to(vlb.dtype)
        return vlb if loss == "vlb" else vlb + ce_weight * ce

    @torch.no_grad()
    def sample(
        self,
        denoiser: Denoiser,
        shape: tuple[int, int],
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling: x_T from the prior, then x_{t-1} ~ p(x_{t-1} | x_t) down to x_0.

        Returns:
            (B, L) int64 states.
        """
        prior = torch.as_tensor(self.prior()).expand(*shape, self.K)
        x = torch.multinomial(prior.reshape(-1, self.K), 1, generator=generator).reshape(shape)
        for step in range(self.T, 0, -1):
            t = torch.full((shape[0],), step, dtype=torch.int64)
            logits = self.model_logits(denoiser(x, t.to(torch.float32) / self.T).float())
            probs = self.reverse_probs(logits, x, t)
            x = torch.multinomial(probs.reshape(-1, self.K).clamp_min(0), 1, generator=generator)
            x = x.reshape(shape)
        return x
