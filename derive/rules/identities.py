"""vec and Kronecker identities proven for all sizes, by index calculus.

Sizes are SymPy symbols (positive integers), entries are ``IndexedBase`` symbols, and
each identity is reduced entry by entry with the definitions (0-based):

- matrix product:  (PQ)[i, j] = Σ_a P[i, a] Q[a, j]
- vec (column-major), M with p rows:  vec(M)[j·p + i] = M[i, j]
- Kronecker, Q of size r×s:  (P ⊗ Q)[α·r + β, γ·s + δ] = P[α, γ] Q[β, δ]

A sum over a Kronecker or vec index u ∈ [0, qr) is split into the pair (b, a) with
u = b·q + a, 0 ≤ a < q (the mixed-radix bijection).  The proof then checks, with SymPy
and symbolic sizes, that (1) the index maps on both sides are the same polynomial in the
indices and sizes, (2) Kronecker-delta sums collapse on their range, and (3) the
summands agree after ``expand``.  No step fixes a size, so the verdict is "proven for all
sizes".  Wrong variants are refuted by a concrete counterexample at small sizes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
from sympy import Expr, IndexedBase, KroneckerDelta, Matrix, Sum

from derive.ops.matrices import kron, kron_index, matmul, vec, vec_index

ALL_SIZES = "proven for all sizes"


@dataclass(frozen=True)
class IdentityResult:
    name: str
    statement: str
    verdict: str  # "proven for all sizes" | "refuted" | "checked for sizes ..." | "unproven"
    steps: list[str] = field(default_factory=list)
    counterexample: str | None = None


def _nonneg(*names: str) -> list[sympy.Symbol]:
    return [sympy.Symbol(n, integer=True, nonnegative=True) for n in names]


def _size(*names: str) -> list[sympy.Symbol]:
    return [sympy.Symbol(n, integer=True, positive=True) for n in names]


def _same(a: Expr, b: Expr) -> bool:
    return sympy.expand(a - b) == 0


def _delta_sum(summand: Expr, index: sympy.Symbol, other: sympy.Symbol, size: sympy.Symbol) -> Expr:
    """Σ_{index<size} δ(other, index)·f(index) = f(other), for 0 ≤ other < size (checked)."""
    result = Sum(summand, (index, 0, size - 1)).doit()
    if isinstance(result, sympy.Piecewise):
        value, cond = result.args[0]
        slack = sympy.Symbol("slack", integer=True, nonnegative=True)
        # other < size: write size = other + 1 + slack
        if sympy.simplify(cond.subs(size, other + 1 + slack)) is not sympy.true:
            raise ArithmeticError(f"cannot discharge the range condition {cond}")
        return value
    return result


def vec_abc() -> IdentityResult:
    """vec(A B C) = (Cᵀ ⊗ A) vec(B), A p×q, B q×r, C r×s."""
    p, q, r, s = _size("p", "q", "r", "s")
    i, j, a, b = _nonneg("i", "j", "a", "b")
    A, B, C = IndexedBase("A"), IndexedBase("B"), IndexedBase("C")
    steps = []
    lhs_index = vec_index(i, j, p)             # vec of the p×s matrix ABC at entry (i, j)
    lhs = A[i, a] * B[a, b] * C[b, j]          # summand of Σ_a Σ_b, a < q, b < r
    steps.append("LHS at vec index j·p + i: (ABC)[i,j] = Σ_{a<q} Σ_{b<r} A[i,a] B[a,b] C[b,j]")
    # Cᵀ is s×r, A is p×q: (Cᵀ ⊗ A)[α·p + β, γ·q + δ] = Cᵀ[α,γ] A[β,δ]; row pair (j, i).
    kron_row = kron_index(j, i, p)              # row pair (j, i): row j of Cᵀ, row i of A (p rows)
    kron_col = kron_index(b, a, q)              # column pair (b, a), b < r, a < q
    vec_b_index = vec_index(a, b, q)            # vec(B) at entry (a, b), B has q rows
    if not _same(kron_row, lhs_index):
        return IdentityResult("vec(ABC)", "vec(A B C) = (Cᵀ ⊗ A) vec(B)", "unproven", steps)
    steps.append("RHS row j·p + i is the Kronecker row pair (j, i) of Cᵀ ⊗ A: the same index as the LHS  "
                 "[checked: index maps equal]")
    if not _same(kron_col, vec_b_index):
        return IdentityResult("vec(ABC)", "vec(A B C) = (Cᵀ ⊗ A) vec(B)", "unproven", steps)
    steps.append("split Σ_{u<qr} by u = b·q + a (0 ≤ a < q, 0 ≤ b < r, a bijection); the Kronecker column "
                 "pair (b, a) and vec(B)'s entry (a, b) give the same u  [checked: index maps equal]")
    rhs = C[b, j] * A[i, a] * B[a, b]           # Cᵀ[j,b] A[i,a] · B[a,b]
    steps.append("RHS = Σ_{b<r} Σ_{a<q} Cᵀ[j,b] A[i,a] B[a,b] = Σ_{b<r} Σ_{a<q} C[b,j] A[i,a] B[a,b]")
    if not _same(lhs, rhs):
        return IdentityResult("vec(ABC)", "vec(A B C) = (Cᵀ ⊗ A) vec(B)", "unproven", steps)
    steps.append("finite sums over the same ranges, summands equal: "
                 "A[i,a]B[a,b]C[b,j] − C[b,j]A[i,a]B[a,b] expands to 0")
    return IdentityResult("vec(ABC)", "vec(A B C) = (Cᵀ ⊗ A) vec(B)", ALL_SIZES, steps)


def kron_x_delta() -> IdentityResult:
    """(x ⊗ I_n) δ = vec(δ xᵀ), x ∈ R^k, δ ∈ R^n."""
    n, k = _size("n", "k")
    i, j, c = _nonneg("i", "j", "c")
    x, d = IndexedBase("x"), IndexedBase("delta")
    name, statement = "(x⊗I)δ", "(x ⊗ I_n) δ = vec(δ xᵀ)"
    steps = ["x ⊗ I_n is kn×n: entry at row pair (j, i), column pair (0, c) is x[j]·δ_{ic}"]
    lhs = _delta_sum(x[j] * KroneckerDelta(i, c) * d[c], c, i, n)
    steps.append("LHS at row j·n + i: Σ_{c<n} x[j] δ_{ic} δ[c] = x[j] δ[i]  [Kronecker-delta sum, 0 ≤ i < n]")
    steps.append("RHS: vec(δ xᵀ)[j·n + i] = (δ xᵀ)[i, j] = δ[i] x[j]  [vec of an n-row matrix: same index j·n + i]")
    rhs = d[i] * x[j]
    verdict = ALL_SIZES if _same(lhs, rhs) else "unproven"
    steps.append("x[j] δ[i] − δ[i] x[j] expands to 0")
    return IdentityResult(name, statement, verdict, steps)


def kron_xt_vecw() -> IdentityResult:
    """(xᵀ ⊗ I_n) vec(W) = W x, W n×k, x ∈ R^k."""
    n, k = _size("n", "k")
    i, j, c = _nonneg("i", "j", "c")
    x, W = IndexedBase("x"), IndexedBase("W")
    name, statement = "(xᵀ⊗I)vec(W)", "(xᵀ ⊗ I_n) vec(W) = W x"
    steps = ["xᵀ ⊗ I_n is n×kn: entry at row pair (0, i), column pair (j, c), i.e. column j·n + c, is x[j]·δ_{ic}",
             "vec(W)[j·n + c] = W[c, j]: the same column index j·n + c  [vec of an n-row matrix]"]
    inner = _delta_sum(x[j] * KroneckerDelta(i, c) * W[c, j], c, i, n)
    steps.append("LHS row i: Σ_{j<k} Σ_{c<n} x[j] δ_{ic} W[c,j] = Σ_{j<k} x[j] W[i,j]  "
                 "[Kronecker-delta sum, 0 ≤ i < n]")
    rhs = W[i, j] * x[j]
    steps.append("RHS row i: (W x)[i] = Σ_{j<k} W[i,j] x[j]; summands agree (difference expands to 0)")
    verdict = ALL_SIZES if _same(inner, rhs) else "unproven"
    return IdentityResult(name, statement, verdict, steps)


def _rand(rng: random.Random, r: int, c: int) -> Matrix:
    return Matrix(r, c, lambda *_: sympy.Integer(rng.randint(-3, 3)))


def refute_variant(name: str, statement: str, lhs, rhs, sizes: Sequence[tuple[int, ...]]) -> IdentityResult:
    """Look for a counterexample at small sizes with exact integer matrices."""
    rng = random.Random(7)
    for shape in sizes:
        for _ in range(5):
            args = _operands(rng, shape)
            left, right = lhs(*args), rhs(*args)
            if left.shape != right.shape:
                return IdentityResult(name, statement, "refuted",
                                      counterexample=f"sizes {shape}: shapes {left.shape} and {right.shape} differ")
            if left != right:
                k = next(t for t in range(len(left)) if left[t] != right[t])
                return IdentityResult(
                    name, statement, "refuted",
                    counterexample=(f"sizes {shape}, integer entries: entry {k} is {left[k]} on the left, "
                                    f"{right[k]} on the right"))
    return IdentityResult(name, statement, "unproven")


def _operands(rng: random.Random, shape: tuple[int, ...]) -> list[Matrix]:
    p, q, r, s = shape
    return [_rand(rng, p, q), _rand(rng, q, r), _rand(rng, r, s)]


def row_major_vec(m: Matrix) -> Matrix:
    return Matrix(len(m), 1, list(m))


def wrong_variants() -> list[IdentityResult]:
    """Classic mistakes, each refuted at small sizes."""
    sizes = [(2, 2, 2, 2), (2, 3, 2, 3), (3, 2, 3, 2)]
    out = [
        refute_variant("vec(ABC) with C ⊗ Aᵀ", "vec(A B C) = (C ⊗ Aᵀ) vec(B)",
                       lambda A, B, C: vec(matmul(matmul(A, B), C)),
                       lambda A, B, C: matmul(kron(C, A.T), vec(B)), sizes),
        refute_variant("vec(ABC) with row-major vec", "vec_row(A B C) = (Cᵀ ⊗ A) vec_row(B)",
                       lambda A, B, C: row_major_vec(matmul(matmul(A, B), C)),
                       lambda A, B, C: matmul(kron(C.T, A), row_major_vec(B)), sizes),
        refute_variant("(I ⊗ xᵀ) vec(W)", "(I_n ⊗ xᵀ) vec(W) = W x",
                       lambda A, B, C: matmul(kron(sympy.eye(A.shape[0]), B[:, :1].T), vec(A)),
                       lambda A, B, C: matmul(A, B[:, :1]), sizes),
    ]
    return out


def check_sizes(limit: int = 3) -> dict[str, int]:
    """Evidence beside the proofs: each identity with symbolic entries at every size ≤ limit."""
    counts = {"vec(ABC)": 0, "(x⊗I)δ": 0, "(xᵀ⊗I)vec(W)": 0}
    rng = range(1, limit + 1)
    for p in rng:
        for q in rng:
            for r in rng:
                for s in rng:
                    A = Matrix(p, q, lambda u, v: sympy.Symbol(f"A{u}{v}"))
                    B = Matrix(q, r, lambda u, v: sympy.Symbol(f"B{u}{v}"))
                    C = Matrix(r, s, lambda u, v: sympy.Symbol(f"C{u}{v}"))
                    diff = vec(matmul(matmul(A, B), C)) - matmul(kron(C.T, A), vec(B))
                    assert all(sympy.expand(e) == 0 for e in diff)
                    counts["vec(ABC)"] += 1
    for n in rng:
        for k in rng:
            x = Matrix(k, 1, lambda u, _: sympy.Symbol(f"x{u}"))
            d = Matrix(n, 1, lambda u, _: sympy.Symbol(f"d{u}"))
            W = Matrix(n, k, lambda u, v: sympy.Symbol(f"W{u}{v}"))
            assert matmul(kron(x, sympy.eye(n)), d) == vec(matmul(d, x.T))
            counts["(x⊗I)δ"] += 1
            assert all(sympy.expand(e) == 0 for e in matmul(kron(x.T, sympy.eye(n)), vec(W)) - matmul(W, x))
            counts["(xᵀ⊗I)vec(W)"] += 1
    return counts


def identities() -> list[IdentityResult]:
    """The general identities (proven for all sizes) followed by refuted variants."""
    return [vec_abc(), kron_x_delta(), kron_xt_vecw(), *wrong_variants()]
