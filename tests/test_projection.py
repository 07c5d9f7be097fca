"""The live region's summary is the fleet as the pass left it
(core/projection.py): the snapshot was taken before the pass acted."""
import io

from rich.console import Console

from orchestrator.core.events import Event
from orchestrator.core.projection import after_actions
from orchestrator.ui import views
from tests import factories as f


def summary(state, hosts):
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(views.summary_table(state, hosts))
    return " ".join(out.getvalue().split())


def test_a_pass_that_started_a_job_and_a_transfer_is_summed_up_with_them():
    p = f.plotter("p1")
    plots = [f.plot_file("/d0", n=i) for i in range(2)]
    state, hosts = f.fleet(f.host_state(p, plots=plots)), f.inventory(p)
    name = plots[0].path.rsplit("/", 1)[1]
    events = (Event("job_started", "p1", "/log/a.log", "started", dir="/t0", to_dir="/d0",
                    what="chia k32", pid=77),
              Event("transfer_started", "p1", name, "transfer", dir="/d0", to_host="h1",
                    to_dir="/f0", size_bytes=plots[0].size_bytes, pid=78),
              Event("job_start_failed", "p1", "/t1", "failed", failed=True, dir="/t1"))
    assert "jobs 0" in summary(state, hosts) and "transfers 0" in summary(state, hosts)
    after = after_actions(state, events)
    text = summary(after, hosts)
    assert "jobs 1 (phase ?: 1)" in text and "transfers 1" in text, text
    [job] = after.hosts[0].jobs
    assert (job.pid, job.plotter, job.k, job.tmp_dir, job.log_file) == (77, "chia", 32, "/t0",
                                                                       "/log/a.log")
    # the copy verified and its source removed: no longer waiting, no longer moving
    done = after_actions(after, (Event("source_removed", "p1", name, "removed", dir="/d0"),))
    text = summary(done, hosts)
    assert "plots waiting 1 " in text and "transfers 0" in text, text
    assert after_actions(state, ()) is state
