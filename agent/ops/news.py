"""Wait for news: plot-all asks between passes, so its next pass comes as
soon as a plot lands, a check or a transfer ends (facts/news.py), not a whole
polling_time_s later.  The wait ends early, with no news, when another
request arrives (the controller's pass, or a blank line: it stopped waiting)."""
import time

from .. import deadline
from ..protocol import op
from ..vocab import wire

POLL_S = 0.25
SHOWN = 5           # items named in the answer: the rest is only counted by the pass


@op(wire.NewsReply)
def news(agent, config: wire.Config, wait_s: float):
    left = deadline.remaining()
    end = time.monotonic() + max(0.0, min(wait_s, wait_s if left is None else left - 0.5))
    base = agent.news_base
    if base is None:
        base = agent.news_base = agent.watch.items(config)
    while True:
        new = agent.watch.items(config) - base
        if new:
            return {"news": sorted(new)[:SHOWN]}
        if agent.mail() or time.monotonic() + POLL_S > end:
            return {"news": []}
        time.sleep(POLL_S)
