"""Name the mistake in a refuted claim, but only with a corrected statement that is proven.

Each candidate is a rewrite of the claim (its transpose, a constant factor, a missing
g′(Z_l), a condition on a free constant).  A candidate is first screened at the sample
points (cheap), then proven exactly with the same :class:`~derive.prove.judge.Judge`; only a
proven candidate becomes a diagnosis.  A diagnosis is an addition to the counterexample,
never a replacement for it.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Expr, Matrix

from derive.model.network import Network
from derive.ops.activations import Undetermined
from derive.prove.judge import Judge, Point, TooLarge, is_zero, size_exceeds
from derive.prove.numeric import NotExact, interval_endpoints, simplest_rational
from derive.records import Diagnosis, DiagnosisCode, ProofStep

MAX_RATIO_OPS = 3_000


#: a factor made of constants or inputs (x1/x2, alpha/2): a wrong name may explain it better
SYMBOLIC_FACTOR_PRIORITY = 10
#: a claim that is another weight's gradient: a fix by one or two names (priority 30) says it shorter
PATH_PRIORITY = 25

#: one candidate: a proven diagnosis of ``claimed`` against ``true``, or None
Candidate = Callable[[Network, Judge, Matrix, Matrix], Diagnosis | None]

#: the candidates, tried in this order (the first proven one is the diagnosis); a new
#: diagnosis is one function registered with :func:`candidate` and a code in DiagnosisCode
CANDIDATES: list[Candidate] = []


def candidate(find: Candidate) -> Candidate:
    """Register ``find`` as the last candidate diagnosis."""
    CANDIDATES.append(find)
    return find


def diagnose(net: Network, judge: Judge, claimed: Matrix, true: Matrix,
             transposed: Diagnosis | None = None) -> Diagnosis | None:
    """The mistake named and proven, or None when no candidate could be proven.
    ``transposed`` replaces the transpose diagnosis (a Jacobian in the other layout)."""
    try:
        if transposed_shape(claimed, true) and _proven(judge, claimed.T, true):
            return transposed or Diagnosis(
                DiagnosisCode.TRANSPOSE, "it is the transpose of the true gradient (a stray or missing transpose)")
        for find in CANDIDATES:
            found = find(net, judge, claimed, true)
            if found is not None:
                return found
    except TooLarge:
        return None
    return None


def _proven(judge: Judge, claimed: Matrix, true: Matrix) -> bool:
    return judge.agrees_numerically(claimed, true) and judge.prove(claimed, true) is not None


def transposed_shape(claimed: Matrix, true: Matrix) -> bool:
    return claimed.shape == (true.shape[1], true.shape[0])


def _ratio(judge: Judge, claimed: Matrix, true: Matrix) -> Expr | None:
    """A candidate k with claimed = k·true, free of atoms (to be proven by the caller).

    First from the sample points: claimed/true at the first entry where the truth is not
    0, at two points; the same rational at both is the candidate (no symbolic work, which
    matters: ``cancel`` of a softmax chain unfolded three layers deep took minutes).  Only
    when the ratio varies and the network has free constants (alpha, inputs of an
    equation network) is it computed symbolically, and only for small expressions.
    """
    sampled = [_sampled_ratio(judge, point, claimed, true) for point in judge.sample_points()[:2]]
    if sampled[0] is not None and all(r == sampled[0] for r in sampled):
        return sampled[0] if sampled[0] != 1 else None
    return _symbolic_ratio(judge, claimed, true)


def _symbolic_ratio(judge: Judge, claimed: Matrix, true: Matrix) -> Expr | None:
    """claimed/true as a function of the free constants alone, or None (a candidate)."""
    constants = set(judge.net.free_constants)
    if not constants:
        return None
    # the leaves fixed at a sample point, the constants kept: c/t is then a small
    # rational function of the constants alone if the ratio is a factor at all
    point = _leaves_at_a_sample(judge)
    unfold = judge.step(ProofStep.PRE_ACTIVATIONS_UNFOLDED)
    zero = sympy.Integer(0)
    for i in range(len(true)):
        t = -unfold(zero, true[i])
        if t == 0:
            continue
        c = unfold(claimed[i], zero)
        if size_exceeds(t, MAX_RATIO_OPS) or size_exceeds(c, MAX_RATIO_OPS):
            return None
        k = sympy.cancel(c.xreplace(point) / t.xreplace(point))
        if k.free_symbols <= constants and not k.atoms(sympy.Function) and k != 1:
            return k
        return None
    return None


def _sampled_ratio(judge: Judge, point: Point, claimed: Matrix, true: Matrix) -> sympy.Rational | None:
    """claimed/true at one sample point as a rational, never through a float: the exact
    quotient when the point evaluates exactly; otherwise the simplest rational inside the
    200-bit interval (found on the interval's exact endpoints), or None if there is none
    with a small denominator.  Either way only a candidate: the caller proves it."""
    ev = point.evaluator
    for attempt in range(2):
        try:
            for i in range(len(true)):
                t = ev(true[i])
                if not ev.ctx.is_nonzero(t):
                    continue
                r = ev(claimed[i]) / t
                if ev.ctx.exact:
                    return sympy.Rational(r.numerator, r.denominator)
                return _rational_in(r)
            return None
        except NotExact:
            if attempt == 0:
                ev = judge.interval_evaluator(point)
                continue
            return None
        except (Undetermined, ZeroDivisionError, ArithmeticError, KeyError):
            return None
    return None


#: a candidate ratio with a larger denominator is not a "constant factor" worth naming (an
#: irrational ratio's simplest rational in a 200-bit interval has a denominator near 2¹⁰⁰)


def _rational_in(interval: object) -> sympy.Rational | None:
    """The simplest rational inside an mpmath interval (endpoints read exactly), if its
    denominator is at most :data:`MAX_RATIO_DENOMINATOR`; None otherwise."""
    bounds = interval_endpoints(interval)
    if bounds is None:
        return None
    lo, hi = bounds
    q = simplest_rational(lo, hi)
    if q is None or not lo <= q <= hi:  # accepted only inside the interval
        return None
    return sympy.Rational(q.numerator, q.denominator)


@candidate
def _constant_factor(net: Network, judge: Judge, claimed: Matrix, true: Matrix) -> Diagnosis | None:
    if claimed.shape != true.shape:
        return None
    k = _ratio(judge, claimed, true)
    if k is None or not _proven(judge, claimed, true * k):
        return None
    m = net.constants.get("m", sympy.Integer(1))
    averaged = net.spec is None or net.spec.average
    if k == -1:
        return Diagnosis(DiagnosisCode.OPPOSITE_SIGN, "opposite sign: claimed = −true (a − y and y − a swapped?)")
    if averaged and m != 1 and k == m:
        return Diagnosis(DiagnosisCode.PER_EXAMPLE, "off by a factor 1/m: it is the gradient of the per-example "
                         "loss, not of the averaged cost J = (1/m) Σ ℓ")
    if averaged and m != 1 and k == 1 / m:
        return Diagnosis(DiagnosisCode.EXTRA_1_OVER_M,
                         "an extra factor 1/m: the 1/m of the averaged cost is applied twice")
    if not averaged and m != 1 and k == 1 / m:
        return Diagnosis(DiagnosisCode.EXTRA_1_OVER_M,
                         "an extra factor 1/m: the cost here is a plain sum (average: false)")
    if k.free_symbols:
        words = f"off by a factor: claimed = {sympy.sstr(k)} × true"
        try:
            sol = sympy.solve(sympy.Eq(k, 1), sorted(k.free_symbols, key=str), dict=True)
        except NotImplementedError:  # SymPy has no method for this equation: no condition named
            sol = []
        conds = [", ".join(f"{s} = {v}" for s, v in d.items()) for d in sol]
        if conds:
            words += f"; holds only when {' or '.join(conds)}"
        return Diagnosis(DiagnosisCode.SYMBOLIC_FACTOR, words, SYMBOLIC_FACTOR_PRIORITY)
    return Diagnosis(DiagnosisCode.CONSTANT_FACTOR, f"off by a constant factor: claimed = {sympy.sstr(k)} × true")


@candidate
def _activation_factor(net: Network, judge: Judge, claimed: Matrix, true: Matrix) -> Diagnosis | None:
    if claimed.shape != true.shape:
        return None
    for layer in net.layers:
        z = net.matrices.get(f"Z{layer.index}")
        if z is None or z.shape != true.shape or not layer.activation.elementwise:
            continue
        name = layer.activation.name
        if name == "identity":
            continue
        gp = z.applyfunc(lambda e, layer=layer: layer.activation.derivative(e, layer.slope).xreplace(net.canon))
        if _proven(judge, claimed.multiply_elementwise(gp), true):
            return Diagnosis(DiagnosisCode.MISSING_ACTIVATION_DERIVATIVE,
                             f"a factor {name}′(Z{layer.index}) is missing (g{layer.index}′ dropped)")
        if _proven(judge, claimed, true.multiply_elementwise(gp)):
            return Diagnosis(DiagnosisCode.EXTRA_ACTIVATION_DERIVATIVE, f"an extra factor {name}′(Z{layer.index})")
    return None


@candidate
def _softmax_jacobian(net: Network, judge: Judge, claimed: Matrix, true: Matrix) -> Diagnosis | None:
    """The softmax Jacobian written diag(s) (the − s sᵀ term left out) or with + s sᵀ."""
    for layer in net.layers:
        a = net.matrices.get(f"A{layer.index}")
        if layer.activation.name != "softmax" or a is None or a.shape[1] != 1:
            continue
        outer = a * a.T
        if claimed.shape != outer.shape or true.shape != outer.shape:
            continue
        if _proven(judge, claimed - outer, true):
            return Diagnosis(DiagnosisCode.MISSING_FACTOR, f"the − s sᵀ term of the softmax Jacobian is missing "
                             f"(J = diag(s) − s sᵀ with s = A{layer.index})")
        if _proven(judge, claimed - 2 * outer, true):
            return Diagnosis(DiagnosisCode.OPPOSITE_SIGN, f"+ s sᵀ where the softmax Jacobian has − s sᵀ "
                             f"(J = diag(s) − s sᵀ with s = A{layer.index})")
    return None


@candidate
def _condition(net: Network, judge: Judge, claimed: Matrix, true: Matrix) -> Diagnosis | None:
    constants = net.free_constants
    if not constants or claimed.shape != true.shape:
        return None
    unfold = judge.step(ProofStep.PRE_ACTIVATIONS_UNFOLDED)
    point = _leaves_at_a_sample(judge)  # candidates from a small equation in the constants
    for i in range(len(true)):
        d = unfold(claimed[i], true[i])
        if size_exceeds(d, MAX_RATIO_OPS):
            return None
        d = sympy.expand(d.xreplace(point))
        if d == 0:
            continue
        for c in constants:
            if c not in d.free_symbols:
                continue
            for value in _roots(d, c):
                if value.free_symbols or value.atoms(sympy.Function):
                    continue  # each candidate is then proven for every entry, symbolically
                fixed = (unfold(a, b).xreplace({c: value}) for a, b in zip(claimed, true, strict=True))
                zero = sympy.Integer(0)
                vanishes = all(is_zero(unfold(zero, t).xreplace({c: value})) for t in true)
                if not vanishes and all(is_zero(e) for e in fixed):  # "x = 0" making both sides 0 says nothing
                    return Diagnosis(DiagnosisCode.CONDITION, f"holds only when {c} = {value}")
        return None
    return None


@candidate
def _path(net: Network, judge: Judge, claimed: Matrix, true: Matrix) -> Diagnosis | None:
    """The claim is k·∂L/∂v·u for a node v and a value u of the network (proven): the
    gradient of a weight that takes u into v.  Said in the network's own terms, with where
    the target really sits ("w1 takes x1 into z0, equation 1").  Scalar claims of a network
    written as equations (the notes' index-by-index derivation)."""
    eq = net.spec.equations if net.spec is not None else None
    if eq is None or claimed.shape != (1, 1) or true.shape != (1, 1):
        return None
    edges = _edges(eq)  # (weight, input, node, equation number)
    nodes = sorted({v for _, _, v, _ in edges})
    values = sorted({u for _, u, _, _ in edges} - {None}, key=str)
    target = _target_of(judge, true, edges)
    for v in nodes:
        try:
            dv = judge.truth.grad(v)
        except Exception:  # noqa: BLE001 - a name the truth engine does not differentiate by
            continue
        for u in [None, *values]:
            candidate = dv if u is None else dv.multiply_elementwise(net.matrices[u])
            if candidate.shape != true.shape or (candidate - true).is_zero_matrix:
                continue
            k = _factor(judge, claimed, candidate)
            if k is None:
                continue
            factor = "" if k == 1 else f"{sympy.sstr(k)}·"
            what = (f"∂{eq.loss}/∂{v}" if u is None else f"∂{eq.loss}/∂{v} · {u}")
            kind = f"a bias of {v}" if u is None else f"a weight that takes {u} into {v}"
            words = f"your formula is {factor}{what}, the gradient of {kind}"
            if target is not None:
                w, tu, tv, number = target
                right = f"∂{eq.loss}/∂{tv}" + ("" if tu is None else f" · {tu}")
                takes = f"is a bias of {tv}" if tu is None else f"takes {tu} into {tv}"
                words += f"; {w} {takes} (equation {number}), so ∂{eq.loss}/∂{w} = {right}"
            if k != 1:
                words += f" (and off by a factor {sympy.sstr(k)})"
            return Diagnosis(DiagnosisCode.WRONG_PATH, words, PATH_PRIORITY)
    return None


def _factor(judge: Judge, claimed: Matrix, candidate: Matrix) -> Expr | None:
    """k with claimed = k·candidate, proven (1 included), or None."""
    if not judge.agrees_numerically(claimed, candidate) or judge.prove(claimed, candidate) is None:
        for k in (_ratio(judge, claimed, candidate), _symbolic_ratio(judge, claimed, candidate)):
            if k is not None and k != 0 and _proven(judge, claimed, candidate * k):
                return k
        return None
    return sympy.Integer(1)


def _edges(eq: object) -> list[tuple[str, str | None, str, int]]:
    """(weight, input, node, equation number) for each term weight·input (or a bias: input
    None) of the equations ``node = Σ weight·input + bias``."""
    from derive.lang import formula as F  # (parsing the spec's own equations once more)

    out: list[tuple[str, str | None, str, int]] = []
    params = set(getattr(eq, "parameters", ()))
    for number, e in enumerate(getattr(eq, "equations", ()), start=1):
        try:
            tree = F.parse(e.formula)
        except Exception:  # noqa: BLE001 - validated at load time; a rewrite may differ
            continue
        terms: list[F.Node] = []
        stack = [tree]
        while stack:
            t = stack.pop()
            if isinstance(t, F.BinOp) and t.op == "+":
                stack += [t.left, t.right]
            else:
                terms.append(t)
        for t in terms:
            if isinstance(t, F.Name) and t.id in params:
                out.append((t.id, None, e.name, number))
            elif isinstance(t, F.BinOp) and t.op == "*" and isinstance(t.left, F.Name) and isinstance(t.right, F.Name):
                a, b = t.left.id, t.right.id
                if a in params and b not in params:
                    out.append((a, b, e.name, number))
                elif b in params and a not in params:
                    out.append((b, a, e.name, number))
    return out


def _target_of(judge: Judge, true: Matrix, edges: list[tuple[str, str | None, str, int]]
               ) -> tuple[str, str | None, str, int] | None:
    """The edge whose weight's gradient is the truth here (which parameter the claim is about)."""
    for edge in edges:
        try:
            g = judge.truth.grad(edge[0])
        except Exception:  # noqa: BLE001
            continue
        if g.shape == true.shape and (g - true).is_zero_matrix:
            return edge
    return None


def _leaves_at_a_sample(judge: Judge) -> dict[sympy.Symbol, sympy.Rational]:
    """Every leaf but the free constants at the first sample point: an expression of the
    network then shrinks to one in the constants (candidates only, proven afterwards)."""
    constants = set(judge.net.free_constants)
    return {s: sympy.Rational(v.numerator, v.denominator)
            for s, v in judge.sample_points()[0].leaves.items() if s not in constants}


def _roots(d: sympy.Expr, c: sympy.Symbol) -> list[sympy.Expr]:
    """The values of the constant c that make d vanish, where d is a polynomial in c once
    its fractions are combined (degree ≤ 4); [] otherwise, or when SymPy cannot solve it."""
    num = sympy.expand(sympy.fraction(sympy.together(d))[0])
    if not num.is_polynomial(c) or not 0 < sympy.degree(num, c) <= 4:
        return []
    try:
        return list(sympy.solve(num, c))
    except NotImplementedError:
        return []
