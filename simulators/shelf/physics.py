"""One lane's load signal: pieces with their own weights, the transients of every change, hand
rests and knocks, and creep. Pure and seeded (one `random.Random` per change); no I/O.

Pieces: each piece's real weight is drawn when it is created, Normal(nominal, cv * nominal)
(cv times the noise scale), never below 1 % of nominal. Picks take random pieces of the lane;
puts always bring new pieces (a put-away from a dock or a return is other stock than what was
picked). Foreign pieces are kept apart: taking foreign pieces takes them back.

A pick or put starting at `at_s`: the hand touches the lane for `contact_s` (a half-sine of
`contact_g` extra force); the load steps by the pieces' real weight part-way through the
contact; the impact overshoots by `overshoot` x the change and rings at `ring_hz`, decaying so
that everything is within noise at `at_s + settle_s`. After that the change is a clean step.
Creep: a first-order lag (`creep_tau_s`) of `creep_fraction` x the lane's load.
The cell-level parts (temperature drift, white noise, the motion detector) are in world.py.
"""

import math
import random
from bisect import bisect_right
from dataclasses import dataclass

from simulators.shelf.lanes import Change, ChangeTruth, HandRest, Knock, LaneSpec, Pieces
from simulators.shelf.noise import Range, ShelfNoise

RING_FLOOR_G = 0.05  # a ringing that has decayed to this is over (well inside 0.5 g noise)
REST_RAMP_S = 0.2  # a hand comes down on / lifts off the shelf this fast
STEP_AT = (0.3, 0.7)  # where in the hand's contact the load steps (fraction of it)


def seeded(key: str) -> random.Random:
    """A generator of its own for one thing of the world, so adding one never shifts another."""
    return random.Random(key)  # noqa: S311 - simulation, not crypto


def piece_weight(rng: random.Random, nominal_g: float, cv: float) -> float:
    return max(rng.gauss(nominal_g, cv * nominal_g), 0.01 * nominal_g)


def _u(rng: random.Random, r: Range) -> float:
    return rng.uniform(r[0], r[1])


@dataclass(frozen=True, slots=True)
class Ring:
    """amp * exp(-(t - t0) / tau) * cos or sin(omega (t - t0)) on [t0, end_s)."""

    t0: float
    end_s: float
    amp: float
    tau: float
    omega: float
    sine: bool  # a knock starts from rest (sine); an impact from the overshoot (cosine)

    def at(self, t: float) -> float:
        if t < self.t0:
            return 0.0
        x = t - self.t0
        wave = math.sin(self.omega * x) if self.sine else math.cos(self.omega * x)
        return self.amp * math.exp(-x / self.tau) * wave


def ring(t0: float, end_s: float, amp: float, hz: float, sine: bool) -> Ring | None:
    """A ringing of peak `amp` that has decayed to RING_FLOOR_G at `end_s`."""
    if abs(amp) <= RING_FLOOR_G or end_s <= t0:
        return None
    tau = (end_s - t0) / math.log(abs(amp) / RING_FLOOR_G)
    return Ring(t0, end_s, amp, tau, 2 * math.pi * hz, sine)


@dataclass(frozen=True, slots=True)
class Bump:
    """Everything a change adds to the load on [start_s, end_s) besides its step."""

    start_s: float
    end_s: float
    contact_g: float = 0.0  # half-sine over [start_s, start_s + contact_s)
    contact_s: float = 0.0
    ring: Ring | None = None
    rest_g: float = 0.0  # a resting hand: ramps on, holds, ramps off before end_s
    tremor_g: float = 0.0
    tremor_omega: float = 0.0
    tremor_phase: float = 0.0

    def at(self, t: float) -> float:
        x = t - self.start_s
        v = 0.0
        if self.contact_g and x < self.contact_s:
            v += self.contact_g * math.sin(math.pi * x / self.contact_s)
        if self.ring is not None:
            v += self.ring.at(t)
        if self.rest_g:
            envelope = min(1.0, x / REST_RAMP_S, (self.end_s - t) / REST_RAMP_S)
            tremor = self.tremor_g * math.sin(self.tremor_omega * x + self.tremor_phase)
            v += envelope * (self.rest_g + tremor)
        return v


def _pick_put_bump(
    rng: random.Random, at_s: float, grams: float, n: ShelfNoise
) -> tuple[Bump, float]:
    """The bump of a pick or put, and when its load steps."""
    settle = _u(rng, n.settle_s)
    contact_s = min(_u(rng, n.contact_s), max(settle - 0.1, 0.05))
    step_s = at_s + contact_s * _u(rng, STEP_AT)
    end_s = at_s + settle
    overshoot = _u(rng, n.overshoot) * n.scale * grams
    impact = ring(step_s, end_s, overshoot, _u(rng, n.ring_hz), sine=False)
    return Bump(at_s, end_s, _u(rng, n.contact_g) * n.scale, contact_s, impact), step_s


def _knock_bump(rng: random.Random, at_s: float, n: ShelfNoise) -> Bump:
    end_s = at_s + _u(rng, n.settle_s)
    impulse = ring(at_s, end_s, _u(rng, n.knock_g) * n.scale, _u(rng, n.ring_hz), sine=True)
    return Bump(at_s, end_s, ring=impulse)


def _rest_bump(rng: random.Random, c: HandRest, n: ShelfNoise) -> Bump:
    return Bump(
        c.at_s,
        c.at_s + max(c.for_s, 2 * REST_RAMP_S),
        rest_g=c.grams,
        tremor_g=_u(rng, n.tremor_g) * n.scale,
        tremor_omega=2 * math.pi * _u(rng, n.tremor_hz),
        tremor_phase=rng.uniform(0, 2 * math.pi),
    )


class LanePhysics:
    """A lane's changes worked out once: piece weights, load steps, bumps, creep, truth.

    `changes` are (index in the world's list, change) of this lane, in time order.
    """

    def __init__(
        self, spec: LaneSpec, changes: list[tuple[int, Change]], seed: int, noise: ShelfNoise
    ) -> None:
        self.spec = spec
        self.noise = noise
        self._seed = seed
        self._cv = (spec.piece_cv if noise.piece_cv is None else noise.piece_cv) * noise.scale
        rng = self._rng("initial")
        nominal = spec.unit_weight_g
        self.pieces = [piece_weight(rng, nominal, self._cv) for _ in range(spec.initial_pieces)]
        self.foreign: list[float] = []
        self.load0_g = sum(self.pieces)
        self.truth: list[ChangeTruth] = []
        bumps: list[Bump] = []
        for index, change in changes:
            truth, bump = self._apply(index, change)
            self.truth.append(truth)
            bumps.append(bump)
        self.bumps = sorted(bumps, key=lambda b: b.start_s)
        steps = sorted((t.step_s, t.grams) for t in self.truth if t.grams)
        self.step_s = [s for s, _ in steps]
        self.load_g: list[float] = []  # the load after each step
        # creep after step k: creep_to_g[k] + creep_from_g[k] * exp(-(t - step_s[k]) / tau)
        self.creep_to_g: list[float] = []
        self.creep_from_g: list[float] = []
        load, creep, t_prev = self.load0_g, self.creep_target(self.load0_g), -math.inf
        for t, grams in steps:
            creep = self.creep_at(t, load, creep, t_prev)
            load, t_prev = load + grams, t
            self.load_g.append(load)
            self.creep_to_g.append(self.creep_target(load))
            self.creep_from_g.append(creep - self.creep_target(load))

    def creep_target(self, load_g: float) -> float:
        return self.noise.creep_fraction * self.noise.scale * load_g

    def creep_at(self, t: float, load_g: float, creep0_g: float, t0: float) -> float:
        """The creep at `t` with `load_g` on the lane since `t0`, when it was `creep0_g`."""
        target = self.creep_target(load_g)
        if t0 == -math.inf:
            return target
        return target + (creep0_g - target) * math.exp(-(t - t0) / self.noise.creep_tau_s)

    def load_at(self, t: float) -> float:
        """The settled load at `t` (no transients, no creep); for tests and the bench."""
        k = bisect_right(self.step_s, t)
        return self.load_g[k - 1] if k else self.load0_g

    def _rng(self, what: str | int) -> random.Random:
        return seeded(f"shelf:{self._seed}:{self.spec.id}:{what}")

    def _apply(self, index: int, change: Change) -> tuple[ChangeTruth, Bump]:
        rng = self._rng(index)
        n = self.noise
        where = f"change {index} at {change.at_s} s on lane {self.spec.id!r}"
        if isinstance(change, Knock):
            bump = _knock_bump(rng, change.at_s, n)
            return self._truth(index, change, 0, 0.0, change.at_s, bump), bump
        if isinstance(change, HandRest):
            bump = _rest_bump(rng, change, n)
            return self._truth(index, change, 0, 0.0, change.at_s, bump), bump
        if isinstance(change, Pieces):
            grams = self._move(rng, self.pieces, change.delta, self.spec.unit_weight_g, where)
            pieces = change.delta
        else:
            cv = (change.piece_cv if n.piece_cv is None else n.piece_cv) * n.scale
            grams = self._move(rng, self.foreign, change.delta, change.unit_weight_g, where, cv)
            pieces = 0
        bump, step_s = _pick_put_bump(rng, change.at_s, grams, n)
        return self._truth(index, change, pieces, grams, step_s, bump), bump

    def _move(
        self,
        rng: random.Random,
        held: list[float],
        delta: int,
        nominal_g: float,
        where: str,
        cv: float | None = None,
    ) -> float:
        """Add or take `delta` pieces of `held`; the change of the load in grams."""
        if delta > 0:
            cv = self._cv if cv is None else cv
            new = [piece_weight(rng, nominal_g, cv) for _ in range(delta)]
            held.extend(new)
            return sum(new)
        if -delta > len(held):
            raise ValueError(f"{where}: takes {-delta} pieces but only {len(held)} are there")
        taken = [held.pop(rng.randrange(len(held))) for _ in range(-delta)]
        return -sum(taken)

    def _truth(
        self, index: int, c: Change, pieces: int, grams: float, step_s: float, bump: Bump
    ) -> ChangeTruth:
        return ChangeTruth(index, c.at_s, c.lane, c.kind, pieces, grams, step_s, bump.end_s)


class LaneCursor:
    """The lane's load signal at non-decreasing times, with an index into its steps and the
    bumps still active: O(1) per call however long the history."""

    def __init__(self, lane: LanePhysics) -> None:
        self._lane = lane
        self._steps = len(lane.step_s)
        self._k = 0  # steps at or before the last t
        self._next_bump = 0
        self._active: list[Bump] = []
        self._inv_tau = 1.0 / lane.noise.creep_tau_s
        self._base_g = lane.spec.tare_g + lane.load0_g + lane.creep_target(lane.load0_g)
        self._from_g = 0.0  # the creep still to come, at step_s of the last step
        self._t0 = 0.0

    def at(self, t: float) -> float:
        lane = self._lane
        if self._k < self._steps and lane.step_s[self._k] <= t:
            while self._k < self._steps and lane.step_s[self._k] <= t:
                self._k += 1
            k = self._k - 1
            self._base_g = lane.spec.tare_g + lane.load_g[k] + lane.creep_to_g[k]
            self._from_g, self._t0 = lane.creep_from_g[k], lane.step_s[k]
        v = self._base_g
        if self._from_g:
            v += self._from_g * math.exp((self._t0 - t) * self._inv_tau)
        bumps = lane.bumps
        while self._next_bump < len(bumps) and bumps[self._next_bump].start_s <= t:
            self._active.append(bumps[self._next_bump])
            self._next_bump += 1
        if self._active:
            self._active = [b for b in self._active if b.end_s > t]
            for b in self._active:
                v += b.at(t)
        return v
