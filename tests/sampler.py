"""A test's background sampler: `sample()` every `every` seconds from a
thread, from entering the `with` block until leaving it."""
import threading


class Sampler:
    every = 0.2

    def sample(self):
        raise NotImplementedError

    def __enter__(self):
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)
