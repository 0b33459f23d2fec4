"""Approximate posterior of the ordinal model: embedded Laplace, independent draws (``method="laplace"``).

The model is :func:`~pluralign.models.fit_bayes`'s ordinal (or bernoulli) model. Write
``θ = (α, β, ψ)`` for the cutpoints, the fixed effects and the log random-intercept SDs
``ψ = log σ``, and ``u`` for the spherical rater and item effects (``b = σ u``). The draws come
from nested approximations:

1. **Marginal posterior of θ.** The rater and item effects are integrated out by Laplace's method
   (the conditional mode ``u*`` and the log-determinant of ``A = Λ'Z'WZΛ + I``:
   :mod:`pluralign.models._clmm_kernels`, the algorithm of ``ordinal::clmm``), so

       log p(θ | y) ≈ −D(α, β, σ)/2 + log p(α) + log p(β) + log p(σ) + Σ ψ,

   with the exact gradient. Its mode ``θ̂`` (L-BFGS) and Hessian ``H`` (central differences of
   the gradient) give a Gaussian approximation ``N(θ̂, H⁻¹)``.
2. **Corrections where Laplace is poor.** With few ratings per rater or item, the Laplace
   marginal underestimates the SDs and the conditional posteriors of single effects are skewed.
   At each point below, the log marginal likelihood gains the second-order terms of the Laplace
   expansion (:mod:`pluralign.models._laplace_expansion`), and what lies beyond second order is
   added for each rater and each item alone (one-dimensional quadrature) and for each rater–item
   pair with a rating in common (two-dimensional quadrature); the second-order terms and the
   one-dimensional quadratures give the mean of ``u`` to use instead of its mode. The
   correction is deterministic and smooth in θ, and it does not degenerate with the number of
   random effects as importance sampling over all of them does (log weights with an SD of 3–4
   over 2,056 effects at paper scale).
3. **Non-Gaussian SDs.** ``p(ψ | y)`` is evaluated on a 5 × 5 grid of standardised coordinates
   ``t`` (``ψ = ψ̂ + L_ψ (z₀ + z)``, ``z = t`` scaled per half-axis from the log density at
   ``t = ±2``: INLA's skewness correction), each point profiling ``(α, β)`` by one Newton step
   from the Gaussian's conditional mean (the correction's gradient in ``(α, β)`` taken at the
   mode) and adding ``−½ log|H_{αβ}(ψ)|`` (linear in ``ψ``, from the block Hessian at ``±1``
   unit). The grid is centred at ``z₀``, the maximum of a quadratic fitted to the corrected log
   density on a 3 × 3 stencil (up to three steps): the corrections of step 2 move the SDs' mode
   away from the Laplace mode by more than one posterior SD at paper scale, and a grid around
   the Laplace mode then misplaces their mass. ``r(t) = log p(ψ|y) − log φ(t)`` is fitted by a
   cubic and ``t`` is drawn from the split normal times ``e^{r(t)}`` by rejection (outside the
   grid ``r`` keeps its edge value). ``(α, β) | ψ`` is Gaussian around the profiled mode with
   covariance ``H_{αβ}⁻¹`` taken at the grid's centre (INLA's "Gaussian" strategy).
4. **Random effects.** ``u | θ ~ N(ū(θ), A⁻¹)``, with ``ū`` linearised around the nearest grid
   point (the derivative of ``u*`` in ``θ`` by the implicit function theorem: ``A⁻¹`` times the
   derivative of the score) and ``A`` factored there by a block Cholesky (the larger factor's
   block is diagonal, the smaller one's Schur complement is dense). ``ū`` is the mean of step 2:
   with ~5 ratings per unit the conditional posteriors are skewed, and the sum of their
   mode-to-mean shifts moves the cutpoints.

Every draw is independent of the others (no Markov chain), so the bulk ESS of the draws is their
number up to Monte Carlo noise and R-hat is 1 up to noise: both are still computed and checked.
What the ESS cannot show is the error of the approximation itself. It is checked against full
NUTS (2 × 3,000 draws) in the tests and in ``benchmarks/bench_bayes.py``: on 150 raters × 5
ratings and 50 items × 15 ratings, on POPQUORN (262 raters, 1,500 items) and at paper scale
(1,056 raters × 5 ratings, 1,000 items × 5), every posterior mean of the cutpoints, fixed
effects and SDs is within 0.1 posterior SD of NUTS (paper scale: 0.035 at most, against two
NUTS runs). Three checks are added to ``diagnostics()``: ``laplace_mode``, ``laplace_grid``
(the grid holds the SDs' mass) and ``laplace_expansion`` (the rater–item pair terms, the last
ones included, move the SDs' log density by less than ``EXPANSION_MAX`` per posterior SD, so
the terms beyond them are taken as negligible); a failed check gives a
:class:`~pluralign.ConvergenceWarning` that says to refit with ``method="nuts"``. The item
effects are centred after drawing and their mean moved into the cutpoints, so the draws have the zero-sum parametrisation of the NUTS model.

References
----------
Rue, H., Martino, S. & Chopin, N. (2009). Approximate Bayesian inference for latent Gaussian
models by using integrated nested Laplace approximations. JRSS B 71(2), 319–392.
Shun, Z. & McCullagh, P. (1995). Laplace approximation of high dimensional integrals. JRSS B
57(4), 749–760.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.optimize as sopt
import scipy.sparse as sp

from pluralign._compat import require
from pluralign.models._bayes_model import ModelData, Priors, initial_values
from pluralign.models._clmm_kernels import _Laplace, _observations, _small_columns
from pluralign.models._laplace_expansion import (
    RatingPairs,
    log_lik,
    loglik_derivatives,
    pair_remainder,
    second_order,
    unit_second_order,
)

#: Standardised grid of the log-SDs: coordinates of each axis.
GRID = np.linspace(-3.0, 3.0, 5)
#: Largest change of the rater–item pair terms per posterior SD of the log-SDs (log density
#: units, so about the posterior SDs they move the SDs' means by) at which the terms beyond them
#: are taken as negligible (at paper scale they change by 0.10 and the means agree with NUTS
#: within 0.035 SD; without them the means were 0.12 SD off).
EXPANSION_MAX = 0.5
#: Gradient norm (of −log posterior, per parameter) under which the mode counts as found.
MODE_TOL = 1e-3
#: Gauss–Hermite nodes of the per-unit integrals of :func:`unit_quadrature`.
N_NODES = 9


# ----------------------------------------------------------------------------- random effects
@dataclass(frozen=True)
class BlockGaussian:
    """``N(0, A⁻¹)`` and ``A⁻¹ r`` for ``A = Λ'Z'WZΛ + I`` of two crossed factors.

    ``A = [[D, B], [B', C]]`` with ``D`` and ``C`` diagonal (the big and small factor's blocks)
    and ``B = σ_b σ_s N_w`` (``N_w``: summed weights of each big × small pair); the Schur
    complement ``S = C − B'D⁻¹B = LL'`` is factored densely.
    """

    big: int
    d: np.ndarray
    B: sp.csr_matrix
    L: np.ndarray

    @classmethod
    def build(cls, codes: tuple[np.ndarray, np.ndarray], q: tuple[int, int], w, sigma):
        big = 0 if q[0] >= q[1] else 1
        gb, gs = codes[big], codes[1 - big]
        sb, ss = float(sigma[big]), float(sigma[1 - big])
        d = sb * sb * np.bincount(gb, weights=w, minlength=q[big]) + 1.0
        c = ss * ss * np.bincount(gs, weights=w, minlength=q[1 - big]) + 1.0
        B = sp.csr_matrix((w * sb * ss, (gb, gs)), shape=(q[big], q[1 - big]))
        S = -(B.T @ sp.diags(1.0 / d) @ B).toarray()
        S[np.diag_indices_from(S)] += c
        return cls(big, d, B, sla.cholesky(S, lower=True, check_finite=False))

    @classmethod
    def from_factor(cls, f, codes, q, w, sigma):
        """The same, reusing the dense Schur factor of a :class:`CrossedSystem` factor ``f``."""
        L = getattr(f, "L", None)
        s = f.system
        if not isinstance(L, np.ndarray) or L.shape != (s.qs, s.qs):
            return cls.build(codes, q, w, sigma)
        return cls(s.big, f.d1, sp.csr_matrix(f.tb * f.ts * s.N), L)

    def _pair(self, xb, xs):
        return (xb, xs) if self.big == 0 else (xs, xb)

    def solve(self, r: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``A⁻¹ r`` for ``r = (r1, r2)`` in factor order (columns allowed)."""
        rb, rs = (r[0], r[1]) if self.big == 0 else (r[1], r[0])
        d = self.d if rb.ndim == 1 else self.d[:, None]
        xs = sla.cho_solve((self.L, True), rs - self.B.T @ (rb / d), check_finite=False)
        return self._pair((rb - self.B @ xs) / d, xs)

    def draw(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` draws of ``N(0, A⁻¹)`` as columns, in factor order."""
        return self.transform(
            rng.standard_normal((len(self.d), k)), rng.standard_normal((len(self.L), k))
        )

    def transform(self, xi_b: np.ndarray, xi_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` with ``A = UU'``, ``U'x = ξ`` (so ``x'Ax = |ξ|²``) for standard normal columns
        ``ξ = (ξ_big, ξ_small)``: draws of ``N(0, A⁻¹)`` in factor order."""
        xs = sla.solve_triangular(self.L, xi_s, lower=True, trans="T", check_finite=False)
        d = self.d[:, None]
        xb = xi_b / np.sqrt(d) - (self.B @ xs) / d
        return self._pair(xb, xs)


# ----------------------------------------------------------------------------- θ posterior
class LaplacePosterior:
    """``−log p(θ | y)`` of the ordinal model with the random effects integrated (Laplace).

    ``θ = (α, β, ψ)``: the K−1 cutpoints, the p fixed-effect coefficients (``md.coef_names``) and
    ``ψ = log(σ_rater, σ_item)``. Bernoulli: one cutpoint ``α = −intercept``.
    """

    def __init__(self, md: ModelData, priors: Priors | None = None):
        self.md = md
        self.priors = Priors() if priors is None else priors
        self.K = 2 if md.family == "bernoulli" else md.n_categories
        self.K1 = self.K - 1
        self.p = md.n_coef
        self.lap = _Laplace(
            md.design_matrix(),
            md.y.astype(np.intp),
            md.rater_codes,
            md.item_codes,
            self.K,
            "logit",
        )
        pr = self.priors
        cut_sd = pr.intercept_sd if md.family == "bernoulli" else pr.cutpoint_sd
        self.prior_sd = np.concatenate([np.full(self.K1, cut_sd), np.full(self.p, pr.beta_sd)])
        self.sigma_scale = np.array([pr.sigma_rater, pr.sigma_item])
        self.n_evals = 0
        self._pairs: RatingPairs | None = None

    @property
    def dim(self) -> int:
        return self.K1 + self.p + 2

    def start(self) -> np.ndarray:
        init = initial_values(self.md)
        if self.md.family == "bernoulli":
            cut = -np.atleast_1d(init["intercept"])
        else:
            cut = np.asarray(init["cutpoints"], dtype=float)
        return np.concatenate([cut, np.zeros(self.p), np.log([0.5, 0.5])])

    def _prior(self, x):
        """log prior (up to a constant) in θ and its gradient."""
        ab, psi = x[:-2], x[-2:]
        sigma = np.exp(psi)
        v = -0.5 * np.sum((ab / self.prior_sd) ** 2)
        v += float(np.sum(-0.5 * (sigma / self.sigma_scale) ** 2 + psi))
        g_ab = -ab / self.prior_sd**2
        g_psi = -((sigma / self.sigma_scale) ** 2) + 1.0
        return v, np.concatenate([g_ab, g_psi])

    def _to_clmm(self, x):
        return np.concatenate([x[:-2], np.exp(x[-2:])])

    def _combine(self, x, dev, grad):
        lp, glp = self._prior(x)
        g = grad / 2.0
        g[-2:] *= np.exp(x[-2:])
        return dev / 2.0 - lp, g - glp

    def value_and_gradient(self, x):
        """``−log p(θ|y)`` (up to a constant) and its gradient."""
        x = np.asarray(x, dtype=float)
        self.n_evals += 1
        if not np.all(np.isfinite(x)) or np.any(np.abs(x[-2:]) > 30):
            return np.inf, np.zeros_like(x)
        dev, grad = self.lap.value_and_gradient(self._to_clmm(x))
        if not np.isfinite(dev):
            return np.inf, np.zeros_like(x)
        return self._combine(x, dev, grad)

    def at(self, x):
        """As :meth:`value_and_gradient`, also returning the mode ``u*``, its observations and the
        factor of ``A`` there (``None`` for all three where θ is infeasible)."""
        self.n_evals += 1
        lap = self.lap
        alpha, beta, sigma = lap.split(self._to_clmm(x))
        if np.any(np.diff(alpha) <= 0):
            return np.inf, None, None, None, None
        res = lap.mode(alpha, beta, sigma, lap.u)
        if res is None:
            return np.inf, None, None, None, None
        u, obs, f, pdev = res
        lap.u = u
        grad = lap._gradient(alpha, sigma, u, obs, f)
        value, g = self._combine(x, pdev + f.logdet, grad)
        return value, g, u, obs, f

    def expansion(
        self, x, u, f, *, pairs: bool = True
    ) -> tuple[float, tuple[np.ndarray, np.ndarray], float]:
        """``log`` (integrated likelihood / its Laplace value) at θ = ``x``, the mean minus the
        mode of the random effects, and the rater–item pair terms of the correction: second
        order, plus what each rater, item and rater–item pair adds beyond it
        (:mod:`pluralign.models._laplace_expansion`). ``pairs=False`` leaves the pair terms out
        (and returns 0 for them)."""
        lap = self.lap
        alpha, beta, sigma = lap.split(self._to_clmm(x))
        upper, lower = lap._bounds(alpha)
        eta = lap._eta(lap.X @ beta, sigma, u)
        w, l3, l4 = loglik_derivatives(eta, upper, lower)
        big = lap.sys.big
        cols = _small_columns(f, lap.q[big], lap.q[1 - big])
        i11, i22, i12, _, _ = lap._inverse_blocks(f, sigma, w, cols)
        h = sigma[0] ** 2 * i11 + sigma[1] ** 2 * i22 + 2.0 * sigma[0] * sigma[1] * i12
        if self._pairs is None:
            self._pairs = RatingPairs.build(lap.g, lap.q)

        def solve(r):
            return lap._pair(*f.solve(*lap._bs(r)))

        joint = second_order(
            g=lap.g,
            q=lap.q,
            big=big,
            sigma=sigma,
            w=w,
            l3=l3,
            l4=l4,
            inv_bs=cols[0],
            inv_ss=cols[1],
            h=h,
            solve=solve,
            pairs=self._pairs,
        )
        alone, alone_shift = unit_second_order(lap.g, lap.q, sigma, w, l3, l4)
        exact, exact_shift = unit_quadrature(self, x, u)
        rest = (exact[0] - alone[0], exact[1] - alone[1])
        beyond = 0.0
        if pairs:
            terms = pair_remainder(
                g=lap.g,
                q=lap.q,
                sigma=sigma,
                u=u,
                eta=eta,
                upper=upper,
                lower=lower,
                w=w,
                l3=l3,
                l4=l4,
                unit_rest=rest,
            )
            beyond = float(terms.sum())
        shift = tuple(joint.shift[k] + exact_shift[k] - alone_shift[k] for k in (0, 1))
        total = joint.total + float(rest[0].sum() + rest[1].sum()) + beyond
        return total, (shift[0], shift[1]), beyond

    def hessian(self, x, h: float = 1e-4) -> np.ndarray:
        """Symmetrised central differences of the exact gradient."""
        H = np.empty((len(x), len(x)))
        for j in range(len(x)):
            e = np.zeros_like(x)
            e[j] = h * max(1.0, abs(x[j]))
            H[:, j] = (self.value_and_gradient(x + e)[1] - self.value_and_gradient(x - e)[1]) / (
                2 * e[j]
            )
        return (H + H.T) / 2.0

    def block_hessian(self, x, m: int, h: float = 1e-4) -> np.ndarray:
        """Forward differences of the gradient: the Hessian block of the first ``m`` parameters."""
        g0 = self.value_and_gradient(x)[1][:m]
        H = np.empty((m, m))
        for j in range(m):
            e = np.zeros_like(x)
            e[j] = h * max(1.0, abs(x[j]))
            H[:, j] = (self.value_and_gradient(x + e)[1][:m] - g0) / e[j]
        return (H + H.T) / 2.0

    def mode(self):
        """Posterior mode of θ, its Hessian and whether the optimiser converged."""
        x = self.start()
        # L-BFGS-B can stop early on its relative-reduction test (the inner modes are warm-started,
        # so the criterion is not exactly smooth): restart it from where it stopped
        for _ in range(4):
            res = sopt.minimize(
                self.value_and_gradient,
                x,
                jac=True,
                method="L-BFGS-B",
                options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 500, "maxcor": 20},
            )
            x = np.asarray(res.x, dtype=float)
            if np.max(np.abs(res.jac)) < MODE_TOL:
                break
        H = self.hessian(x)
        _, g = self.value_and_gradient(x)
        # one Newton polish (L-BFGS-B stops early on a flat optimum)
        try:
            step = np.linalg.solve(H, g)
            trial = x - step
            if self.value_and_gradient(trial)[0] <= self.value_and_gradient(x)[0]:
                x = trial
                _, g = self.value_and_gradient(x)
        except np.linalg.LinAlgError:
            pass
        pd_ok = bool(np.all(np.linalg.eigvalsh(H) > 0))
        return x, H, bool(np.max(np.abs(g)) < MODE_TOL) and pd_ok, g

    def log_joint(self, x, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
        """``log p(y | u, θ) − |u|²/2`` for columns of random effects ``u1``, ``u2``."""
        lap = self.lap
        alpha, beta, sigma = lap.split(self._to_clmm(x))
        upper, lower = lap._bounds(alpha)
        eta = (lap.X @ beta)[:, None] + sigma[0] * u1[lap.g[0]] + sigma[1] * u2[lap.g[1]]
        obs = _observations(eta, upper[:, None], lower[:, None], "logit", derivatives=False)
        if obs is None:
            return np.full(u1.shape[1], -np.inf)
        return obs.loglik.sum(0) - 0.5 * ((u1**2).sum(0) + (u2**2).sum(0))

    def score_derivative(self, x, u, obs) -> tuple[np.ndarray, np.ndarray]:
        """``∂(Λ'Z'g)/∂θ`` at the mode: columns per element of θ, in factor order (1, 2)."""
        lap = self.lap
        g1, g2 = lap.g
        q1, q2 = lap.q
        sigma = np.exp(x[-2:])
        K1 = self.K1
        n_par = self.dim
        cols = np.zeros((lap.n, n_par))
        for k in range(K1):
            up = lap.has_up & (lap.up_idx == k)
            lo = lap.has_lo & (lap.lo_idx == k)
            cols[up, k] += obs.g_up[up]
            cols[lo, k] += obs.g_lo[lo]
        cols[:, K1 : K1 + self.p] = -obs.w[:, None] * lap.X
        cols[:, -2] = -obs.w * sigma[0] * u[0][g1]
        cols[:, -1] = -obs.w * sigma[1] * u[1][g2]
        out1 = np.stack([np.bincount(g1, cols[:, j], q1) for j in range(n_par)], 1) * sigma[0]
        out2 = np.stack([np.bincount(g2, cols[:, j], q2) for j in range(n_par)], 1) * sigma[1]
        # the direct dependence of Λ = diag(σ) on ψ: ∂(σ_k Z_k'g)/∂ψ_k = σ_k Z_k'g
        out1[:, -2] += sigma[0] * np.bincount(g1, obs.g, q1)
        out2[:, -1] += sigma[1] * np.bincount(g2, obs.g, q2)
        return out1, out2


def unit_quadrature(
    post: LaplacePosterior, x: np.ndarray, u: tuple[np.ndarray, np.ndarray]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Each rater's and item's effect integrated alone, by adaptive Gauss–Hermite quadrature.

    For each unit of each factor, the other factor's effects held at the mode ``u*``, the
    integral over its own effect of its ratings' likelihood times the standard normal density
    is computed with ``N_NODES`` nodes centred at ``u*_j`` and scaled by the conditional
    curvature. Returns ``log(quadrature_j / Laplace_j)`` of every unit and the conditional mean
    minus the mode of each effect (one array per factor each). One-dimensional integrals do not
    degenerate with the number of units, as joint importance draws do.
    """
    lap = post.lap
    alpha, beta, sigma = lap.split(post._to_clmm(x))
    upper, lower = lap._bounds(alpha)
    base = lap.X @ beta
    z, w = np.polynomial.hermite_e.hermegauss(N_NODES)
    log_w = np.log(w / w.sum())[:, None]
    ratios, shifts = [], []
    for k in (0, 1):
        g, q = lap.g[k], lap.q[k]
        offset = base + sigma[1 - k] * u[1 - k][lap.g[1 - k]]
        obs = _observations(offset + sigma[k] * u[k][g], upper, lower, "logit", derivatives=False)
        if obs is None:
            raise FloatingPointError("a category probability underflows at the mode")
        scale = 1.0 / np.sqrt(1.0 + sigma[k] ** 2 * np.bincount(g, obs.w, q))
        f0 = np.bincount(g, obs.loglik, q) - 0.5 * u[k] ** 2
        t = u[k][None, :] + scale[None, :] * z[:, None]  # (nodes, q)
        eta = offset[None, :] + sigma[k] * t[:, g]
        ll = np.stack([np.bincount(g, row, q) for row in log_lik(eta, upper, lower)])
        log_ratio = ll - 0.5 * t**2 - f0[None, :] + 0.5 * z[:, None] ** 2 + log_w
        top = log_ratio.max(axis=0)
        wts = np.exp(log_ratio - top)
        norm = wts.sum(axis=0)
        ratios.append(top + np.log(norm))
        shifts.append(scale * (z @ wts) / norm)
    return (ratios[0], ratios[1]), (shifts[0], shifts[1])


# ----------------------------------------------------------------------------- sampling
def _quadratic_basis(z: np.ndarray) -> np.ndarray:
    z1, z2 = z[:, 0], z[:, 1]
    return np.column_stack([np.ones_like(z1), z1, z2, z1 * z1, z1 * z2, z2 * z2])


def _cubic_basis(z: np.ndarray) -> np.ndarray:
    z1, z2 = z[:, 0], z[:, 1]
    return np.column_stack(
        [
            np.ones_like(z1),
            z1,
            z2,
            z1 * z1,
            z1 * z2,
            z2 * z2,
            z1**3,
            z1 * z1 * z2,
            z1 * z2**2,
            z2**3,
        ]
    )


@dataclass
class _GridPoint:
    z: np.ndarray  # standardised log-SDs (stretched)
    x: np.ndarray  # θ where the random effects were linearised
    u: tuple[np.ndarray, np.ndarray]
    J: tuple[np.ndarray, np.ndarray]  # du*/dθ
    gauss: BlockGaussian
    log_density: float
    shift: np.ndarray  # Newton step of (α, β) from the Gaussian's conditional mean
    rest: float  # rater–item pair terms of the correction (exact or interpolated)


def laplace_draws(
    md: ModelData,
    priors: Priors | None,
    *,
    n_draws: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict]:
    """Independent approximate posterior draws of the ordinal (or bernoulli) model.

    Returns ``(draws, checks, info)``: draws keyed by the NUTS model's variable names
    (``beta``, ``cutpoints`` or ``intercept``, ``sigma_rater``, ``sigma_item``, ``z_rater``,
    ``z_item``; draws first), check rows (check, parameter, value, ok, note) and facts about the
    approximation (mode, Hessian, evaluations, acceptance rate).
    """
    post = LaplacePosterior(md, priors)
    rng = np.random.default_rng(seed)
    K1, p = post.K1, post.p
    m = K1 + p
    x_hat, H, converged, g_hat = post.mode()
    cov = np.linalg.inv(H)
    cov = (cov + cov.T) / 2.0
    S_psi = cov[m:, m:]
    L_psi = np.linalg.cholesky(S_psi)
    reg = cov[:m, m:] @ np.linalg.inv(S_psi)  # E[(α,β) | ψ] slope
    H_ab = H[:m, :m]
    cond_cov = np.linalg.inv(H_ab)
    sigma_hat = np.exp(x_hat[-2:])

    # ---- grid over the log-SDs, in standardised coordinates t stretched per axis and side
    def evaluate(x, pairs=True):
        value, grad, u, obs, f = post.at(x)
        if not np.isfinite(value):
            return None
        gauss = BlockGaussian.from_factor(f, post.lap.g, post.lap.q, obs.w, np.exp(x[m:]))
        corr, shift, rest = post.expansion(x, u, f, pairs=pairs)
        return value, corr, grad, u, obs, gauss, shift, rest

    # gradient in (α, β) of the correction, at the mode (forward differences)
    base = evaluate(x_hat)
    if base is None:
        raise RuntimeError("the Laplace approximation failed at the posterior mode")
    sd_ab = np.sqrt(np.diag(cond_cov))
    grad_c = np.zeros(m)
    for k in range(m):
        x = x_hat.copy()
        x[k] += 0.25 * sd_ab[k]
        other = evaluate(x)
        if other is not None and np.isfinite(other[1]):
            grad_c[k] = (other[1] - base[1]) / (0.25 * sd_ab[k])

    # how log|H_αβ(ψ)| changes with ψ (one standardised unit along each axis): the Laplace
    # integral over (α, β) contributes −½ log|H_αβ(ψ)| to the density of ψ
    logdet_0 = np.linalg.slogdet(post.block_hessian(x_hat, m))[1]
    logdet_slope = np.zeros(2)
    for k in range(2):
        dpsi = L_psi[:, k]
        x = np.concatenate([x_hat[:m] + reg @ dpsi, x_hat[m:] + dpsi])
        sign, logdet = np.linalg.slogdet(post.block_hessian(x, m))
        if sign > 0:
            logdet_slope[k] = logdet - logdet_0

    # the rater–item pair terms change slowly with ψ (0.1 log units per posterior SD at paper
    # scale) but cost a third of an evaluation: exact on the first 3 × 3 stencil around the
    # Laplace mode, a quadratic in z fitted to those nine values everywhere else
    pair_fit: list[np.ndarray] = []

    def profile(z_eff):
        psi = x_hat[m:] + L_psi @ z_eff
        x = np.concatenate([x_hat[:m] + reg @ (psi - x_hat[m:]), psi])
        res = evaluate(x, pairs=not pair_fit)
        if res is None:
            return None
        value, corr, grad, u, obs, gauss, u_shift, rest = res
        if pair_fit:
            rest = float(_quadratic_basis(z_eff[None, :])[0] @ pair_fit[0])
            corr += rest
        g = grad[:m] - grad_c
        step = -np.linalg.solve(H_ab, g)
        # profiled log density of ψ: the quadratic model's maximum over (α, β)
        log_density = -value + corr - 0.5 * float(g @ step) - 0.5 * float(logdet_slope @ z_eff)
        J = gauss.solve(post.score_derivative(x, u, obs))
        u_mean = (u[0] + u_shift[0], u[1] + u_shift[1])
        return _GridPoint(z_eff, x, u_mean, J, gauss, log_density, step, rest)

    # the corrections move the mode of the SDs away from the Laplace mode: centre the grid on
    # the maximum of a quadratic fitted to a 3 × 3 stencil of the corrected log density
    z0 = np.zeros(2)
    stencil = np.array(list(product((-1.0, 0.0, 1.0), repeat=2)))
    expansion = np.inf
    for _ in range(3):
        found = [(d, profile(z0 + d)) for d in stencil]
        found = [(d, pt) for d, pt in found if pt is not None]
        if len(found) < 6:
            break
        D = np.array([d for d, _ in found])
        if not pair_fit:
            rests = np.array([pt.rest for _, pt in found])
            pair_fit.append(np.linalg.lstsq(_quadratic_basis(D), rests, rcond=None)[0])
            # how much the pair terms (the last level of the cluster expansion included) move
            # the log density of the SDs per posterior SD: the levels beyond them are smaller
            middle = [pt.rest for d, pt in found if not d.any()]
            if middle:
                expansion = max(
                    (
                        abs(pt.rest - middle[0]) / float(np.linalg.norm(d))
                        for d, pt in found
                        if d.any()
                    ),
                    default=np.inf,
                )
        c = np.linalg.lstsq(
            _quadratic_basis(D), np.array([pt.log_density for _, pt in found]), rcond=None
        )[0]
        Hq = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
        if np.any(np.linalg.eigvalsh(Hq) >= 0):
            break
        step = np.clip(-np.linalg.solve(Hq, c[1:3]), -2.0, 2.0)
        z0 = z0 + step
        if np.max(np.abs(step)) < 0.05:
            break
    if not pair_fit:
        raise RuntimeError("the Laplace approximation failed around the posterior mode")
    centre = profile(z0)
    if centre is None:
        raise RuntimeError("the Laplace approximation failed at the posterior mode")
    # (α, β) | ψ: the curvature where the SDs' mass is (the corrections move it away from the
    # Laplace mode, and larger SDs leave the fixed effects less determined)
    H_centre = post.block_hessian(centre.x, m)
    if np.all(np.linalg.eigvalsh(H_centre) > 0):
        cond_cov = np.linalg.inv(H_centre)
    L_ab = np.linalg.cholesky((cond_cov + cond_cov.T) / 2.0)
    # skewness: the scale of each half-axis from the drop of the log density at t = ±2 (INLA's
    # skewness correction; 1 for a Gaussian)
    scale = np.ones((2, 2))  # [axis, side]: side 0 negative, 1 positive
    for k, (side, sign) in product(range(2), ((0, -1.0), (1, 1.0))):
        z = z0.copy()
        z[k] += 2.0 * sign
        pt = profile(z)
        drop = np.inf if pt is None else centre.log_density - pt.log_density
        scale[k, side] = np.clip(np.sqrt(2.0 / max(drop, 1e-3)), 0.5, 4.0)

    def stretch(t):
        return z0 + t * np.where(t < 0, scale[:, 0], scale[:, 1])

    points: list[_GridPoint] = []
    grid_t = []
    for t in product(GRID, GRID):
        t = np.asarray(t)
        pt = centre if not t.any() else profile(stretch(t))
        if pt is not None:
            points.append(pt)
            grid_t.append(t)
    if len(points) < 12:
        raise RuntimeError(
            f"the Laplace approximation failed at {25 - len(points)} of 25 grid points of the "
            "random-intercept SDs; use method='nuts'"
        )
    T = np.array(grid_t)
    r = np.array([pt.log_density for pt in points]) + 0.5 * np.sum(T**2, axis=1)
    r -= r.max()
    basis = _cubic_basis(T)
    coef_r = np.linalg.lstsq(basis, r, rcond=None)[0]
    coef_shift = np.linalg.lstsq(basis, np.array([pt.shift for pt in points]), rcond=None)[0]
    fine = np.array(list(product(*(np.linspace(GRID[0], GRID[-1], 41),) * 2)))
    r_max = float((_cubic_basis(fine) @ coef_r).max())
    # ---- draw t by rejection from the split normal, then (α, β) | ψ, then u | θ
    positive = scale[:, 1] / scale.sum(axis=1)
    ts, n_proposed = [], 0
    while sum(len(a) for a in ts) < n_draws:
        prop = np.abs(rng.standard_normal((2 * n_draws, 2)))
        prop *= np.where(rng.random((2 * n_draws, 2)) < positive, 1.0, -1.0)
        n_proposed += len(prop)
        rz = _cubic_basis(np.clip(prop, GRID[0], GRID[-1])) @ coef_r
        keep = np.log(rng.random(len(prop))) < rz - r_max
        ts.append(prop[keep])
    t = np.concatenate(ts)[:n_draws]
    psi = x_hat[m:] + stretch(t) @ L_psi.T
    ab_mean = (
        x_hat[:m]
        + (psi - x_hat[m:]) @ reg.T
        + _cubic_basis(np.clip(t, GRID[0], GRID[-1])) @ coef_shift
    )
    ab = ab_mean + rng.standard_normal((n_draws, m)) @ L_ab.T
    bad = np.any(np.diff(ab[:, :K1], axis=1) <= 0, axis=1) if K1 > 1 else np.zeros(n_draws, bool)
    for _ in range(100):
        if not bad.any():
            break
        ab[bad] = ab_mean[bad] + rng.standard_normal((int(bad.sum()), m)) @ L_ab.T
        bad = np.any(np.diff(ab[:, :K1], axis=1) <= 0, axis=1)
    theta = np.column_stack([ab, psi])
    near = np.argmin(((t[:, None, :] - T[None, :, :]) ** 2).sum(-1), axis=1)
    u1 = np.empty((n_draws, post.lap.q[0]))
    u2 = np.empty((n_draws, post.lap.q[1]))
    for j, pt in enumerate(points):
        idx = np.flatnonzero(near == j)
        if not idx.size:
            continue
        delta = (theta[idx] - pt.x).T  # (n_par, k)
        e1, e2 = pt.gauss.draw(len(idx), rng)
        u1[idx] = (pt.u[0][:, None] + pt.J[0] @ delta + e1).T
        u2[idx] = (pt.u[1][:, None] + pt.J[1] @ delta + e2).T
    sigma = np.exp(psi)
    item = sigma[:, 1:2] * u2
    centre = item.mean(axis=1)
    cut = theta[:, :K1] - centre[:, None]
    draws = {
        "beta": theta[:, K1:m],
        "sigma_rater": sigma[:, 0],
        "sigma_item": sigma[:, 1],
        "z_rater": u1,
        "z_item": (item - centre[:, None]) / sigma[:, 1:2],
    }
    if md.family == "bernoulli":
        draws["intercept"] = -cut[:, 0]
    else:
        draws["cutpoints"] = cut
    accept = n_draws / n_proposed
    edge = [pt for pt, tt in zip(points, T, strict=True) if np.max(np.abs(tt)) == GRID[-1]]
    edge_mass = max((pt.log_density for pt in edge), default=-np.inf) - max(
        pt.log_density for pt in points
    )
    checks = pd.DataFrame(
        [
            (
                "laplace_mode",
                "all",
                float(np.max(np.abs(g_hat))),
                converged,
                f"gradient of −log posterior at its mode < {MODE_TOL}, Hessian positive definite",
            ),
            (
                "laplace_grid",
                "sigma_rater, sigma_item",
                float(edge_mass),
                bool(edge_mass < -2.5),
                "log density of the SDs on the grid's edge, relative to its peak, < −2.5",
            ),
            (
                "laplace_expansion",
                "sigma_rater, sigma_item",
                expansion,
                bool(expansion < EXPANSION_MAX),
                "change of the rater–item pair terms of the Laplace correction per posterior SD "
                f"of the log-SDs < {EXPANSION_MAX} (otherwise the terms beyond them may matter: "
                "compare with method='nuts')",
            ),
        ],
        columns=["check", "parameter", "value", "ok", "note"],
    )
    info = {
        "mode": x_hat,
        "hessian": H,
        "sigma_mode": sigma_hat,
        "n_evals": post.n_evals,
        "acceptance": accept,
        "grid_points": len(points),
        "correction": float(base[1]),
        "expansion": expansion,
        "grid": T,
        "skewness_scale": scale,
        "grid_log_density": r,
        "fit_max": r_max,
    }
    return draws, checks, info


def laplace_idata(
    md: ModelData,
    priors: Priors | None,
    *,
    draws: int,
    chains: int,
    seed: int,
):
    """:func:`laplace_draws` as an ``InferenceData`` shaped like NUTS output (chains × draws).

    The draws are independent: ``chains`` only splits them so that R-hat can be computed.
    """
    az = require("arviz", "Bayesian models")
    out, checks, info = laplace_draws(md, priors, n_draws=draws * chains, seed=seed)
    coords = {
        "coef": md.coef_names,
        "rater": np.arange(md.n_raters) if md.rater_ids is None else md.rater_ids.astype(str),
        "item": np.arange(md.n_items) if md.item_ids is None else md.item_ids.astype(str),
        "cut": np.arange(max(md.n_categories - 1, 1)),
    }
    dims = {"beta": ["coef"], "cutpoints": ["cut"], "z_rater": ["rater"], "z_item": ["item"]}
    posterior = {k: v.reshape((chains, draws, *v.shape[1:])) for k, v in out.items()}
    idata = az.from_dict(posterior=posterior, coords=coords, dims=dims)
    idata.posterior.attrs["inference"] = "embedded Laplace (independent draws)"
    return idata, checks, info
