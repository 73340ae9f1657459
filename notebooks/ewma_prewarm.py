import math
from collections import Counter

from coldsim import Controller


class EwmaPrewarm(Controller):
    """Every minute, forecast each function's requests in the next minute (an exponentially
    weighted mean of past minutes) and keep one warm instance per `per_instance` of them."""

    tick_s: float = 60.0
    alpha: float = 0.5
    per_instance: float = 30.0

    def start(self, ctx, rng):
        self._ctx = ctx
        self._counts = Counter()
        self._forecast = Counter()

    def observe(self, invocation):
        if invocation.kind == "user":
            self._counts[invocation.function] += 1

    def tick(self, now):
        ctx, keep = self._ctx, 2 * self.tick_s
        for name in self._forecast.keys() | self._counts.keys():
            f = self.alpha * self._counts[name] + (1 - self.alpha) * self._forecast[name]
            self._forecast[name] = f
            want = math.ceil(f / self.per_instance - 0.1)  # none for <= 3 a minute
            if want > 0:
                missing = want - ctx.instances(name).live
                new = ctx.prewarm(name, missing) if missing > 0 else []
                for iid in ctx.idle_instances(name)[-want:] + new:
                    ctx.extend(iid, now + keep)  # warm until the next decision
        self._counts.clear()
